"""Saliency maps (docs/method.md §3, "SM"; authors' ``3a_get_ig_sm_mas.py``).

captum's :class:`~captum.attr.Saliency` with ``abs=True``: ``|∂f(x)/∂x_i|`` for each sample, model in
eval mode, float32 inputs converted from int8 per batch.
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import Saliency
from torch import nn

from annpal.attribution.ig import covariate_args, genotype_tensor, model_device, require_eval


def saliency(model: nn.Module, genotypes: np.ndarray | torch.Tensor, *,
             covariates: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """Absolute input gradients of one batch of samples.

    Parameters
    ----------
    model
        An :class:`annpal.model.AnnClassifier` (output ``(batch, 1)``) in eval mode.
    genotypes
        Samples × M genotypes (int8 −1/0/1 or float).
    covariates
        The samples' raw covariates for a network that takes them (fixed additional inputs).

    Returns
    -------
    numpy.ndarray
        float32, samples × M, non-negative.
    """
    require_eval(model)
    # Asking for gradients up front keeps captum from warning on every batch.
    x = genotype_tensor(genotypes, device=model_device(model)).requires_grad_()
    attr = Saliency(model).attribute(x, target=0, abs=True,
                                     additional_forward_args=covariate_args(model, covariates))
    return attr.detach().cpu().numpy()
