"""DeepLIFT through captum (Shrikumar et al. 2017, Rescale rule), all-zero baseline.

captum's :class:`~captum.attr.DeepLift` with ``multiply_by_inputs=True`` on the model in eval mode,
``target=0``. captum 0.9 has Rescale rules for ReLU and Sigmoid but none for GELU, where it silently uses
the plain gradient; that breaks DeepLIFT's summation-to-delta property (Σ_i DL_i = f(x) − f(0)). While
:func:`deeplift` runs, captum's own Rescale function is registered for GELU too, so every activation of
the annpal network gets the Rescale rule. This is the reference for the exact hidden-space form in
:func:`annpal.attribution.firstlayer.fast_deeplift`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np
import torch
from captum.attr import DeepLift
from captum.attr._core import deep_lift
from torch import nn

from annpal.attribution.ig import covariate_args, genotype_tensor, model_device, require_eval


@contextlib.contextmanager
def gelu_rescale_rule() -> Iterator[None]:
    """Register captum's Rescale rule for :class:`torch.nn.GELU` for the duration of the block."""
    rules = deep_lift.SUPPORTED_NON_LINEAR
    added = nn.GELU not in rules
    if added:
        rules[nn.GELU] = deep_lift.nonlinear
    try:
        yield
    finally:
        if added:
            rules.pop(nn.GELU, None)


def deeplift(model: nn.Module, genotypes: np.ndarray | torch.Tensor, *, absolute: bool = True,
             covariates: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """DeepLIFT attributions of one batch against the all-zero baseline (captum, Rescale rule).

    Parameters
    ----------
    model
        An :class:`annpal.model.AnnClassifier` (output ``(batch, 1)``) in eval mode.
    genotypes
        Samples × M genotypes (int8 −1/0/1 or float).
    absolute
        Return ``|DL|`` (what MAS uses); ``False`` returns the signed attributions.
    covariates
        The samples' raw covariates for a network that takes them: fixed additional inputs, the same for
        the input and the reference.

    Returns
    -------
    numpy.ndarray
        Samples × M in the model's precision.
    """
    require_eval(model)
    weight = model.first_linear.weight
    x = genotype_tensor(genotypes, device=model_device(model), dtype=weight.dtype).requires_grad_()
    with gelu_rescale_rule(), warnings.catch_warnings():
        # captum announces on every call that it sets hooks on the activations (and removes them).
        warnings.filterwarnings("ignore", message=".*hooks.*")
        attr = DeepLift(model).attribute(x, baselines=torch.zeros_like(x), target=0,
                                         additional_forward_args=covariate_args(model, covariates))
    attr = attr.detach()
    if absolute:
        attr = attr.abs()
    return attr.cpu().numpy()
