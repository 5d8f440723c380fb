"""MAS → potentially associated loci (PAL): detection, LD-aware counts, AMAS (docs/method.md §4).

For a ``K × M`` matrix of mean attribution scores (one row per real model) and a percentile ``θ``:

1. ``D_k = {i : MAS_k,i > percentile(MAS_k, θ)}`` (``np.percentile``, linear interpolation, strict ``>``,
   exactly as the authors' ``4_get_pal.py``);
2. each ``D_k`` is expanded with its LD proxies (:func:`annpal.ld.proxy_expand`);
3. ``c_i`` = number of models whose expanded set holds ``i``; ``μ`` = column mean of MAS;
   ``T = percentile(μ, θ)``;
4. ``AMAS_i = μ_i · (c_i / K)`` where ``μ_i > T``, else ``μ_i``;
5. ``PAL = {i : AMAS_i > T}``, ``PAL-common = {i : c_i = K}``.

The arithmetic keeps the authors' order of operations (``μ * (c / K)``) so results are bit-identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from annpal.ld import proxy_expand
from annpal.results import PAL as PAL_TABLE

__all__ = [
    "PalResult",
    "detect",
    "detected_sets",
    "ld_counts",
    "amas_from_counts",
    "call_pal",
    "score_table",
    "pal_table",
    "parse_thresholds",
    "detected_union",
]


#: The paper's percentile thresholds θ (strict and relaxed PAL) and LD-proxy window (SNPs each side).
PAPER_THRESHOLDS = "99.99,99.95"
LD_WINDOW = 20


def parse_thresholds(text: str) -> list[tuple[str, float]]:
    """Parse a comma list of percentiles in (0, 100) into ``(label, value)`` pairs.

    The label is the token exactly as written (``"99.99"``), used in column names and file names.

    Raises
    ------
    ValueError
        Empty list, a token that is not a number, a value outside (0, 100), or a repeated value.
    """
    out: list[tuple[str, float]] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            raise ValueError(f"empty threshold in {text!r}; give e.g. 99.99,99.95")
        try:
            value = float(token)
        except ValueError:
            raise ValueError(f"{token!r} is not a number; give percentiles like 99.99,99.95") from None
        if not 0.0 < value < 100.0:
            raise ValueError(f"{token} is outside (0, 100); give percentiles like 99.99,99.95")
        if any(value == v for _, v in out):
            raise ValueError(f"{token} is given twice")
        out.append((token, value))
    return out


def detect(mas_row: np.ndarray, *, theta: float) -> np.ndarray:
    """Indices of one model's detected SNPs: ``MAS > percentile(MAS, θ)`` (§4 step 1)."""
    row = np.asarray(mas_row, dtype=np.float64)
    return np.flatnonzero(row > np.percentile(row, theta))


def detected_sets(mas: np.ndarray, *, theta: float) -> list[np.ndarray]:
    """:func:`detect` for every row of the ``K × M`` MAS matrix."""
    return [detect(row, theta=theta) for row in np.asarray(mas)]


def ld_counts(detected: Sequence[np.ndarray], *, band: np.ndarray, ld_r: float = 0.5) -> np.ndarray:
    """``c_i``: in how many models' LD-expanded detected sets SNP ``i`` lies (§4 steps 2–3).

    ``band`` is the ``M × 2w`` matrix of :func:`annpal.ld.banded_abs_r`; only rows of detected SNPs are
    read. Returns int64 counts of length ``M``.
    """
    counts = np.zeros(band.shape[0], dtype=np.int64)
    for det in detected:
        counts[proxy_expand(det, band=band, ld_r=ld_r)] += 1
    return counts


def amas_from_counts(mas_mean: np.ndarray, counts: np.ndarray, *, theta: float, n_models: int
                     ) -> tuple[np.ndarray, float, np.ndarray]:
    """AMAS from the column mean ``μ`` and counts ``c`` (§4 steps 3–4).

    Returns ``(amas, T, weight)`` with ``T = percentile(μ, θ)`` and ``weight = c/K`` where ``μ > T``,
    else 1 (so ``amas = μ · weight`` up to the authors' order of operations).
    """
    mu = np.asarray(mas_mean, dtype=np.float64)
    threshold = float(np.percentile(mu, theta))
    above = mu > threshold
    ratio = np.asarray(counts, dtype=np.float64)[above] / n_models
    amas = mu.copy()
    amas[above] = mu[above] * ratio
    weight = np.ones_like(mu)
    weight[above] = ratio
    return amas, threshold, weight


@dataclass(frozen=True)
class PalResult:
    """PAL at one percentile ``θ`` (§4)."""

    label: str  #: θ as written by the user, e.g. "99.99"
    theta: float
    n_models: int
    threshold: float  #: T = percentile(μ, θ)
    counts: np.ndarray  #: c_i, int64
    weight: np.ndarray  #: c_i / K where μ_i > T else 1
    amas: np.ndarray
    pal: np.ndarray  #: bool, AMAS_i > T
    pal_common: np.ndarray  #: bool, c_i = K
    n_detected: np.ndarray  #: |D_k| per model

    def summary(self) -> dict[str, object]:
        """Counts for ``pal.json``."""
        return {"threshold_percentile": self.theta, "label": self.label, "T": self.threshold,
                "n_pal": int(self.pal.sum()), "n_pal_common": int(self.pal_common.sum()),
                "n_pal_and_common": int((self.pal & self.pal_common).sum()),
                "n_detected_per_model": [int(n) for n in self.n_detected]}


def call_pal(mas: np.ndarray, *, band: np.ndarray, thresholds: Sequence[tuple[str, float]],
             ld_r: float = 0.5) -> list[PalResult]:
    """PAL, PAL-common, counts and AMAS for each ``(label, θ)`` (§4).

    Parameters
    ----------
    mas
        ``K × M`` MAS matrix of the real models.
    band
        Banded ``|r|`` (:func:`annpal.ld.banded_abs_r`), with at least the rows of every detected SNP.
    thresholds
        ``(label, θ)`` pairs, e.g. ``[("99.99", 99.99), ("99.95", 99.95)]``.
    ld_r
        LD-proxy cut-off on ``|r|`` (strict ``>``).
    """
    mas = np.asarray(mas, dtype=np.float64)
    if mas.ndim != 2:
        raise ValueError("mas must be a K × M matrix")
    if band.shape[0] != mas.shape[1]:
        raise ValueError(f"band has {band.shape[0]} SNPs, MAS matrix {mas.shape[1]}")
    n_models = mas.shape[0]
    mu = np.mean(mas, axis=0)
    results = []
    for label, theta in thresholds:
        det = detected_sets(mas, theta=theta)
        counts = ld_counts(det, band=band, ld_r=ld_r)
        amas, threshold, weight = amas_from_counts(mu, counts, theta=theta, n_models=n_models)
        results.append(PalResult(label=label, theta=theta, n_models=n_models, threshold=threshold,
                                 counts=counts, weight=weight, amas=amas, pal=amas > threshold,
                                 pal_common=counts >= n_models,
                                 n_detected=np.array([d.size for d in det], dtype=np.int64)))
    return results


def detected_union(mas: np.ndarray, *, thetas: Sequence[float]) -> np.ndarray:
    """Every SNP detected by some model at some θ: the band rows :func:`call_pal` needs."""
    parts = [d for theta in thetas for d in detected_sets(mas, theta=theta)]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def score_table(variants: pd.DataFrame, mas_mean: np.ndarray, results: Sequence[PalResult]) -> pd.DataFrame:
    """Per-SNP scores (``scores.tsv``): ``index CHR BP SNP mas_mean`` then per θ ``count_θ weight_θ
    amas_θ pal_θ pal_common_θ`` (flags as 0/1)."""
    table = pd.DataFrame({"index": np.arange(len(variants)), "CHR": variants["CHR"].to_numpy(),
                          "BP": variants["BP"].to_numpy(), "SNP": variants["SNP"].to_numpy(),
                          "mas_mean": np.asarray(mas_mean, dtype=np.float64)})
    for r in results:
        table[f"count_{r.label}"] = r.counts
        table[f"weight_{r.label}"] = r.weight
        table[f"amas_{r.label}"] = r.amas
        table[f"pal_{r.label}"] = r.pal.astype(np.int8)
        table[f"pal_common_{r.label}"] = r.pal_common.astype(np.int8)
    return table


def pal_table(variants: pd.DataFrame, mas_mean: np.ndarray, results: Sequence[PalResult]) -> pd.DataFrame:
    """PAL SNPs of every θ (``pal.tsv``): ``threshold SNP CHR BP index mas_mean count amas pal_common``,
    sorted by threshold (as given) then AMAS descending."""
    frames = []
    for r in results:
        idx = np.flatnonzero(r.pal)
        idx = idx[np.argsort(-r.amas[idx], kind="stable")]
        frames.append(pd.DataFrame({
            "threshold": r.label, "SNP": variants["SNP"].to_numpy()[idx],
            "CHR": variants["CHR"].to_numpy()[idx], "BP": variants["BP"].to_numpy()[idx], "index": idx,
            "mas_mean": np.asarray(mas_mean)[idx], "count": r.counts[idx], "amas": r.amas[idx],
            "pal_common": r.pal_common[idx].astype(np.int8)}))
    columns = PAL_TABLE.names
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
