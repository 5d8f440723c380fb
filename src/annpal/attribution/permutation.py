"""Permutation importance (METHOD.md §3, "PM"; authors' ``3b_get_pm_mas.py``).

For every feature i, the genotype of every sample j is replaced by a random genotype ``r_j`` (one random
vector over samples per model) and the score is ``|f(x_j) − f(x_j with x_ji := r_j)|``.

Exact fast path
---------------
In eval mode dropout is the identity and only the first linear layer sees the genotypes, so replacing
feature i moves every pre-activation of sample j by the rank-1 term ``(r_j − x_ji) · W[:, i]``:

    z_j^(i) = z_j + (r_j − x_ji) W[:, i],    z = x Wᵀ + b computed once.

:func:`permutation_importance` builds ``z_j^(i)`` for a block of features at once (a samples × block × H1
tensor) and evaluates the rest of the network on it with
:meth:`annpal.model.AnnClassifier.forward_from_preactivation`. This is the same function evaluated at the
same points as the per-feature loop (:func:`permutation_importance_reference`), not an approximation; the
cost falls from M full forward passes (M·N·M·H1 multiply-adds) to N·M·H1 for the first layer. Both run in
float64 by default, so they agree to ~1e-12 (tested to 1e-6).

How r is drawn
--------------
As the authors: ``np.random.seed(seed); np.random.randint(low=-1, high=2, size=(n_samples,))``, seeded
per model (they use the model index, we default to the model seed), reproduced with a private
``RandomState`` so no global state is touched (:func:`draw_replacement_genotypes`).

Deviations from the authors (METHOD.md §3 decides): the authors score *all* samples (controls and cases)
and average ``|Δf|`` without normalisation; here, as for IG and SM, the case samples are scored and each
sample's scores are L1-normalised before averaging (:mod:`annpal.attribution.mas`).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from annpal.attribution.ig import genotype_tensor, model_device, require_eval

#: Default working-memory budget of the fast path (bytes).
DEFAULT_MEMORY_BYTES = 1 << 30


def draw_replacement_genotypes(n_samples: int, *, seed: int) -> np.ndarray:
    """The random genotype vector ``r`` over samples, drawn exactly as the authors do.

    Equal to ``np.random.seed(seed); np.random.randint(low=-1, high=2, size=(n_samples,))`` without
    touching NumPy's global generator.

    Returns
    -------
    numpy.ndarray
        int8 values in {−1, 0, 1}, length ``n_samples``.
    """
    rng = np.random.RandomState(int(seed))
    return rng.randint(low=-1, high=2, size=(int(n_samples),)).astype(np.int8)


def _hidden_sizes(model: nn.Module) -> tuple[int, int]:
    h1 = int(model.first_linear.out_features)
    later = [m for m in model.layers[2:] if isinstance(m, nn.Linear)]
    h2 = int(later[0].out_features) if later else 1
    return h1, h2


def _in_precision(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """The model itself when it already computes in ``dtype`` (it is only read), else a private copy
    in ``dtype`` so the caller's model is left as it is. Callers attributing many batches convert once
    (``copy.deepcopy(model).double()``) to avoid a copy per batch."""
    if next(model.parameters()).dtype == dtype:
        return model
    return copy.deepcopy(model).to(dtype)


def feature_block_size(*, n_samples: int, n_snps: int, h1: int, h2: int, memory_bytes: int,
                       itemsize: int = 8) -> int:
    """Features per block of the fast path so its tensors fit in ``memory_bytes``.

    Per (sample, feature) pair the block holds the shifted pre-activations and the ReLU output (H1 each,
    plus one temporary), the second layer and GELU (H2 each, plus one) and a few scalars.
    """
    per_pair = (3 * h1 + 3 * h2 + 6) * itemsize
    block = int(memory_bytes) // max(1, per_pair * max(1, n_samples))
    return int(min(max(block, 1), max(1, n_snps)))


def permutation_importance(model: nn.Module, genotypes: np.ndarray | torch.Tensor,
                           replacement: np.ndarray, *, memory_bytes: int = DEFAULT_MEMORY_BYTES,
                           dtype: torch.dtype = torch.float64) -> np.ndarray:
    """``|f(x_j) − f(x_j with x_ji := r_j)|`` for every sample j and feature i, exact fast path.

    Parameters
    ----------
    model
        An :class:`annpal.model.AnnClassifier` in eval mode.
    genotypes
        Samples × M genotypes (int8 −1/0/1 or float).
    replacement
        ``r``, one value per sample (:func:`draw_replacement_genotypes`).
    memory_bytes
        Budget for the block tensors; sets the features per block (:func:`feature_block_size`).
        Samples are split too when a single feature for all samples would exceed it.
    dtype
        Arithmetic precision (float64 keeps the agreement with the reference loop ~1e-12).

    Returns
    -------
    numpy.ndarray
        float64, samples × M, non-negative.
    """
    require_eval(model)
    device = model_device(model)
    n, m = int(np.shape(genotypes)[0]), int(np.shape(genotypes)[1])
    r_all = np.asarray(replacement)
    if r_all.shape != (n,):
        raise ValueError(f"replacement has shape {r_all.shape}, expected ({n},)")
    net = _in_precision(model, dtype)
    h1, h2 = _hidden_sizes(net)
    itemsize = torch.empty((), dtype=dtype).element_size()
    per_feature = (3 * h1 + 3 * h2 + 6) * itemsize
    sample_chunk = int(min(n, max(1, memory_bytes // per_feature))) if n else 1
    weight_t = net.first_linear.weight.detach().t()  # (M, H1): row i is W[:, i]
    out = np.empty((n, m), dtype=np.float64)
    with torch.no_grad():
        for s0 in range(0, n, sample_chunk):
            s1 = min(n, s0 + sample_chunk)
            x = genotype_tensor(genotypes[s0:s1], device=device, dtype=dtype)
            r = torch.as_tensor(r_all[s0:s1], device=device, dtype=dtype)
            z = net.first_linear(x)  # (S, H1)
            f0 = net.forward_from_preactivation(z)[:, 0]  # (S,)
            block = feature_block_size(n_samples=s1 - s0, n_snps=m, h1=h1, h2=h2,
                                       memory_bytes=memory_bytes, itemsize=itemsize)
            for a in range(0, m, block):
                b = min(m, a + block)
                shift = r[:, None] - x[:, a:b]  # (S, B): r_j − x_ji
                # z_j + (r_j − x_ji) W[:, i] for all i in the block, fused: (S, B, H1).
                z_blk = torch.addcmul(z[:, None, :], shift[:, :, None], weight_t[None, a:b, :])
                f = net.forward_from_preactivation(z_blk)[..., 0]  # (S, B)
                out[s0:s1, a:b] = (f - f0[:, None]).abs_().cpu().numpy()
    return out


def permutation_importance_reference(model: nn.Module, genotypes: np.ndarray | torch.Tensor,
                                     replacement: np.ndarray, *, features: np.ndarray | None = None,
                                     dtype: torch.dtype = torch.float64) -> np.ndarray:
    """The plain per-feature loop of ``3b_get_pm_mas.py`` (one full forward pass per feature).

    Kept as the reference for :func:`permutation_importance`; same arguments and result. ``features``
    restricts the loop to those columns (result: samples × len(features)), for timing on a subset.
    """
    require_eval(model)
    device = model_device(model)
    net = _in_precision(model, dtype)
    x = genotype_tensor(genotypes, device=device, dtype=dtype)
    r = torch.as_tensor(np.asarray(replacement), device=device, dtype=dtype)
    cols = np.arange(x.shape[1]) if features is None else np.asarray(features, dtype=np.int64)
    out = np.empty((x.shape[0], cols.size), dtype=np.float64)
    with torch.no_grad():
        f0 = net(x)[:, 0]
        for k, i in enumerate(cols):
            x_perm = x.clone()
            x_perm[:, i] = r
            out[:, k] = (net(x_perm)[:, 0] - f0).abs().cpu().numpy()
    return out
