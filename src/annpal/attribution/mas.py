"""Mean attribution scores (MAS) from per-sample attributions (docs/method.md §3).

Per sample, the absolute scores are L1-normalised over the M positions; the normalised rows are averaged
over the attributed samples. The result is a float64 vector of length M that sums to 1.

Scores arrive in sample batches and are folded into a running float64 sum (:class:`MasAccumulator`), so
the samples × SNPs matrix is never held at once (paper scale: 1 800 × 290 522 would be 4.2 GB in float64).

The authors' ``3a_get_ig_sm_mas.py`` divides each row by its sum without a guard, so a sample whose
scores are all zero (a saturated sigmoid can give exactly zero gradients) turns its row and then the MAS
into NaN. Here such rows are skipped with a warning and counted (``n_zero_sum``). When *every* row is
zero (a dead network: all first-layer ReLUs closed, or a collapsed null model with constant output) the
model carries no attribution at all; its MAS is then the uniform vector 1/M — no position stands out, so
PAL detection finds nothing in it — flagged ``degenerate`` so that merges and the report can say so,
rather than stopping a whole pipeline run over one model.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from annpal.attribution.permutation import draw_replacement_genotypes
from annpal.results import METHODS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MasResult:
    """A MAS vector with the bookkeeping that goes into ``attr.json``.

    Attributes
    ----------
    mas
        float64, length M, sums to 1.
    n_samples
        Samples whose normalised rows were averaged.
    n_zero_sum
        Samples skipped because all their absolute scores were 0.
    degenerate
        Every sample's scores were 0 (dead network); ``mas`` is then uniform 1/M.
    """

    mas: np.ndarray
    n_samples: int
    n_zero_sum: int
    degenerate: bool = False

    def summary(self) -> dict[str, Any]:
        return {"n_samples": self.n_samples, "n_zero_sum_rows": self.n_zero_sum,
                "degenerate": self.degenerate}


class MasAccumulator:
    """Streaming L1-normalise-and-average over sample batches (docs/method.md §3).

    Parameters
    ----------
    n_snps
        Number of positions M.

    Examples
    --------
    >>> acc = MasAccumulator(3)
    >>> acc.add(np.array([[1.0, 1.0, 2.0]]))
    >>> acc.add(np.array([[0.0, 0.0, 5.0]]))
    >>> acc.result().mas.tolist()
    [0.125, 0.125, 0.75]
    """

    def __init__(self, n_snps: int) -> None:
        self._sum = np.zeros(int(n_snps), dtype=np.float64)
        self.n_samples = 0
        self.n_zero_sum = 0

    def add(self, abs_scores: np.ndarray) -> None:
        """Fold one batch of absolute scores (samples × M, any float dtype) into the running sum.

        Raises
        ------
        ValueError
            Wrong width, negative or non-finite scores.
        """
        scores = np.asarray(abs_scores)
        if scores.ndim != 2 or scores.shape[1] != self._sum.shape[0]:
            raise ValueError(f"scores have shape {scores.shape}, expected (samples, {self._sum.shape[0]})")
        if scores.shape[0] == 0:
            return
        scores = scores.astype(np.float64, copy=False)
        if not np.isfinite(scores).all():
            raise ValueError("attribution scores contain NaN or infinity")
        if (scores < 0).any():
            raise ValueError("attribution scores must be absolute values (found negative entries)")
        row_sums = scores.sum(axis=1)
        keep = row_sums > 0
        n_zero = int((~keep).sum())
        self.n_zero_sum += n_zero
        if n_zero:
            scores, row_sums = scores[keep], row_sums[keep]
        # Σ_j s_j / ‖s_j‖₁ as one matrix-vector product: (1/‖s‖₁)ᵀ S.
        self._sum += (1.0 / row_sums) @ scores
        self.n_samples += int(keep.sum())

    def result(self) -> MasResult:
        """The MAS over all samples added so far.

        If no sample had a non-zero score (dead network), the MAS is uniform and ``degenerate`` is set.
        """
        if self.n_samples == 0:
            log.warning("all %d sample(s) had all-zero attributions (dead network: constant output); "
                        "the MAS is uniform 1/M and marks no position", self.n_zero_sum)
            m = self._sum.shape[0]
            return MasResult(mas=np.full(m, 1.0 / m), n_samples=0, n_zero_sum=self.n_zero_sum,
                             degenerate=True)
        if self.n_zero_sum:
            log.warning("%d sample(s) had all-zero attributions and were left out of the MAS",
                        self.n_zero_sum)
        return MasResult(mas=self._sum / self.n_samples, n_samples=self.n_samples,
                         n_zero_sum=self.n_zero_sum)


def mas_from_attributions(abs_scores: np.ndarray) -> np.ndarray:
    """MAS of one samples × M matrix of absolute attributions (docs/method.md §3).

    Each row is divided by its sum (rows summing to 0 are skipped with a warning), then the rows are
    averaged; the result is float64 and sums to 1. For batched input use :class:`MasAccumulator`.

    Parameters
    ----------
    abs_scores
        Non-negative scores, samples × positions.

    Returns
    -------
    numpy.ndarray
        float64 MAS of length M.

    Raises
    ------
    ValueError
        Negative or non-finite scores, or every row sums to 0.
    """
    scores = np.asarray(abs_scores)
    if scores.ndim != 2:
        raise ValueError(f"expected a samples × positions matrix, got shape {scores.shape}")
    acc = MasAccumulator(scores.shape[1])
    acc.add(scores)
    return acc.result().mas


#: Implementations of ig, sm and dl: ``fast`` = exact hidden-space form (:mod:`annpal.attribution.firstlayer`),
#: ``captum`` = the reference, ``auto`` = fast for the annpal network.
IMPLS = ("auto", "captum", "fast")

#: Methods with an exact hidden-space form.
FAST_METHODS = ("ig", "sm", "dl")


def resolve_impl(method: str, impl: str, model: Any) -> str | None:
    """``"fast"`` or ``"captum"`` for ig, sm and dl; ``None`` for pm and sg (one implementation each).

    Raises
    ------
    ValueError
        Unknown ``impl``, or ``fast`` asked for a model that is not the annpal network.
    """
    from annpal.attribution.firstlayer import is_annpal_network

    if impl not in IMPLS:
        raise ValueError(f"unknown implementation {impl!r}; choose one of {', '.join(IMPLS)}")
    if method not in FAST_METHODS:
        return None
    if impl == "fast" and not is_annpal_network(model):
        raise ValueError(f"the fast {method} path needs the annpal network, got {type(model).__name__}")
    if impl == "auto":
        return "fast" if is_annpal_network(model) else "captum"
    return impl


def attribution_rows(labels: np.ndarray, meta: dict[str, Any]) -> tuple[np.ndarray, str]:
    """The dataset rows to attribute for one model (docs/method.md §3) and where they came from.

    ``meta["case_rows"]`` when the model records it (the train step stores the case rows it attributes:
    all cases for real models, the cases under the permuted labels for null models; for a quantitative
    trait, which has no cases, every sample and every training row), else every sample with label 1
    (every sample for a model whose ``meta["trait_type"]`` is ``quantitative``).

    Returns
    -------
    rows, source
        Sorted int64 row indices and ``"case_rows"`` or ``"label"``.

    Raises
    ------
    ValueError
        Rows out of range, duplicated, or none at all.
    """
    n = int(len(labels))
    if meta.get("case_rows") is not None:
        rows = np.asarray(meta["case_rows"], dtype=np.int64).reshape(-1)
        source = "case_rows"
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise ValueError(f"case_rows hold indices outside 0..{n - 1}")
        if np.unique(rows).size != rows.size:
            raise ValueError("case_rows hold duplicated indices")
        rows = np.sort(rows)
    elif meta.get("trait_type") == "quantitative":
        rows, source = np.arange(n, dtype=np.int64), "all_samples"
    else:
        rows = np.flatnonzero(np.asarray(labels) == 1).astype(np.int64)
        source = "label"
    if rows.size == 0:
        raise ValueError(f"no samples to attribute (source: {source})")
    return rows, source


def _batch_scorer(model: Any, method: str, impl: str | None, *, n_steps: int,
                  internal_batch_size: int | None, memory_bytes: int, replacement: np.ndarray | None,
                  sg_samples: int, sg_sigma: float, seed: int | None, pm_threads: int | None
                  ) -> Callable[[np.ndarray, int, np.ndarray | None], np.ndarray]:
    """``score(batch, start, cov)``: absolute attributions of one batch of samples starting at row ``start``
    (``cov``: the batch's raw covariates, fixed inputs, for a network that takes them)."""
    # The package re-exports functions under the submodules' names, so import the functions.
    from annpal.attribution import firstlayer, ig
    from annpal.attribution.deeplift import deeplift
    from annpal.attribution.permutation import permutation_importance
    from annpal.attribution.saliency import saliency
    from annpal.attribution.smoothgrad import smoothgrad

    on_cpu = ig.model_device(model).type == "cpu"

    def score(batch: np.ndarray, start: int, cov: np.ndarray | None = None) -> np.ndarray:
        if method == "pm":
            return permutation_importance(
                model, batch, replacement[start:start + batch.shape[0]], memory_bytes=memory_bytes,
                n_threads=pm_threads, covariates=cov)
        if method == "sg":
            # One noise stream per batch, seeded from the model seed and the batch's first row.
            return smoothgrad(model, batch, n_samples=sg_samples, sigma=sg_sigma,
                              seed=(int(seed) * 1_000_003 + start) % 2**63, covariates=cov)
        if impl == "fast":
            if method == "ig":
                return firstlayer.fast_integrated_gradients(model, batch, n_steps=n_steps, covariates=cov)
            fast = firstlayer.fast_saliency if method == "sm" else firstlayer.fast_deeplift
            return fast(model, batch, covariates=cov)
        if method == "ig":
            ibs = internal_batch_size or ig.ig_internal_batch_size(
                n_snps=batch.shape[1], batch_samples=batch.shape[0], n_steps=n_steps,
                memory_bytes=memory_bytes, max_rows=ig.CPU_MAX_IG_ROWS if on_cpu else None)
            return ig.integrated_gradients(model, batch, n_steps=n_steps, internal_batch_size=ibs,
                                           covariates=cov)
        return (saliency if method == "sm" else deeplift)(model, batch, covariates=cov)

    return score


def mas_for_model(model: Any, genotypes: np.ndarray, *, rows: np.ndarray, method: str,
                  impl: str = "auto", n_steps: int = 100, batch_size: int = 64,
                  internal_batch_size: int | None = None, memory_bytes: int = 1 << 30,
                  pm_seed: int | None = None, sg_samples: int = 20, sg_sigma: float = 0.3,
                  sg_seed: int | None = None, pm_threads: int | None = None,
                  covariates: np.ndarray | None = None) -> MasResult:
    """MAS of one model by one method over the given sample rows (docs/method.md), streamed by batch.

    Parameters
    ----------
    model
        An :class:`annpal.model.AnnClassifier` in eval mode, already on its device.
    genotypes
        All samples × M int8 genotypes (a memory map is fine: only ``batch_size`` rows are read at once).
    rows
        Rows to attribute (:func:`attribution_rows`).
    method
        One of :data:`METHODS`.
    impl
        One of :data:`IMPLS` (ig, sm and dl; :func:`resolve_impl`).
    n_steps
        IG quadrature points.
    batch_size
        Samples per batch.
    internal_batch_size
        captum IG rows per pass; ``None`` chooses it from ``memory_bytes`` (at most
        :data:`~annpal.attribution.ig.CPU_MAX_IG_ROWS` on CPU).
    memory_bytes
        Working-memory budget for captum IG passes and PM blocks.
    pm_seed
        Seed of the PM replacement vector (required for ``"pm"``).
    sg_samples, sg_sigma, sg_seed
        SmoothGrad noisy copies per sample, noise σ and seed (seed required for ``"sg"``).
    pm_threads
        Threads of the PM block loop (``None``: torch's thread count).
    covariates
        Raw covariates, one row per row of ``genotypes``, for a network trained with them
        (docs/method.md "Covariates in the network"): fixed additional inputs of every method, never
        attributed, so the MAS stays per SNP.

    Returns
    -------
    MasResult
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    impl_used = resolve_impl(method, impl, model)
    rows = np.asarray(rows, dtype=np.int64)
    replacement = None
    if method == "pm":
        if pm_seed is None:
            raise ValueError("permutation importance needs pm_seed")
        # One vector over the attributed samples, in row order (the authors' draw, see permutation.py).
        replacement = draw_replacement_genotypes(rows.size, seed=pm_seed)
        # Convert to float64 once, not once per batch (permutation.py computes in float64).
        model = copy.deepcopy(model).double()
    if method == "sg" and sg_seed is None:
        raise ValueError("smoothgrad needs sg_seed")
    score = _batch_scorer(model, method, impl_used, n_steps=n_steps, internal_batch_size=internal_batch_size,
                          memory_bytes=memory_bytes, replacement=replacement, sg_samples=sg_samples,
                          sg_sigma=sg_sigma, seed=sg_seed, pm_threads=pm_threads)
    acc = MasAccumulator(int(genotypes.shape[1]))
    n_batches = -(-rows.size // batch_size)
    for k, start in enumerate(range(0, rows.size, batch_size)):
        idx = rows[start:start + batch_size]
        acc.add(score(np.asarray(genotypes[idx], dtype=np.int8), start,
                      None if covariates is None else np.asarray(covariates)[idx]))
        log.debug("%s: batch %d/%d done", method, k + 1, n_batches)
    return acc.result()
