"""Integrated gradients (docs/method.md §3, "IG"; authors' ``3a_get_ig_sm_mas.py``).

captum's :class:`~captum.attr.IntegratedGradients` with an all-zero baseline, ``n_steps = 100`` and
captum's default quadrature (Gauss–Legendre), on the model in eval mode (dropout off, no noise).

Differences from the authors' call, none of which changes the attributions beyond float rounding:

- samples go through in batches (the authors pass every case at once), and captum's
  ``internal_batch_size`` (rows of scaled inputs per forward/backward pass) is chosen from a memory
  budget (:func:`ig_internal_batch_size`) instead of a fixed 1 000, so memory stays bounded on any panel;
- inputs are ``(batch, M)`` with ``target=0`` (the authors reshape to ``(batch, 1, M)``, ``target=None``);
- genotypes stay int8 until a batch is on the device, where it becomes float32.

Covariates (a network trained with ``--nn-covariates``) are captum's ``additional_forward_args``: fixed
inputs, repeated for every quadrature step, never scaled towards the baseline and never attributed.

The module also holds the helpers every attribution method shares (:func:`genotype_tensor`,
:func:`covariate_tensor`, :func:`covariate_args`, :func:`require_eval`).
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import IntegratedGradients
from torch import nn

#: captum's default quadrature for IntegratedGradients.
IG_METHOD = "gausslegendre"

#: Float32 copies of one scaled-input row that an IG forward/backward pass holds at once (scaled
#: input, its gradient, gradient × step size, captum's running sum, slack); used for the budget only.
_IG_ROW_COPIES = 6


def require_eval(model: nn.Module) -> None:
    """Attributions are defined on the deterministic network (eval mode, no noise).

    Raises
    ------
    ValueError
        The model is in training mode (dropout active).
    """
    if model.training:
        raise ValueError("model is in training mode; call model.eval() before computing attributions")


def model_device(model: nn.Module) -> torch.device:
    """The device holding the model's parameters."""
    return next(model.parameters()).device


def genotype_tensor(genotypes: np.ndarray | torch.Tensor, *, device: torch.device | str,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A batch of −1/0/1 genotypes as a float tensor on ``device``.

    int8 input crosses to the device as int8 (4× less traffic) and is converted there.
    """
    if isinstance(genotypes, torch.Tensor):
        return genotypes.to(device=device, dtype=dtype)
    arr = np.asarray(genotypes)
    if arr.dtype == np.int8:
        return torch.from_numpy(np.ascontiguousarray(arr)).to(device).to(dtype)
    return torch.as_tensor(np.ascontiguousarray(arr), dtype=dtype, device=device)


def covariate_tensor(covariates: np.ndarray | torch.Tensor | None, *, like: torch.Tensor
                     ) -> torch.Tensor | None:
    """A batch's raw covariates (samples × C) in ``like``'s dtype on its device; ``None`` stays ``None``."""
    if covariates is None:
        return None
    return torch.as_tensor(np.asarray(covariates) if not isinstance(covariates, torch.Tensor) else covariates,
                           dtype=like.dtype, device=like.device)


def covariate_args(model: nn.Module, covariates: np.ndarray | torch.Tensor | None) -> tuple | None:
    """captum's ``additional_forward_args`` for a batch's covariates (``None`` without covariates)."""
    c = covariate_tensor(covariates, like=next(model.parameters()))
    return None if c is None else (c,)


#: Row cap per captum pass on CPU. Passes of several thousand 20 000-wide rows (hundreds of MB of fresh
#: tensors each) ran slower on CPU than the authors' 1 000 in benchmarks/bench_attribution.py; on a GPU
#: larger passes pay off, so the cap applies to CPU only.
CPU_MAX_IG_ROWS = 1000


def ig_internal_batch_size(*, n_snps: int, batch_samples: int, n_steps: int, memory_bytes: int,
                           max_rows: int | None = None) -> int:
    """Rows of scaled inputs per captum pass so that one pass fits in ``memory_bytes``.

    At most ``max_rows`` when given (see :data:`CPU_MAX_IG_ROWS`); never below ``batch_samples``
    (captum's minimum: one step for every sample) nor above ``batch_samples × n_steps`` (all steps at
    once).
    """
    per_row = max(1, n_snps) * 4 * _IG_ROW_COPIES
    rows = int(memory_bytes) // per_row
    if max_rows is not None:
        rows = min(rows, int(max_rows))
    return int(min(max(rows, batch_samples), batch_samples * n_steps))


def integrated_gradients(model: nn.Module, genotypes: np.ndarray | torch.Tensor, *, n_steps: int = 100,
                         internal_batch_size: int | None = None, absolute: bool = True,
                         covariates: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """IG attributions of one batch of samples against the all-zero baseline.

    Parameters
    ----------
    model
        An :class:`annpal.model.AnnClassifier` (output ``(batch, 1)``) in eval mode.
    genotypes
        Samples × M genotypes (int8 −1/0/1 or float).
    n_steps
        Quadrature points (paper: 100).
    internal_batch_size
        Rows of scaled inputs per forward/backward pass (captum); ``None`` = all steps at once.
    absolute
        Return ``|IG|`` (what MAS uses); ``False`` returns the signed attributions.
    covariates
        The samples' raw covariates for a network that takes them (fixed additional inputs).

    Returns
    -------
    numpy.ndarray
        float32, samples × M.
    """
    require_eval(model)
    x = genotype_tensor(genotypes, device=model_device(model))
    if internal_batch_size is not None:
        # captum warns and rounds up when the internal batch is below the sample count.
        internal_batch_size = max(int(internal_batch_size), x.shape[0])
    attr = IntegratedGradients(model).attribute(
        x, baselines=torch.zeros_like(x), target=0, n_steps=n_steps, method=IG_METHOD,
        internal_batch_size=internal_batch_size, additional_forward_args=covariate_args(model, covariates),
    )
    attr = attr.detach()
    if absolute:
        attr = attr.abs()
    return attr.cpu().numpy()
