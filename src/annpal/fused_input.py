"""The fused input-dropout kernel: the sparse kernel's law, with its draws, first layer and Adam step in numba.

At the paper's input dropout (0.99) the sparse kernel (:mod:`annpal.input_dropout`) spends most of a step
outside Adam: torch's serial generator for the survivors and their noise, an ``embedding_bag`` over
``W1ᵀ``, a CSR × dense product that writes a dense 336 MB ``∂L/∂W1ᵀ``, and Adam reading it back. This
kernel reads ``W1ᵀ`` (SNP-major, ``M × H1``) once per step, compiled with numba and run on ``--threads``
threads:

* draws (:func:`annpal.counter_rng.draw_batch`): the survivors of a batch and their noise come from a
  counter-based generator (Philox) keyed by one number per batch from the run's noise generator, drawn
  in parallel segments, sorted by SNP and given as CSR by SNP; the same law as the sparse kernel
  (every input survives independently with probability 1 − p, survivors get ``(x − ξ)/(1 − p)``), not
  the same numbers;
* optimiser (:func:`adam_rows`): for every row ``j`` of ``W1ᵀ`` the gradient
  ``g_j = Σ_{survivors (j, i)} x̃_ij · ∂L/∂z_i`` is summed from the survivors of SNP ``j`` and applied at
  once with torch's Adam formula (``torch.optim.Adam``, not AMSGrad): ``g ← g + λ·w``,
  ``m ← β1·m + (1 − β1)·g``, ``v ← β2·v + (1 − β2)·g²``, ``w ← w − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)``.
  Rows of SNPs without a survivor get ``g = λ·w`` exactly as a zero row of a dense gradient would. No
  dense gradient is written, zeroed or read;
* forward, folded into the optimiser: the training loop announces each batch one step ahead
  (:meth:`FusedInputKernel.prefetch`), so while row ``j`` is in cache, fresh from its update, the pass
  also adds ``x̃_ij · W1ᵀ[j]`` for the next batch's survivors of SNP ``j`` to that batch's
  pre-activations. The first batch of an epoch, which has no step before it, gets the same product from
  :func:`forward_rows` (same chunks, same order: equal bit for bit).

The rows are cut into :data:`ROW_CHUNKS` fixed chunks whose partial products are summed in order, so the
network does not depend on ``--threads``. The other parameters (``b1``, ``W2``, …: under 0.01 % of the
weights) keep ``torch.optim.Adam``; its state for ``W1ᵀ`` lives in the same optimiser under the same keys
(``step``, ``exp_avg``, ``exp_avg_sq``), so checkpoints save and restore it with no special case, and the
noise generator's state resumes the draws.

numba compiles the functions when the kernel is made (:meth:`FusedInputKernel._warm_up`, logged): a few
seconds the first time, a fraction of a second once numba's on-disk cache holds them (where it is kept:
:mod:`annpal.numba_jit`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Any

import numba
import numpy as np
import torch
from numba import prange
from torch import nn

from annpal.counter_rng import draw_batch, survivor_capacity
from annpal.counter_rng import warm_up as warm_up_draws
from annpal.device import torch_threads
from annpal.input_dropout import SparseInputKernel
from annpal.model import AnnClassifier
from annpal.numba_jit import jit

log = logging.getLogger(__name__)

#: Chunks of rows of ``W1ᵀ`` in the first-layer product and the Adam pass (numba spreads them over the
#: threads): fixed, so the per-chunk sums, and the trained network, do not depend on ``--threads``.
ROW_CHUNKS = 8
#: The kernel's rows of ``W1ᵀ`` and of its Adam state are padded to a multiple of this many float32 (32
#: bytes, one AVX2 vector): every row then starts on a vector boundary and its loops have no scalar
#: remainder (H1 = 290 → rows of 296; measured 0.84 instead of 0.92 times the Adam floor for the Adam pass).
ROW_ALIGN = 8


def padded_width(h: int) -> int:
    """Row length of the kernel's padded arrays for ``h`` columns: ``h`` rounded up to :data:`ROW_ALIGN`."""
    return -(-h // ROW_ALIGN) * ROW_ALIGN


def padded_zeros(n_rows: int, h: int) -> torch.Tensor:
    """An ``n_rows × h`` float32 zero tensor whose rows lie :func:`padded_width` ``(h)`` apart in memory
    (the padding columns hold zeros too; :func:`padded_rows` gives the whole array).

    The memory comes from numpy, which asks Linux for transparent huge pages on large arrays (torch's
    allocator does not by default): a step reads and writes ``W1ᵀ`` and its state, 1 GB at paper scale,
    and 2 MB pages spare the page walks (about 9 % of an Adam pass here).
    """
    return torch.from_numpy(np.zeros((n_rows, padded_width(h)), np.float32))[:, :h]


def padded_rows(t: torch.Tensor) -> np.ndarray:
    """The whole rows of ``t`` as a float32 numpy array: ``n_rows × t.stride(0)``, padding included,
    when ``t`` is the first columns of such an array (:func:`padded_zeros`); ``t`` itself when contiguous.

    Raises
    ------
    ValueError
        ``t`` is neither contiguous nor a column slice of a row-major array it can be widened to.
    """
    t = t.detach()
    if t.is_contiguous():
        return t.numpy()
    n_rows, stride = t.shape[0], t.stride(0)
    if t.dim() != 2 or t.stride(1) != 1 or stride < t.shape[1] or (
            (t.storage_offset() + n_rows * stride) * t.element_size() > t.untyped_storage().nbytes()):
        raise ValueError(f"fused kernel: W1ᵀ state of shape {tuple(t.shape)} and strides {t.stride()} is not "
                         "a row-major array with padded rows")
    return torch.as_strided(t, (n_rows, stride), (stride, 1)).numpy()



#: Compiled with annpal's numba options (annpal.numba_jit) and one licence more, ``contract``: a
#: multiply-add may round once (an FMA). The folded and the standalone first-layer products are compiled
#: alike, so they stay equal bit for bit.
_jit = jit(fastmath={"contract"})


@_jit
def forward_rows(weight_t: np.ndarray, crow: np.ndarray, sample: np.ndarray, values: np.ndarray,
                 partial: np.ndarray) -> None:  # pragma: no cover - compiled
    """``partial[c, i] = Σ x̃_ij · W1ᵀ[j]`` over the survivors of the rows ``j`` of chunk ``c``.

    The rows of ``W1ᵀ`` are cut into ``partial.shape[0]`` equal chunks, whatever the thread count, and
    each chunk walks its rows in order: the sums, and so the network, do not depend on ``--threads``, and
    they are the ones :func:`adam_rows` computes when it folds this product into the optimiser pass.
    """
    n_rows, h = weight_t.shape
    n_chunks = partial.shape[0]
    for c in prange(n_chunks):
        acc = partial[c]
        acc[:] = 0.0
        for j in range(n_rows * c // n_chunks, n_rows * (c + 1) // n_chunks):
            w = weight_t[j]
            for s in range(crow[j], crow[j + 1]):
                a = acc[sample[s]]
                v = values[s]
                for k in range(h):
                    a[k] += v * w[k]


@_jit
def adam_rows(weight_t: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray, crow: np.ndarray,
              sample: np.ndarray, values: np.ndarray, dz: np.ndarray, step_size: np.float32,
              beta1: np.float32, beta2: np.float32, c1: np.float32, c2: np.float32,
              weight_decay: np.float32, bc2_sqrt: np.float32, eps: np.float32, next_crow: np.ndarray,
              next_sample: np.ndarray, next_values: np.ndarray,
              partial: np.ndarray) -> None:  # pragma: no cover - compiled
    """One Adam step of every row of ``W1ᵀ`` with the gradient summed from the survivors of its SNP, and
    (when ``next_crow`` is not empty) the next batch's first-layer product from the updated rows.

    float32 throughout, with the constants of torch's fused CPU Adam (computed in float64, rounded to
    float32) and its order of operations, except one multiplication by ``1/√(1 − β2ᵗ)`` where torch
    divides by ``√(1 − β2ᵗ)`` (the pass is bound by its divisions; a rounding apart). The rows are cut
    into the chunks of :func:`forward_rows`, so ``partial`` gets exactly what :func:`forward_rows` would
    compute from the updated weights: each row is read once per step for both.
    """
    n_rows, h = weight_t.shape
    n_chunks = partial.shape[0]
    fold = next_crow.size > 0
    # one division per weight, not two: ×(1/√(1 − β2ᵗ)) for torch's ÷√(1 − β2ᵗ) (a rounding apart)
    inv_bc2_sqrt = np.float32(1.0) / bc2_sqrt
    for c in prange(n_chunks):
        g = np.empty(h, np.float32)
        acc = partial[c]
        if fold:
            acc[:] = 0.0
        for j in range(n_rows * c // n_chunks, n_rows * (c + 1) // n_chunks):
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
            if fold:
                for s in range(next_crow[j], next_crow[j + 1]):
                    a = acc[next_sample[s]]
                    x = next_values[s]
                    for k in range(h):
                        a[k] += x * w[k]


def _set_threads(threads: int) -> None:
    """numba runs the kernel on ``threads`` threads (``--threads``), within the pool numba started with."""
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


class FusedFirstLayerAdam(torch.optim.Adam):
    """``torch.optim.Adam`` whose step updates ``W1ᵀ`` from the survivors' sparse gradient in one pass.

    ``W1ᵀ`` is an ordinary member of the first parameter group (its state has Adam's keys, so
    ``state_dict``/``load_state_dict`` need nothing special) but never has a ``.grad``: the kernel hands
    the step its sparse gradient with :meth:`set_sparse_grad`, which :meth:`zero_grad` clears like a
    gradient. Every other parameter is stepped by ``torch.optim.Adam`` itself. Given the next batch's
    survivors (:meth:`set_next`), the same pass also computes that batch's first-layer product from the
    updated rows (:meth:`pop_next_product`).
    """

    def __init__(self, weight_t: nn.Parameter, others: list[nn.Parameter], *, lr: float,
                 weight_decay: float, threads: int | None = None) -> None:
        super().__init__([weight_t, *others], lr=lr, weight_decay=weight_decay, fused=True)
        self.weight_t = weight_t
        #: numba threads of the W1ᵀ pass (default: torch's thread count when the optimiser is made)
        self.threads = torch.get_num_threads() if threads is None else threads
        self._sparse_grad: tuple[np.ndarray, ...] | None = None
        self._next: tuple[np.ndarray, ...] | None = None
        self._product: np.ndarray | None = None
        self._dz: np.ndarray | None = None

    @property
    def row_width(self) -> int:
        """Floats from one row of ``W1ᵀ`` to the next in memory (its width, unless padded)."""
        return padded_rows(self.weight_t).shape[1]

    def set_sparse_grad(self, crow: np.ndarray, sample: np.ndarray, values: np.ndarray, dz: np.ndarray
                        ) -> None:
        """``∂L/∂W1ᵀ = x̃ᵀ · dz`` given as its survivors (CSR by SNP: ``crow``, ``sample``, ``values``)."""
        width = self.row_width
        if dz.shape[1] != width:  # rows padded like W1ᵀ's, with zeros: the padding gets no gradient
            if self._dz is None or self._dz.shape[0] != dz.shape[0] or self._dz.shape[1] != width:
                self._dz = np.zeros((dz.shape[0], width), np.float32)
            self._dz[:, :dz.shape[1]] = dz
            dz = self._dz
        self._sparse_grad = (crow, sample, values, np.ascontiguousarray(dz, dtype=np.float32))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Adam's own, then ``W1ᵀ``'s state copied into arrays laid out like ``W1ᵀ`` (padded rows, huge
        pages): a checkpoint holds it in whatever layout it was saved in."""
        super().load_state_dict(state_dict)
        state = self.state.get(self.weight_t)
        if state:
            for key in ("exp_avg", "exp_avg_sq"):
                state[key] = self._like_weight(state[key])

    def _like_weight(self, value: torch.Tensor | None = None) -> torch.Tensor:
        """A tensor laid out like ``W1ᵀ`` (same row stride), zeros or a copy of ``value``."""
        w = self.weight_t
        padded = w.dim() == 2 and w.stride() == (padded_width(w.shape[1]), 1)
        out = padded_zeros(*w.shape) if padded else torch.zeros_like(w)
        if value is not None:
            out.copy_(value)
        return out

    def set_next(self, crow: np.ndarray, sample: np.ndarray, values: np.ndarray, partial: np.ndarray) -> None:
        """Fold the next batch's product (survivors as CSR by SNP) into the next step, into ``partial``."""
        self._next = (crow, sample, values, partial)

    def pop_next_product(self) -> np.ndarray | None:
        """The partial sums (:func:`forward_rows`'s layout) the last step computed, once; else ``None``."""
        product, self._product = self._product, None
        return product

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)
        self._sparse_grad = None

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        if self._sparse_grad is not None:
            self._step_weight_t(*self._sparse_grad)
            self._sparse_grad = None
        self._next = None
        return super().step(closure)

    def _step_weight_t(self, crow: np.ndarray, sample: np.ndarray, values: np.ndarray, dz: np.ndarray
                       ) -> None:
        # the constructor offers neither amsgrad nor maximize, so the group always has both off
        group, w = self.param_groups[0], self.weight_t
        state = self.state[w]
        if not state:  # Adam's lazy initialisation (fused: a float32 step), the moments laid out like W1ᵀ
            state["step"] = torch.zeros((), dtype=torch.float32, device=w.device)
            state["exp_avg"] = self._like_weight()
            state["exp_avg_sq"] = self._like_weight()
        state["step"] += 1
        step = int(state["step"].item())
        beta1, beta2 = group["betas"]
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        f32 = np.float32
        rows = padded_rows(w)
        if self._next is None:
            nxt = (np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.float32),
                   np.empty((ROW_CHUNKS, 0, rows.shape[1]), np.float32))
        else:
            nxt = self._next
        moments = [padded_rows(state[key]) for key in ("exp_avg", "exp_avg_sq")]
        if any(m.shape != rows.shape for m in moments):
            raise ValueError("fused kernel: W1ᵀ and its Adam state are laid out differently")
        _set_threads(self.threads)
        adam_rows(rows, *moments, crow, sample,
                  values, dz, f32(group["lr"] / bias_correction1), f32(beta1), f32(beta2), f32(1 - beta1),
                  f32(1 - beta2), f32(group["weight_decay"]), f32(math.sqrt(bias_correction2)),
                  f32(group["eps"]), *nxt)
        self._product = None if self._next is None else nxt[3]


class FusedInputKernel(SparseInputKernel):
    """The sparse kernel's law and ``W1ᵀ`` layout, with parallel counter-based draws, the numba forward and
    fused Adam step.

    With ``fold`` (the default), the training loop announces each batch one step ahead
    (:meth:`prefetch`): its survivors are drawn then, and the optimiser pass that updates ``W1ᵀ`` computes
    its first-layer product from the freshly updated rows, so ``W1ᵀ`` is read once per step instead of
    twice. The numbers are the same as without folding (the same chunks, summed in the same order).
    """

    name = "fused"

    def __init__(self, x_train: torch.Tensor, model: AnnClassifier, *, input_noise: float,
                 input_dropout: float, fold: bool = True) -> None:
        if x_train.device.type != "cpu":
            raise ValueError("the fused input-dropout kernel runs on the CPU only")
        super().__init__(x_train, model, input_noise=input_noise, input_dropout=input_dropout)
        self.grad_buf = None  # the point of this kernel: no dense gradient
        #: numba threads of the kernel's passes: torch's (``--threads``) when the kernel is made
        self.threads = torch.get_num_threads()
        # W1ᵀ in rows padded to a vector boundary (padded_zeros); the model's weight stays a view of it
        self.weight_t = nn.Parameter(padded_zeros(*self.weight_t.shape).copy_(self.weight_t.detach()))
        model.first_linear.weight = nn.Parameter(self.weight_t.detach().t(), requires_grad=False)
        self.x_flat = x_train.numpy().reshape(-1)
        self.fold = fold
        self._optimizer: FusedFirstLayerAdam | None = None
        self._next: tuple[torch.Tensor, tuple[np.ndarray, ...]] | None = None
        # reused output arrays (fresh ones page-fault on every write): two sets of survivors, alternating,
        # as the current batch's are still in use when the next batch's are drawn; one product buffer
        self._draw_buffers: list[tuple[np.ndarray, ...]] = []
        self._draws = 0
        self._partial: np.ndarray | None = None
        self._warm_up()

    def optimizer(self, model: AnnClassifier, *, lr: float, weight_decay: float) -> FusedFirstLayerAdam:
        others = [q for q in model.parameters() if q is not model.first_linear.weight]
        self._optimizer = FusedFirstLayerAdam(self.weight_t, others, lr=lr, weight_decay=weight_decay,
                                              threads=self.threads)
        return self._optimizer

    def survivors(self, idx: torch.Tensor, generator: torch.Generator) -> tuple[np.ndarray, ...]:
        """``(snp, sample, values, crow)`` of a batch (:func:`annpal.counter_rng.draw_batch`).

        One 63-bit key per batch comes from ``generator`` (so a checkpoint of the generator resumes the
        draws exactly); the survivors and their noise are Philox draws under that key, made in parallel.
        Without dropout and noise the batch is deterministic and no key is drawn. The arrays are the
        kernel's own, reused: valid until the draw after the next one.
        """
        key = 0
        if self.p > 0 or self.input_noise > 0:
            key = int(torch.randint(0, 2 ** 63 - 1, (1,), generator=generator, dtype=torch.int64))
        _set_threads(self.threads)
        self._draws += 1
        return draw_batch(key, self.x_flat, self.x_train.shape[1], idx.numpy().astype(np.int64, copy=False),
                          self.p, self.input_noise, 1.0 / (1.0 - self.p), out=self._buffers(idx.numel()))

    def _buffers(self, b: int) -> tuple[np.ndarray, ...]:
        """This draw's set of output arrays, sized for ``b`` rows (draw_batch makes fresh ones if more
        survive than they hold, 8 standard deviations above the expected count)."""
        n_snps = self.x_train.shape[1]
        size = survivor_capacity(n_snps * b, self.p)
        if not self._draw_buffers or self._draw_buffers[0][0].size < size:
            self._draw_buffers = [(np.empty(size, np.int32), np.empty(size, np.int32), np.empty(size, np.float32),
                                   np.empty(n_snps + 1, np.int64)) for _ in range(2)]
        return self._draw_buffers[self._draws % 2]

    def _product_buffer(self, b: int) -> np.ndarray:
        """The partial products' array for ``b`` rows (summed into a new tensor as soon as filled)."""
        shape = (ROW_CHUNKS, b, padded_width(self.weight_t.shape[1]))
        if self._partial is None or self._partial.shape != shape:
            self._partial = np.empty(shape, np.float32)
        return self._partial

    def steps(self) -> contextlib.AbstractContextManager[None]:
        """torch on one thread during the training steps, numba on :attr:`threads`.

        torch's share of a step is a few small operations (the layers after the first, the loss, their
        back-propagation, Adam for the small layers). After each parallel region torch's OpenMP threads
        spin for milliseconds before they sleep (libgomp's default), and that spin took a core from the
        numba passes that follow; on one thread torch starts no region, so nothing spins. Measured at
        paper scale on 2 cores, steps alternated in one process: 107 ms per step instead of 114 ms.
        Validation, a large product, runs outside, on every thread.
        """
        return torch_threads(1)

    def prefetch(self, model: AnnClassifier, idx: torch.Tensor, generator: torch.Generator) -> None:
        """Draw the survivors of the batch after this step (rows ``idx``) now, before the optimiser step;
        with ``fold`` that step also computes the batch's first-layer product."""
        survivors = self.survivors(idx, generator)
        self._next = (idx, survivors)
        if self.fold:
            _, sample, values, crow = survivors
            partial = self._product_buffer(idx.numel())
            self._optimizer.set_next(crow, sample, values, partial)

    def preactivation(self, model: AnnClassifier, idx: torch.Tensor, generator: torch.Generator
                      ) -> torch.Tensor:
        partial = self._optimizer.pop_next_product() if self._optimizer is not None else None
        if self._next is None:
            survivors = self.survivors(idx, generator)
        else:
            announced, survivors = self._next
            self._next = None
            if not torch.equal(announced, idx):
                raise RuntimeError("fused kernel: the batch differs from the one announced by prefetch")
        _, sample, values, crow = survivors
        if partial is None:
            partial = self._product_buffer(idx.numel())
            _set_threads(self.threads)
            forward_rows(padded_rows(self.weight_t), crow, sample, values, partial)
        z0 = torch.from_numpy(partial[:, :, :self.weight_t.shape[1]]).sum(0).requires_grad_()
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
        warm_up_draws()
        forward_rows(w, crow, one_i, one_f, z)
        adam_rows(w, w.copy(), w.copy(), crow, one_i, one_f, z[0], f32, f32, f32, f32, f32, f32, f32, f32,
                  crow, one_i, one_f, z)
        log.info("fused input-dropout kernel: numba compiled in %.1f s", time.perf_counter() - t0)


__all__ = ["ROW_ALIGN", "ROW_CHUNKS", "FusedFirstLayerAdam", "FusedInputKernel", "adam_rows", "forward_rows",
           "padded_rows", "padded_width", "padded_zeros"]
