"""Collapsed networks and the step-size rule that avoids them (docs/training.md).

A network *collapses* when every first-hidden-layer ReLU is dead on the data (its pre-activation is
never positive): the output no longer depends on the genotypes, the validation AUC is exactly 0.5 (all
scores tie) and every attribution is zero. It happens when Adam's steps are large relative to the
first layer's initial weights. PyTorch draws those from ``U(−1/√M, 1/√M)``, so the same learning rate
is a larger relative step on a smaller panel; the paper's recipe (lr 1e-5 on 290 522 SNPs) keeps
``lr · √M ≈ 5.4e-3``, and ``--lr auto`` keeps that product on any panel (:func:`auto_learning_rate`).

Measures recorded per epoch (``history.tsv``): the SD of the validation outputs and the fraction of
first-hidden-layer units dead on the validation set. A model whose final validation SD is below
:data:`COLLAPSE_SD_TOL` is ``collapsed``; the epoch it collapsed at is the first epoch from which the SD
stays below the tolerance (:func:`collapse_epoch`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from annpal.model import AnnClassifier

#: Validation output SD (probabilities) below which a model is constant. A live network's outputs on
#: 300 samples differ by at least ~1e-3 even when it has learnt little; a dead one gives exactly equal
#: float32 outputs (SD 0). 1e-6 leaves room for float rounding of a constant and nothing else.
COLLAPSE_SD_TOL = 1e-6
#: The paper's genome-wide panel and learning rate (Materials and methods, "Neural network model").
PAPER_N_SNPS = 290_522
PAPER_LR = 1e-5
#: ``lr · √M`` of the paper's recipe; ``--lr auto`` keeps it.
PAPER_LR_SQRT_M = PAPER_LR * math.sqrt(PAPER_N_SNPS)
#: Input dropout from which the paper's genome-wide regime starts (0.99 there); below it, the small-panel
#: regime of our study (input dropout 0.5).
HIGH_INPUT_DROPOUT = 0.9
#: Small-panel regime: ``lr · M`` above which networks collapsed in our study (docs/training.md: collapses
#: at lr·M = 1.2 and above, none at 0.75 or below, batch 64, 60 epochs): a warning is logged above it.
COLLAPSE_RISK_LR_M = 1.0
#: Small-panel regime: about the largest ``lr · M`` at which no network of the study collapsed (0.755: the
#: paper's ``lr · √M`` on the 19 648-SNP panel); ``--lr auto`` stays at or below it.
SAFE_LR_M = 0.76
#: Paper regime (input dropout ≥ 0.9, not covered by the study): warn only far from the paper's step.
COLLAPSE_RISK_LR_SQRT_M = 10 * PAPER_LR_SQRT_M


def auto_learning_rate(n_snps: int, *, input_dropout: float = 0.99) -> float:
    """``--lr auto``: the paper's step relative to the initial weights, capped where networks collapsed.

    ``PAPER_LR_SQRT_M / √M`` keeps each Adam step the same size relative to the first layer's initial
    weight bound ``1/√M`` as in the paper (1e-5 at 290 522 SNPs, 3.8e-5 at 20 000, 7.6e-5 at 5 000).
    Below :data:`HIGH_INPUT_DROPOUT` (the small-panel regime of the study) it is also capped at
    ``SAFE_LR_M / M``, about the largest ``lr · M`` at which no studied network collapsed (1.5e-5 at
    50 000 SNPs instead of 2.4e-5, which collapsed; no change below about 20 000 SNPs).
    """
    if n_snps < 1:
        raise ValueError(f"n_snps must be positive, got {n_snps}")
    lr = PAPER_LR_SQRT_M / math.sqrt(n_snps)
    return min(lr, SAFE_LR_M / n_snps) if input_dropout < HIGH_INPUT_DROPOUT else lr


def collapse_risk(lr: float, n_snps: int, *, input_dropout: float) -> str | None:
    """A warning text when ``lr`` is in the collapse region for ``n_snps`` inputs, else ``None``.

    With input dropout below :data:`HIGH_INPUT_DROPOUT` (small panels, as studied) the region is
    ``lr · M > COLLAPSE_RISK_LR_M``: in the study, collapse followed ``lr · M`` rather than ``lr · √M``
    (Adam moves every first-layer weight by about ``lr`` per step, and the uncentred −1/0/1 genotypes let
    those moves add up coherently over the M inputs). At higher input dropout (the paper's regime, not
    studied) only steps ten times the paper's ``lr · √M`` are flagged.
    """
    if input_dropout < HIGH_INPUT_DROPOUT:
        if lr * n_snps <= COLLAPSE_RISK_LR_M:
            return None
        return (f"--lr {lr:g} on {n_snps} SNPs with input dropout {input_dropout:g}: lr*M = {lr * n_snps:.3g} > "
                f"{COLLAPSE_RISK_LR_M:g}, where networks collapsed to a constant output in our study "
                f"(docs/training.md); consider --lr {COLLAPSE_RISK_LR_M / n_snps:.2g} or less and --keep "
                "best_val_loss")
    scaled = lr * math.sqrt(n_snps)
    if scaled <= COLLAPSE_RISK_LR_SQRT_M:
        return None
    return (f"--lr {lr:g} on {n_snps} SNPs gives lr*sqrt(M) = {scaled:.3g}, {scaled / PAPER_LR_SQRT_M:.0f}x the "
            f"paper's {PAPER_LR_SQRT_M:.3g}: far outside the paper's setting, networks may collapse to a "
            f"constant output (docs/training.md); consider --lr auto "
            f"({auto_learning_rate(n_snps, input_dropout=input_dropout):.3g})")


@torch.no_grad()
def score_with_dead_units(model: AnnClassifier, x: torch.Tensor, *, chunk: int = 256, bf16: bool = False,
                          covariates: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode outputs of ``model`` on ``x`` and which first-hidden-layer units ever fire.

    The outputs are ``model(x)`` computed as ``forward_from_preactivation(first_linear(x))`` (the same
    operations in eval mode), so the pre-activations are seen on the way at no extra cost.

    Parameters
    ----------
    model
        The network, in eval mode (dropouts off).
    x
        ``(n, M)`` genotypes (any dtype; cast to float32 a chunk at a time).
    chunk
        Rows scored at once.
    bf16
        Run the first linear layer under bf16 autocast (as training does with ``--bf16``); the rest in
        float32.
    covariates
        ``(n, C)`` raw covariates of the rows of ``x`` for a network that takes them, else ``None``.

    Returns
    -------
    probs, alive
        ``(n,)`` float32 probabilities and an ``(H1,)`` boolean: unit's pre-activation positive for at
        least one row.
    """
    probs = []
    alive = torch.zeros(model.first_linear.out_features, dtype=torch.bool, device=x.device)
    for i in range(0, x.shape[0], chunk):
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=bf16):
            z = model.first_linear(x[i:i + chunk].to(torch.float32))
        z = z.float()
        alive |= (z > 0).any(dim=0)
        c = None if covariates is None else covariates[i:i + chunk]
        probs.append(model.forward_from_preactivation(z, c).flatten())
    return (torch.cat(probs) if probs else torch.empty(0, device=x.device)), alive


def output_sd(probs: torch.Tensor | np.ndarray) -> float:
    """Population SD of the outputs (NaN when empty), in float64."""
    values = np.asarray(probs.cpu() if isinstance(probs, torch.Tensor) else probs, dtype=np.float64)
    return float(values.std()) if values.size else math.nan


def dead_fraction(alive: torch.Tensor) -> float:
    """Share of first-hidden-layer units that never fired."""
    return float(1.0 - alive.float().mean().item()) if alive.numel() else math.nan


def collapse_epoch(val_output_sd: Sequence[float], *, tol: float = COLLAPSE_SD_TOL) -> int | None:
    """First epoch (counted from 1) from which the validation output SD stays below ``tol``.

    ``None`` when the last epoch is above it (the model has not collapsed) or the series is empty.
    """
    sd = np.asarray(val_output_sd, dtype=np.float64)
    if sd.size == 0 or not sd[-1] < tol:
        return None
    above = np.flatnonzero(~(sd < tol))
    return int(above[-1] + 2) if above.size else 1


def collapse_summary(val_output_sd: Sequence[float], *, tol: float = COLLAPSE_SD_TOL) -> dict[str, Any]:
    """``{"collapsed", "collapse_epoch", "tolerance"}`` for ``train.json``."""
    epoch = collapse_epoch(val_output_sd, tol=tol)
    return {"collapsed": epoch is not None, "collapse_epoch": epoch, "tolerance": tol}


#: What happens to collapsed models at the MAS merge (``--collapsed-models``).
COLLAPSED_MODEL_POLICIES = ("exclude", "keep")


def models_to_merge(collapsed: Sequence[bool], *, policy: str) -> tuple[np.ndarray, str]:
    """Which models enter the MAS matrix under ``--collapsed-models`` (default ``exclude``).

    Why exclude by default: a collapsed network's output does not depend on the genotypes, so its
    attributions are zero and its MAS uniform by construction; it carries no evidence. Kept, it still
    counts in K, so every count ``c_i/K`` and hence every AMAS above the threshold shrinks by the
    share of dead models, and PAL-common (``c_i = K``) becomes empty; in the null pool its flat row would
    distort the half-normal fit. Excluding it is what a user would do by hand after seeing the report.
    When every model of the group collapsed there is nothing left to exclude to: all are kept (and the
    returned policy says so), the run goes on and its report shows the warning.

    Returns
    -------
    keep, applied
        Boolean mask over the models, and the policy applied (``"exclude"``, ``"keep"`` or
        ``"keep (all collapsed)"``).

    Raises
    ------
    ValueError
        An unknown policy.
    """
    if policy not in COLLAPSED_MODEL_POLICIES:
        raise ValueError(f"unknown policy {policy!r}; use one of {', '.join(COLLAPSED_MODEL_POLICIES)}")
    collapsed = np.asarray(collapsed, dtype=bool)
    if policy == "keep" or not collapsed.any():
        return np.ones(collapsed.size, dtype=bool), policy
    if collapsed.all():
        return np.ones(collapsed.size, dtype=bool), "keep (all collapsed)"
    return ~collapsed, policy


__all__ = [
    "COLLAPSED_MODEL_POLICIES", "COLLAPSE_RISK_LR_M", "COLLAPSE_RISK_LR_SQRT_M", "HIGH_INPUT_DROPOUT", "SAFE_LR_M",
    "models_to_merge", "COLLAPSE_SD_TOL", "PAPER_LR", "PAPER_LR_SQRT_M", "PAPER_N_SNPS",
    "auto_learning_rate", "collapse_epoch", "collapse_risk", "collapse_summary", "dead_fraction",
    "output_sd", "score_with_dead_units",
]
