"""The fused input-dropout kernel: the sparse kernel's law, with the first layer and its Adam step in numba.

At the paper's input dropout (0.99) the sparse kernel (:mod:`annpal.input_dropout`) spends most of a step
outside Adam: an ``embedding_bag`` over ``W1ᵀ`` grouped by a sort, a CSR × dense product that writes a
dense 336 MB ``∂L/∂W1ᵀ``, and Adam reading it back. This kernel does the same arithmetic in two passes
over ``W1ᵀ`` (SNP-major, ``M × H1``), compiled with numba and run on ``--threads`` threads:

* forward (:func:`scatter_preactivation`): the survivors arrive sorted by SNP, so each thread walks its
  share of them in order and adds ``x̃_ij · W1ᵀ[j]`` to its own ``(b, H1)`` sums: one sequential read of
  the rows of ``W1ᵀ`` that have survivors, no sort;
* optimiser (:func:`adam_rows`): for every row ``j`` of ``W1ᵀ`` the gradient
  ``g_j = Σ_{survivors (j, i)} x̃_ij · ∂L/∂z_i`` is summed from the survivors of SNP ``j`` (CSR by SNP,
  computed inline while the row is in cache) and applied at once with torch's Adam formula
  (``torch.optim.Adam``, not AMSGrad): ``g ← g + λ·w``, ``m ← β1·m + (1 − β1)·g``,
  ``v ← β2·v + (1 − β2)·g²``, ``w ← w − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)``. Rows of SNPs without
  a survivor get ``g = λ·w`` exactly as a zero row of a dense gradient would. No dense gradient is
  written, zeroed or read: the pass reads and writes ``w, m, v`` only, less memory traffic than Adam over
  a dense gradient (the "Adam floor" of :mod:`annpal.input_dropout`).

The survivors and their noise are drawn with the sparse kernel's own code and generator calls
(:func:`annpal.input_dropout.survivor_positions`, then one normal per survivor), so both kernels see the
same inputs from one seed and train the same network up to float rounding. The other parameters (``b1``,
``W2``, …: under 0.01 % of the weights) keep ``torch.optim.Adam``; its state for ``W1ᵀ`` lives in the
same optimiser under the same keys (``step``, ``exp_avg``, ``exp_avg_sq``), so checkpoints save and
restore it with no special case.

numba compiles the three functions when the kernel is made (:meth:`FusedInputKernel._warm_up`, logged):
a few seconds the first time, a fraction of a second once numba's on-disk cache holds them (see
:func:`_jit` for where it is kept).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numba
import numpy as np
import torch
from numba import prange
from torch import nn

from annpal.input_dropout import SparseInputKernel, survivor_positions
from annpal.model import AnnClassifier

log = logging.getLogger(__name__)

# numba's OpenMP threads spin after each parallel region, taking the cores from torch's own OpenMP pool
# (a second copy of libgomp) in the operations between; the workqueue pool sleeps instead. An explicit
# NUMBA_THREADING_LAYER is left alone.
if numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "workqueue"

#: Rows of ``W1ᵀ`` per task of the parallel Adam pass (numba splits the tasks evenly over threads).
ADAM_BLOCK_ROWS = 512



def _jit(func: Any) -> Any:
    """``numba.njit(parallel=True)``, cached on disk where numba finds a writable place.

    numba looks in ``$NUMBA_CACHE_DIR``, next to this file, then in the user's cache folder
    (``~/.cache/numba``); where none is writable (a read-only container without a home) it compiles in
    memory in every process instead (``cache=False``) rather than fail.
    """
    try:
        return numba.njit(parallel=True, cache=True, nogil=True)(func)
    except RuntimeError:  # "cannot cache function …: no locator available"
        return numba.njit(parallel=True, cache=False, nogil=True)(func)



@_jit
def _decode_survivors(pos: np.ndarray, batch: int, n_snps: int, x_flat: np.ndarray, rows: np.ndarray,
                      noise: np.ndarray, scale: np.float32, snp: np.ndarray, sample: np.ndarray,
                      values: np.ndarray, crow: np.ndarray) -> None:  # pragma: no cover - compiled
    n = pos.size
    for s in prange(n):
        # ⌊pos / batch⌋ in float64 (exact for pos < 2**53, see draw_survivors): cheaper than int64 division
        j = np.int64(math.floor(pos[s] / batch))
        i = np.int64(pos[s] - j * batch)
        snp[s] = j
        sample[s] = i
        v = np.float32(x_flat[rows[i] * n_snps + j])
        if noise.size:
            v = v - noise[s]
        values[s] = v * scale
        # crow[k] = first survivor of SNP ≥ k: survivor s owns the SNPs after its predecessor's, up to its own
        prev = np.int64(math.floor(pos[s - 1] / batch)) if s > 0 else -1
        for k in range(prev + 1, j + 1):
            crow[k] = s
    last = np.int64(math.floor(pos[n - 1] / batch)) if n > 0 else -1
    for k in prange(last + 1, n_snps + 1):
        crow[k] = n


@_jit
def scatter_preactivation(weight_t: np.ndarray, snp: np.ndarray, sample: np.ndarray, values: np.ndarray,
                          bounds: np.ndarray, partial: np.ndarray) -> None:  # pragma: no cover - compiled
    """``partial[c, i] = Σ x̃_ij · W1ᵀ[j]`` over survivors ``bounds[c] … bounds[c+1] − 1`` (SNP order)."""
    h = weight_t.shape[1]
    for c in prange(bounds.size - 1):
        acc = partial[c]
        acc[:] = 0.0
        for s in range(bounds[c], bounds[c + 1]):
            w = weight_t[snp[s]]
            a = acc[sample[s]]
            v = values[s]
            for k in range(h):
                a[k] += v * w[k]


@_jit
def adam_rows(weight_t: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray, crow: np.ndarray,
              sample: np.ndarray, values: np.ndarray, dz: np.ndarray, step_size: np.float32,
              beta1: np.float32, beta2: np.float32, c1: np.float32, c2: np.float32,
              weight_decay: np.float32, bc2_sqrt: np.float32, eps: np.float32,
              block: int) -> None:  # pragma: no cover - compiled
    """One Adam step of every row of ``W1ᵀ`` with the gradient summed from the survivors of its SNP.

    float32 throughout, with the constants of torch's fused CPU Adam (computed in float64, rounded to
    float32) and its order of operations, except one multiplication by ``1/√(1 − β2ᵗ)`` where torch
    divides by ``√(1 − β2ᵗ)`` (the pass is bound by its divisions; a rounding apart).
    """
    n_rows, h = weight_t.shape
    # one division per weight, not two: ×(1/√(1 − β2ᵗ)) for torch's ÷√(1 − β2ᵗ) (a rounding apart)
    inv_bc2_sqrt = np.float32(1.0) / bc2_sqrt
    for b in prange((n_rows + block - 1) // block):
        g = np.empty(h, np.float32)
        for j in range(b * block, min(n_rows, (b + 1) * block)):
            w, m, v = weight_t[j], exp_avg[j], exp_avg_sq[j]
            g[:] = 0.0
            for s in range(crow[j], crow[j + 1]):
                x, d = values[s], dz[sample[s]]
                for k in range(h):
                    g[k] += x * d[k]
            for k in range(h):
                gk = g[k] + w[k] * weight_decay
                mk = m[k] * beta1 + gk * c1
                vk = v[k] * beta2 + gk * gk * c2
                m[k] = mk
                v[k] = vk
                w[k] = w[k] - step_size * mk / (np.sqrt(vk) * inv_bc2_sqrt + eps)


def _set_threads() -> None:
    """numba's threads follow torch's (``--threads``), within the pool numba started with."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


class FusedFirstLayerAdam(torch.optim.Adam):
    """``torch.optim.Adam`` whose step updates ``W1ᵀ`` from the survivors' sparse gradient in one pass.

    ``W1ᵀ`` is an ordinary member of the first parameter group (its state has Adam's keys, so
    ``state_dict``/``load_state_dict`` need nothing special) but never has a ``.grad``: the kernel hands
    the step its sparse gradient with :meth:`set_sparse_grad`, which :meth:`zero_grad` clears like a
    gradient. Every other parameter is stepped by ``torch.optim.Adam`` itself.
    """

    def __init__(self, weight_t: nn.Parameter, others: list[nn.Parameter], *, lr: float,
                 weight_decay: float) -> None:
        super().__init__([weight_t, *others], lr=lr, weight_decay=weight_decay, fused=True)
        self.weight_t = weight_t
        self._sparse_grad: tuple[np.ndarray, ...] | None = None

    def set_sparse_grad(self, crow: np.ndarray, sample: np.ndarray, values: np.ndarray, dz: np.ndarray
                        ) -> None:
        """``∂L/∂W1ᵀ = x̃ᵀ · dz`` given as its survivors (CSR by SNP: ``crow``, ``sample``, ``values``)."""
        self._sparse_grad = (crow, sample, values, np.ascontiguousarray(dz, dtype=np.float32))

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)
        self._sparse_grad = None

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        if self._sparse_grad is not None:
            self._step_weight_t(*self._sparse_grad)
            self._sparse_grad = None
        return super().step(closure)

    def _step_weight_t(self, crow: np.ndarray, sample: np.ndarray, values: np.ndarray, dz: np.ndarray
                       ) -> None:
        # the constructor offers neither amsgrad nor maximize, so the group always has both off
        group, w = self.param_groups[0], self.weight_t
        state = self.state[w]
        if not state:  # Adam's own lazy initialisation (fused: a float32 step on the parameter's device)
            state["step"] = torch.zeros((), dtype=torch.float32, device=w.device)
            state["exp_avg"] = torch.zeros_like(w, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(w, memory_format=torch.preserve_format)
        state["step"] += 1
        step = int(state["step"].item())
        beta1, beta2 = group["betas"]
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        f32 = np.float32
        _set_threads()
        adam_rows(w.detach().numpy(), state["exp_avg"].numpy(), state["exp_avg_sq"].numpy(), crow, sample,
                  values, dz, f32(group["lr"] / bias_correction1), f32(beta1), f32(beta2), f32(1 - beta1),
                  f32(1 - beta2), f32(group["weight_decay"]), f32(math.sqrt(bias_correction2)),
                  f32(group["eps"]), ADAM_BLOCK_ROWS)


class FusedInputKernel(SparseInputKernel):
    """The sparse kernel's survivors and ``W1ᵀ`` layout, with the numba forward and fused Adam step."""

    name = "fused"

    def __init__(self, x_train: torch.Tensor, model: AnnClassifier, *, input_noise: float,
                 input_dropout: float) -> None:
        if x_train.device.type != "cpu":
            raise ValueError("the fused input-dropout kernel runs on the CPU only")
        super().__init__(x_train, model, input_noise=input_noise, input_dropout=input_dropout)
        self.grad_buf = None  # the point of this kernel: no dense gradient
        self.x_flat = x_train.numpy().reshape(-1)
        self._optimizer: FusedFirstLayerAdam | None = None
        self._warm_up()

    def optimizer(self, model: AnnClassifier, *, lr: float, weight_decay: float) -> FusedFirstLayerAdam:
        others = [q for q in model.parameters() if q is not model.first_linear.weight]
        self._optimizer = FusedFirstLayerAdam(self.weight_t, others, lr=lr, weight_decay=weight_decay)
        return self._optimizer

    def survivors(self, idx: torch.Tensor, generator: torch.Generator) -> tuple[np.ndarray, ...]:
        """``(snp, sample, values, crow)`` of a batch, from the same generator calls as the sparse kernel."""
        b, n_snps = idx.numel(), self.x_train.shape[1]
        pos = survivor_positions(n_snps * b, self.p, generator).numpy()
        n = pos.size
        noise = (torch.empty(n).normal_(0.0, self.input_noise, generator=generator).numpy()
                 if self.input_noise > 0 else np.empty(0, np.float32))
        snp, sample = np.empty(n, np.int32), np.empty(n, np.int32)
        values, crow = np.empty(n, np.float32), np.empty(n_snps + 1, np.int64)
        _set_threads()
        _decode_survivors(pos, b, n_snps, self.x_flat, idx.numpy(), noise, np.float32(1.0 / (1.0 - self.p)),
                          snp, sample, values, crow)
        return snp, sample, values, crow

    def preactivation(self, model: AnnClassifier, idx: torch.Tensor, generator: torch.Generator
                      ) -> torch.Tensor:
        snp, sample, values, crow = self.survivors(idx, generator)
        n_chunks = numba.get_num_threads()
        bounds = np.linspace(0, snp.size, n_chunks + 1).astype(np.int64)
        partial = np.empty((n_chunks, idx.numel(), self.weight_t.shape[1]), np.float32)
        scatter_preactivation(self.weight_t.detach().numpy(), snp, sample, values, bounds, partial)
        z0 = torch.from_numpy(partial).sum(0).requires_grad_()
        self._saved = (crow, sample, values, z0)
        return z0 + model.first_linear.bias

    def backward(self, model: AnnClassifier, loss: torch.Tensor) -> None:
        loss.backward()
        crow, sample, values, z0 = self._saved
        self._saved = None
        dz = z0.grad if z0.grad is not None else torch.zeros_like(z0)
        self._optimizer.set_sparse_grad(crow, sample, values, dz.numpy())

    def _warm_up(self) -> None:
        """Compile the numba functions now (on tiny inputs), so the first step is not the compile."""
        t0 = time.perf_counter()
        h = self.weight_t.shape[1]
        w, z = np.zeros((2, h), np.float32), np.zeros((1, 1, h), np.float32)
        one_i, one_f, f32 = np.zeros(1, np.int32), np.ones(1, np.float32), np.float32(1.0)
        crow = np.zeros(3, np.int64)
        _decode_survivors(np.zeros(1), 1, 2, np.zeros(2, np.int8), np.zeros(1, np.int64), one_f, f32,
                          one_i, one_i.copy(), one_f.copy(), crow)
        scatter_preactivation(w, one_i, one_i, one_f, np.array([0, 1], np.int64), z)
        adam_rows(w, w.copy(), w.copy(), crow, one_i, one_f, z[0], f32, f32, f32, f32, f32, f32, f32, f32, 1)
        log.info("fused input-dropout kernel: numba compiled in %.1f s", time.perf_counter() - t0)


__all__ = ["ADAM_BLOCK_ROWS", "FusedFirstLayerAdam", "FusedInputKernel", "adam_rows", "scatter_preactivation"]
