"""Exact closed forms of IG, saliency and DeepLIFT through the network's first layer.

Only the first linear layer of :class:`annpal.model.AnnClassifier` sees the genotypes. For a sample x
write u = W1·x (length H1) and z = u + b1, and let g(z) = ∂f/∂z be the gradient of everything after the
first layer (:meth:`~annpal.model.AnnClassifier.forward_from_preactivation`). Then, exactly:

- **saliency**: ∂f/∂x = W1ᵀ·g(z), so ``|SM(x)| = |g(z)ᵀ W1|``;
- **integrated gradients**, all-zero baseline: the path x(α) = α·x only scales the pre-activation,
  z(α) = α·u + b1, hence

      IG(x) = x ⊙ W1ᵀ · Σ_k w_k g(α_k·u + b1)

  with captum's quadrature nodes α_k and weights w_k. The K steps happen in the H1-dimensional hidden
  space; the M-dimensional work is one product u = W1·x and one product back (two matrix products per
  batch instead of K forward and backward passes). Same function at the same points as captum's
  :class:`~captum.attr.IntegratedGradients`, not an approximation;
- **DeepLIFT** (Rescale rule), all-zero baseline: the reference input 0 gives the reference
  pre-activation z_ref = b1, and every later layer's reference follows by the forward pass. Each
  activation gets the multiplier m = (act(z) − act(z_ref)) / (z − z_ref) (its ordinary derivative where
  |z − z_ref| < 10⁻¹⁰, as captum), linear layers pass multipliers through their weights, and

      DL(x) = x ⊙ W1ᵀ · v,   v = m1 ⊙ W2ᵀ(m2 ⊙ W3ᵀ m3),

  again computed in hidden space. The Rescale rule is applied to GELU as well; captum 0.9 has no rule for
  GELU and falls back to its plain gradient, which breaks DeepLIFT's summation-to-delta property
  (Σ_i DL_i = f(x) − f(0)). :func:`annpal.attribution.deeplift.deeplift` therefore registers captum's own
  Rescale function for GELU while it runs, and is the reference this module is tested against.

Covariates (docs/method.md "Covariates in the network") join after the first layer, so they are part of
the tail ``f(z; c)``: they are held fixed at each sample's values along the IG path and in DeepLIFT's
reference (only the genotypes go to the all-zero baseline), exactly as captum treats
``additional_forward_args``. Every closed form above keeps its shape; ``g`` is evaluated with ``c``.

Smoothgrad has no such shortcut: its noise lives in the M-dimensional input space, so every noisy copy
costs a full pass (:mod:`annpal.attribution.smoothgrad`).
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr._utils.approximation_methods import approximation_parameters
from torch import nn

from annpal.attribution.ig import IG_METHOD, covariate_tensor, genotype_tensor, require_eval
from annpal.model import FIRST_LINEAR, AnnClassifier

#: captum's DeepLift threshold below which a multiplier falls back to the local derivative.
DEEPLIFT_EPS = 1e-10


def is_annpal_network(model: nn.Module) -> bool:
    """Whether the closed forms apply: the annpal network, whose genotypes meet only its first layer."""
    return isinstance(model, AnnClassifier)


def _inputs(model: nn.Module, genotypes: np.ndarray | torch.Tensor,
            covariates: np.ndarray | torch.Tensor | None = None
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(x, u = x W1ᵀ, c)`` in the model's precision on the model's device (``c`` ``None`` without)."""
    require_eval(model)
    weight = model.first_linear.weight
    x = genotype_tensor(genotypes, device=weight.device, dtype=weight.dtype)
    c = covariate_tensor(covariates, like=weight)
    with torch.no_grad():
        u = x @ weight.t()
    return x, u, c


def _back_to_inputs(model: nn.Module, v: torch.Tensor, x: torch.Tensor | None, *, absolute: bool
                    ) -> np.ndarray:
    """``W1ᵀ v`` per sample (times ``x`` when given), optionally absolute, as a NumPy array."""
    with torch.no_grad():
        out = v @ model.first_linear.weight
        if x is not None:
            out.mul_(x)
        if absolute:
            out.abs_()
    return out.cpu().numpy()


def tail_gradient(model: nn.Module, z: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
    """``∂f/∂z`` of the network after its first layer, for every row of ``z`` (…, H1) independently,
    with the covariates (``(batch, C)``, broadcast over leading dimensions) held fixed."""
    with torch.enable_grad():
        z = z.detach().requires_grad_()
        (grad,) = torch.autograd.grad(model.forward_from_preactivation(z, covariates).sum(), z)
    return grad


def fast_saliency(model: nn.Module, genotypes: np.ndarray | torch.Tensor, *,
                  covariates: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """``|∂f/∂x|`` per sample through the first layer; equal to captum's ``Saliency(abs=True)``.

    ``covariates``: the samples' raw covariates for a network that takes them (fixed inputs).

    Returns
    -------
    numpy.ndarray
        Samples × M in the model's precision, non-negative.
    """
    _, u, c = _inputs(model, genotypes, covariates)
    grad = tail_gradient(model, u + model.first_linear.bias.detach(), c)
    return _back_to_inputs(model, grad, None, absolute=True)


def fast_integrated_gradients(model: nn.Module, genotypes: np.ndarray | torch.Tensor, *,
                              n_steps: int = 100, method: str = IG_METHOD, absolute: bool = True,
                              covariates: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """IG against the all-zero baseline with the quadrature in hidden space (exact; module docstring).

    Parameters
    ----------
    model
        An :class:`annpal.model.AnnClassifier` in eval mode.
    genotypes
        Samples × M genotypes (int8 −1/0/1 or float).
    n_steps, method
        Quadrature points and captum's rule (``"gausslegendre"``, ``"riemann_trapezoid"``, …), as in
        :class:`~captum.attr.IntegratedGradients`.
    absolute
        Return ``|IG|`` (what MAS uses); ``False`` returns the signed attributions.
    covariates
        The samples' raw covariates for a network that takes them: fixed along the path (the baseline
        is zero genotypes with the sample's own covariates).

    Returns
    -------
    numpy.ndarray
        Samples × M in the model's precision.
    """
    x, u, c = _inputs(model, genotypes, covariates)
    step_sizes, alphas = approximation_parameters(method)
    w = torch.tensor(step_sizes(n_steps), dtype=u.dtype, device=u.device)
    a = torch.tensor(alphas(n_steps), dtype=u.dtype, device=u.device)
    z = a[:, None, None] * u[None] + model.first_linear.bias.detach()  # (K, S, H1)
    weighted = torch.einsum("k,ksh->sh", w, tail_gradient(model, z, c))
    return _back_to_inputs(model, weighted, x, absolute=absolute)


def _tail_steps(model: nn.Module) -> list[nn.Module]:
    """The layers after the first linear one, eval-mode dropout (the identity) left out."""
    return [layer for layer in model.layers[FIRST_LINEAR + 1:] if not isinstance(layer, nn.Dropout)]


def _rescale_multiplier(act: nn.Module, z: torch.Tensor, z_ref: torch.Tensor) -> torch.Tensor:
    """DeepLIFT Rescale multiplier of one elementwise activation, captum's formula and threshold."""
    with torch.enable_grad():
        zz = z.detach().requires_grad_()
        (local,) = torch.autograd.grad(act(zz).sum(), zz)
    delta_in = z - z_ref
    return torch.where(delta_in.abs() < DEEPLIFT_EPS, local, (act(z) - act(z_ref)) / delta_in)


def fast_deeplift(model: nn.Module, genotypes: np.ndarray | torch.Tensor, *, absolute: bool = True,
                  covariates: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """DeepLIFT (Rescale rule, GELU included) against the all-zero baseline, in hidden space.

    Equal to :func:`annpal.attribution.deeplift.deeplift` (captum's ``DeepLift`` with the GELU rule);
    Σ_i DL_i = f(x) − f(0) exactly (up to rounding). ``covariates`` (a network that takes them) are the
    same in the input and the reference, so they get no share of the difference, and the multipliers
    pass back through ``W2``'s hidden columns only.

    Returns
    -------
    numpy.ndarray
        Samples × M in the model's precision.
    """
    x, u, c = _inputs(model, genotypes, covariates)
    bias = model.first_linear.bias.detach()
    with torch.no_grad():
        z = u + bias
        z_ref = bias.expand_as(z)
        multipliers: list[torch.Tensor] = []  # 2-D weights (H_out × H_in) or activation multipliers
        weights: list[bool] = []
        for layer in _tail_steps(model):
            if isinstance(layer, nn.Linear):
                multipliers.append(layer.weight[:, :z.shape[-1]])
                weights.append(True)
                if layer is model.second_linear:
                    z, z_ref = model.join_covariates(z, c), model.join_covariates(z_ref, c)
            else:
                multipliers.append(_rescale_multiplier(layer, z, z_ref))
                weights.append(False)
            z, z_ref = layer(z), layer(z_ref)
        v = torch.ones_like(z)
        for step, is_weight in zip(reversed(multipliers), reversed(weights), strict=True):
            v = v @ step if is_weight else v * step
    return _back_to_inputs(model, v, x, absolute=absolute)
