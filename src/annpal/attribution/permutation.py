"""Permutation importance (docs/method.md §3, "PM"; authors' ``3b_get_pm_mas.py``).

For every feature i, the genotype of every sample j is replaced by a random genotype ``r_j`` (one random
vector over samples per model) and the score is ``|f(x_j) − f(x_j with x_ji := r_j)|``.

Exact fast path
---------------
In eval mode dropout is the identity and only the first linear layer sees the genotypes, so replacing
feature i moves every pre-activation of sample j by the rank-1 term ``(r_j − x_ji) · W[:, i]``:

    z_j^(i) = z_j + (r_j − x_ji) W[:, i],    z = x Wᵀ + b computed once.

:func:`permutation_importance` builds ``z_j^(i)`` for a block of samples × features at once and evaluates
the rest of the network on it. This is the same function evaluated at the same points as the per-feature
loop (:func:`permutation_importance_reference`), not an approximation; the cost falls from M full forward
passes (M·N·M·H1 multiply-adds) to N·M·(H1 + H1·H2) (about 4 MFLOP per SNP for 240 samples at paper
scale). Both run in float64 by default, so they agree to ~1e-12 (tested to 1e-9).

The blocks are small enough to stay in cache (:func:`pm_block_shape`), their buffers are allocated once
per thread and reused (no page faults in the hot loop), and threads work on disjoint blocks, each with
single-threaded torch ops, so the result does not depend on the thread count beyond BLAS rounding in
the last place (tested).

Covariates (a network trained with ``--nn-covariates``) join after the first layer and are never
replaced: in the fast path their part of the second layer, ``W2[:, H1:]·c_j + b2``, is one bias row per
sample computed once (:func:`_tail_plan`); the reference loop passes them to every forward pass.

How r is drawn
--------------
As the authors: ``np.random.seed(seed); np.random.randint(low=-1, high=2, size=(n_samples,))``, seeded
per model (they use the model index, we default to the model seed), reproduced with a private
``RandomState`` so no global state is touched (:func:`draw_replacement_genotypes`).

Deviations from the authors (docs/method.md): the authors score *all* samples (controls and cases)
and average ``|Δf|`` without normalisation; here, as for IG and SM, the case samples are scored and each
sample's scores are L1-normalised before averaging (:mod:`annpal.attribution.mas`).
"""

from __future__ import annotations

import concurrent.futures
import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from annpal.attribution.ig import covariate_tensor, genotype_tensor, model_device, require_eval
from annpal.model import FIRST_LINEAR

#: Default working-memory budget of the fast path (bytes).
DEFAULT_MEMORY_BYTES = 1 << 30

#: Target size of one block's buffers on CPU: about a core's L2 cache (2 MiB on the benchmark machine)
#: plus a share of L3. Smaller blocks stay in cache but pay Python's per-block overhead more often;
#: measured at paper scale (benchmarks/bench_attribution.py), 1–2 k (sample, feature) pairs per block
#: were fastest.
CACHE_BYTES = 4 << 20


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


def _in_precision(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """The model itself when it already computes in ``dtype`` (it is only read), else a private copy
    in ``dtype`` so the caller's model is left as it is. Callers attributing many batches convert once
    (``copy.deepcopy(model).double()``) to avoid a copy per batch."""
    if next(model.parameters()).dtype == dtype:
        return model
    return copy.deepcopy(model).to(dtype)


def pm_block_shape(*, n_samples: int, h1: int, h2: int, memory_bytes: int, n_threads: int = 1,
                   itemsize: int = 8, cache_bytes: int = CACHE_BYTES) -> tuple[int, int]:
    """``(samples, features)`` of one block of the fast path.

    One block holds, per (sample, feature) pair, the shifted pre-activations (H1), the second layer (H2)
    and two scalars. Its size is the smaller of ``cache_bytes`` and each thread's share of
    ``memory_bytes``: small enough to stay in a core's cache, large enough that Python's per-block
    overhead stays small. Samples fill the block first (they share the block's rows of W1).
    """
    per_pair = (h1 + h2 + 2) * itemsize
    budget = min(int(cache_bytes), int(memory_bytes) // max(1, n_threads))
    pairs = max(1, budget // per_pair)
    samples = int(min(max(1, n_samples), pairs))
    return samples, int(max(1, pairs // samples))


def _tail_plan(net: nn.Module, covariates: torch.Tensor | None = None) -> list[tuple[str, Any]]:
    """The layers after the first linear one as in-place steps (eval-mode dropout is the identity).

    With covariates the second layer is ``("linear_rows", (W2[:, :H1]ᵀ, B))``: its covariate columns and
    bias folded into one bias row per sample, ``B = standardised(c) W2[:, H1:]ᵀ + b2`` (samples × H2).
    """
    plan: list[tuple[str, Any]] = []
    for layer in net.layers[FIRST_LINEAR + 1:]:
        if isinstance(layer, nn.Dropout):
            continue
        if layer is net.second_linear and net.config.n_covariates:
            h1 = net.first_linear.out_features
            joined = net.join_covariates(covariates.new_zeros((covariates.shape[0], h1)), covariates)
            plan.append(("linear_rows", (layer.weight.detach()[:, :h1].t().contiguous(), layer(joined).detach())))
        elif isinstance(layer, nn.Linear):
            plan.append(("linear", (layer.weight.detach().t().contiguous(), layer.bias.detach())))
        elif isinstance(layer, nn.ReLU):
            plan.append(("relu", None))
        elif isinstance(layer, nn.GELU):
            plan.append(("gelu", layer.approximate))
        elif isinstance(layer, nn.Sigmoid):
            plan.append(("sigmoid", None))
        else:
            raise TypeError(f"permutation fast path: no in-place step for {type(layer).__name__}")
    return plan


class _BlockKernel:
    """The fast path's block loop with buffers allocated once per thread and reused for every block.

    A block is a range of samples × a range of features; its pre-activations are built in place
    (``addcmul`` into a buffer), the tail runs in place (``addmm(out=)``, ``clamp_min_``, ``gelu_``,
    ``sigmoid_``) and ``|f − f0|`` is written straight into the output. Nothing is allocated per block,
    so the loop does not fault fresh pages (the old loop spent ~45 % of its time in the kernel doing
    that at paper scale).
    """

    def __init__(self, net: nn.Module, plan: list[tuple[str, Any]], x: torch.Tensor, r: torch.Tensor,
                 z: torch.Tensor, f0: torch.Tensor, shape: tuple[int, int]) -> None:
        self.x, self.r, self.z, self.f0 = x, r, z, f0
        self.w1t = net.first_linear.weight.detach().t().contiguous()  # (M, H1): row i is W[:, i]
        self.plan = plan
        self.shape = shape
        self.widths = [z.shape[1]] + [arg[0].shape[1] for op, arg in self.plan if op.startswith("linear")]

    def buffers(self) -> list[torch.Tensor]:
        """One buffer per layer width plus one for the shifts ``r_j − x_ji`` (the last one)."""
        pairs = self.shape[0] * self.shape[1]
        return [torch.empty(pairs * w, dtype=self.z.dtype, device=self.z.device) for w in self.widths + [1]]

    def run(self, blocks: list[tuple[int, int]], out: torch.Tensor) -> None:
        """Fill ``out[s:s+S, a:a+B]`` for each block start ``(a, s)``; ``out`` is samples × M."""
        bufs = self.buffers()
        n, m = out.shape
        with torch.no_grad():
            for a, s in blocks:
                b, e = min(m, a + self.shape[1]), min(n, s + self.shape[0])
                pairs = (e - s) * (b - a)
                shift = bufs[-1][:pairs].view(e - s, b - a)
                torch.sub(self.r[s:e, None], self.x[s:e, a:b], out=shift)  # r_j − x_ji
                cur = bufs[0][:pairs * self.widths[0]].view(e - s, b - a, self.widths[0])
                torch.addcmul(self.z[s:e, None, :], shift[:, :, None], self.w1t[None, a:b, :], out=cur)
                cur = cur.view(pairs, self.widths[0])
                k = 0
                for op, arg in self.plan:
                    if op == "linear":
                        k += 1
                        nxt = bufs[k][:pairs * self.widths[k]].view(pairs, self.widths[k])
                        torch.addmm(arg[1], cur, arg[0], out=nxt)
                        cur = nxt
                    elif op == "linear_rows":  # per-sample bias rows (covariates), see _tail_plan
                        k += 1
                        nxt = bufs[k][:pairs * self.widths[k]].view(pairs, self.widths[k])
                        torch.mm(cur, arg[0], out=nxt)
                        nxt.view(e - s, b - a, -1).add_(arg[1][s:e, None, :])
                        cur = nxt
                    elif op == "relu":
                        cur.clamp_min_(0)
                    elif op == "gelu":
                        torch._C._nn.gelu_(cur, approximate=arg)
                    else:
                        cur.sigmoid_()
                dst = out[s:e, a:b]
                torch.sub(cur.view(e - s, b - a), self.f0[s:e, None], out=dst)
                dst.abs_()


def _run_threads(kernel: _BlockKernel, blocks: list[tuple[int, int]], out: torch.Tensor, n_threads: int
                 ) -> None:
    """Blocks dealt round-robin to ``n_threads`` threads, each running single-threaded torch ops with its
    own buffers (torch releases the GIL inside the ops). One thread per block keeps every block's
    arithmetic, and so the result, independent of the thread count (up to BLAS rounding)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if n_threads <= 1:
            kernel.run(blocks, out)
            return
        with concurrent.futures.ThreadPoolExecutor(
                max_workers=n_threads, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            list(pool.map(lambda k: kernel.run(blocks[k::n_threads], out), range(n_threads)))
    finally:
        torch.set_num_threads(previous)


def permutation_importance(model: nn.Module, genotypes: np.ndarray | torch.Tensor,
                           replacement: np.ndarray, *, memory_bytes: int = DEFAULT_MEMORY_BYTES,
                           dtype: torch.dtype = torch.float64, n_threads: int | None = None,
                           covariates: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
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
        Budget for the block buffers of all threads (:func:`pm_block_shape`).
    dtype
        Arithmetic precision (float64 keeps the agreement with the reference loop ~1e-12).
    n_threads
        Threads working on blocks; ``None`` = torch's thread count (1 on a GPU).
    covariates
        The samples' raw covariates for a network that takes them (fixed, never replaced).

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
    threads = 1 if device.type != "cpu" else int(n_threads or torch.get_num_threads())
    # int8 genotypes stay int8 (8× less memory than float64); r − x promotes per block.
    is_int8 = genotypes.dtype == torch.int8 if isinstance(genotypes, torch.Tensor) else \
        np.asarray(genotypes).dtype == np.int8
    x = genotype_tensor(genotypes, device=device, dtype=torch.int8 if is_int8 else dtype)
    r = torch.as_tensor(r_all, device=device, dtype=dtype)
    c = covariate_tensor(covariates, like=r)
    with torch.no_grad():
        z = torch.empty((n, net.first_linear.out_features), dtype=dtype, device=device)
        for s in range(0, n, 64):
            z[s:s + 64] = net.first_linear(x[s:s + 64].to(dtype))
        f0 = net.forward_from_preactivation(z, c)[:, 0]
        plan = _tail_plan(net, c)
    later = sum(arg[0].shape[1] for op, arg in plan if op.startswith("linear"))
    shape = pm_block_shape(n_samples=n, h1=z.shape[1], h2=later, memory_bytes=memory_bytes,
                           n_threads=threads, itemsize=z.element_size(),
                           cache_bytes=CACHE_BYTES if device.type == "cpu" else int(memory_bytes))
    out = torch.empty((n, m), dtype=dtype, device=device)
    blocks = [(a, s) for a in range(0, m, shape[1]) for s in range(0, n, shape[0])]
    _run_threads(_BlockKernel(net, plan, x, r, z, f0, shape), blocks, out, threads)
    return out.cpu().numpy().astype(np.float64, copy=False)


def permutation_importance_reference(model: nn.Module, genotypes: np.ndarray | torch.Tensor,
                                     replacement: np.ndarray, *, features: np.ndarray | None = None,
                                     dtype: torch.dtype = torch.float64,
                                     covariates: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """The plain per-feature loop of ``3b_get_pm_mas.py`` (one full forward pass per feature).

    Kept as the reference for :func:`permutation_importance`; same arguments and result. ``features``
    restricts the loop to those columns (result: samples × len(features)), for timing on a subset.
    """
    require_eval(model)
    device = model_device(model)
    net = _in_precision(model, dtype)
    x = genotype_tensor(genotypes, device=device, dtype=dtype)
    r = torch.as_tensor(np.asarray(replacement), device=device, dtype=dtype)
    c = covariate_tensor(covariates, like=r)
    cols = np.arange(x.shape[1]) if features is None else np.asarray(features, dtype=np.int64)
    out = np.empty((x.shape[0], cols.size), dtype=np.float64)
    with torch.no_grad():
        f0 = net(x, c)[:, 0]
        for k, i in enumerate(cols):
            x_perm = x.clone()
            x_perm[:, i] = r
            out[:, k] = (net(x_perm, c)[:, 0] - f0).abs().cpu().numpy()
    return out
