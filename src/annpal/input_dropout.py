"""Batch kernels: the first layer of a training step under the recipe's input law (docs/method.md §2).

Each training batch reaches the network as ``x̃ = m ⊙ (x − ξ) / (1 − p)``: every input survives
independently with probability ``1 − p`` (``m``), survivors get Gaussian noise ``ξ ~ N(0, σ)`` and are
scaled by ``1/(1 − p)``, dropped inputs contribute nothing. The authors apply the noise to all inputs and
then the model's ``Dropout(p)``; the law is the same.

A *batch kernel* turns a batch of training rows into the first layer's pre-activations
``z = W1 x̃ + b1``, back-propagates the loss and builds the optimiser that applies it; the training loop
sees only :class:`BatchKernel`'s methods. Three kernels, equal in law:

* :class:`DenseInputKernel`, the reference: the full ``(b, M)`` float batch, its noise and mask, one
  dense matrix product. Cost ∝ ``b·M·H1`` whatever ``p``.
* :class:`SparseInputKernel`: only the survivors (about ``(1 − p)·b·M`` of them: 1 % at the paper's
  ``p = 0.99``). Their positions are drawn by geometric gaps (:func:`draw_survivors`, a Bernoulli trial
  per input), noise only for them, the forward product is an ``embedding_bag`` over ``W1`` stored
  SNP-major (row ``j`` = SNP ``j``'s weights, one contiguous read per survivor) and the ``W1`` gradient
  is one sparse × dense product written straight into a persistent buffer. The optimiser step (the same
  fused Adam over every weight) is then most of the step: with batch 256 about 92 % of ``W1``'s rows get
  a gradient, and Adam's weight decay touches every weight anyway.
* :class:`annpal.fused_input.FusedInputKernel` (CPU, numba): the sparse kernel's survivors and noise
  (the same generator calls, so the same inputs from one seed), a forward pass that reads the rows of
  ``W1ᵀ`` in SNP order without sorting, and ``W1``'s gradient summed row by row inside its Adam update,
  so no dense gradient exists. The reference for it is the sparse kernel with ``torch.optim.Adam``.

The dense kernel draws different random numbers from the other two, so it trains a different (equally
valid) network from one seed; the sparse and fused kernels agree up to float rounding. The kernel is part
of a run's fingerprint and is recorded in ``train.json``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from typing import Protocol

import torch
from torch import nn
from torch.nn import functional as F

from annpal.errors import InputError
from annpal.model import AnnClassifier

log = logging.getLogger(__name__)

#: Values of ``--input-dropout-kernel``.
KERNEL_CHOICES = ("auto", "dense", "sparse", "fused")
#: ``auto`` picks a survivors-only kernel from this input dropout up (at p = 0.5 the survivors are half
#: the batch and the dense product is faster).
SPARSE_MIN_DROPOUT = 0.9
#: SNPs per block of ``W1ᵀ`` in the sparse forward product (:func:`sparse_preactivation`); a power of two.
SPARSE_BLOCK_SNPS = 8192


def fused_available() -> bool:
    """Whether numba (which the fused kernel is compiled with) can be imported."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_input_kernel(name: str, input_dropout: float, *, device_type: str = "cpu") -> str:
    """``"dense"``, ``"sparse"`` or ``"fused"`` for ``--input-dropout-kernel name`` at input dropout ``p``.

    ``auto``: the fastest exact kernel: below ``p = 0.9`` dense; from 0.9 up fused on the CPU (sparse
    where numba is missing) and sparse on a GPU.

    Raises
    ------
    InputError
        An unknown kernel name, or ``fused`` off the CPU or without numba.
    """
    if name not in KERNEL_CHOICES:
        raise InputError(f"--input-dropout-kernel {name}: unknown kernel; use one of {', '.join(KERNEL_CHOICES)}")
    if name == "auto":
        if input_dropout < SPARSE_MIN_DROPOUT:
            return "dense"
        return "fused" if device_type == "cpu" and fused_available() else "sparse"
    if name == "fused" and device_type != "cpu":
        raise InputError(f"--input-dropout-kernel fused runs on the CPU only (device {device_type}); "
                         "use sparse or auto")
    if name == "fused" and not fused_available():
        raise InputError("--input-dropout-kernel fused needs numba (pip install -r requirements.lock); "
                         "use sparse or auto")
    return name


class BatchKernel(Protocol):
    """What the training loop asks of a batch kernel."""

    name: str

    def parameters(self, model: AnnClassifier) -> list[nn.Parameter]:
        """The tensors the optimiser updates (every weight of the network, in some layout)."""

    def preactivation(self, model: AnnClassifier, idx: torch.Tensor, generator: torch.Generator
                      ) -> torch.Tensor:
        """``z = W1 x̃ + b1`` (float32, ``(b, H1)``) for the training rows ``idx`` under the input law."""

    def backward(self, model: AnnClassifier, loss: torch.Tensor) -> None:
        """Gradients of ``loss`` (computed from the last :meth:`preactivation`) into :meth:`parameters`."""

    def prefetch(self, model: AnnClassifier, idx: torch.Tensor, generator: torch.Generator) -> None:
        """Announce the rows ``idx`` of the next batch, after :meth:`backward` and before the optimiser
        step; the next :meth:`preactivation` gets these rows. A kernel may draw their input noise now."""

    def steps(self) -> contextlib.AbstractContextManager[None]:
        """The context an epoch's training steps run in (validation runs outside it)."""

    def finish(self, model: AnnClassifier) -> None:
        """Leave ``model`` in the standard layout (called once, after the last epoch)."""

    def optimizer(self, model: AnnClassifier, *, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        """Adam (``lr``, L2 ``weight_decay``) over :meth:`parameters`."""


def fused_adam(params: list[nn.Parameter], *, lr: float, weight_decay: float) -> torch.optim.Adam:
    """``torch.optim.Adam`` with ``fused=True`` over ``params``.

    Fused: one kernel over all parameters per step instead of several passes per tensor (the optimiser
    step reads and writes 84 M parameters × 4 state tensors at paper scale); the same Adam update up to
    float rounding.
    """
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)


class DenseInputKernel:
    """The reference kernel: the full ``(b, M)`` float batch with noise and dropout mask."""

    name = "dense"

    def __init__(self, x_train: torch.Tensor, *, max_batch: int, input_noise: float, input_dropout: float,
                 bf16: bool) -> None:
        self.x_train, self.input_noise, self.p, self.bf16 = x_train, input_noise, input_dropout, bf16
        # Preallocated buffers: fresh multi-MB tensors every step cost page faults on CPU.
        shape, device = (max_batch, x_train.shape[1]), x_train.device
        self.int_buf = torch.empty(shape, dtype=torch.int8, device=device)
        self.x_buf = torch.empty(shape, device=device)
        self.noise_buf = torch.empty(shape, device=device) if input_noise > 0 else None
        self.mask_buf = torch.empty(shape, device=device) if input_dropout > 0 else None

    def parameters(self, model: AnnClassifier) -> list[nn.Parameter]:
        return list(model.parameters())

    def optimizer(self, model: AnnClassifier, *, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        return fused_adam(self.parameters(model), lr=lr, weight_decay=weight_decay)

    def preactivation(self, model: AnnClassifier, idx: torch.Tensor, generator: torch.Generator
                      ) -> torch.Tensor:
        b = idx.numel()
        x_int = torch.index_select(self.x_train, 0, idx, out=self.int_buf[:b])
        x = self.x_buf[:b]
        if self.noise_buf is not None:
            xi = self.noise_buf[:b].normal_(0.0, self.input_noise, generator=generator)
            torch.sub(x_int, xi, out=x)  # int8 − float32 → float32, one pass
        else:
            x.copy_(x_int)
        if self.mask_buf is not None:
            # The model's input Dropout, done here with the same law (zero with probability p, survivors
            # scaled by 1/(1−p)) from a uniform draw of our generator: bernoulli_ and masked_fill_ are
            # several times slower on CPU and dominated the step at the authors' mock scale.
            keep = self.mask_buf[:b].uniform_(generator=generator).ge_(self.p)  # 1.0 kept, 0.0 dropped
            x.mul_(keep).mul_(1.0 / (1.0 - self.p))
        if not self.bf16:
            return model.first_linear(x)
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
            return model.first_linear(x).float()

    def backward(self, model: AnnClassifier, loss: torch.Tensor) -> None:
        loss.backward()

    def prefetch(self, model: AnnClassifier, idx: torch.Tensor, generator: torch.Generator) -> None:
        pass  # draws its noise with the batch

    def steps(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def finish(self, model: AnnClassifier) -> None:
        pass


def survivor_positions(n_cells: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """The cells ``0 … n_cells − 1`` that survive dropout ``p``, increasing, as whole float64 numbers.

    Every cell survives independently with probability ``1 − p``: the gaps between survivors are
    geometric, ``G = ⌊log U / log p⌋ + 1`` with ``U`` uniform on (0, 1] in float64, so
    ``P(G > k) = p^k``. Only about ``(1 − p)·n_cells`` numbers are drawn (in chunks, on the generator's
    device). Positions are held in float64 (exact below 2**53): its division is vectorised on the CPU
    where int64's is not.
    """
    device = generator.device
    if p == 0.0:
        pos = torch.arange(n_cells, device=device, dtype=torch.float64)
    else:
        q, log_p = 1.0 - p, math.log(p)
        chunks, last = [], -1
        while last < n_cells:  # the last drawn survivor is still inside the grid: more may follow
            remaining = n_cells - 1 - last
            n = int(remaining * q + 6.0 * math.sqrt(remaining * q * p) + 64)
            u = torch.empty(n, dtype=torch.float64, device=device).uniform_(generator=generator)
            gaps = torch.log1p(u.neg_()).div_(log_p).floor_().add_(1)  # 1 − u ∈ (0, 1]
            chunks.append(gaps.cumsum_(0).add_(last))
            last = int(chunks[-1][-1])
        pos = torch.cat(chunks) if len(chunks) > 1 else chunks[0]
        pos = pos[: int(torch.searchsorted(pos, float(n_cells)))]
    return pos


def draw_survivors(n_snps: int, batch: int, p: float, generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of the inputs that survive dropout ``p`` in a ``batch × n_snps`` grid, SNP-major.

    The cells are walked in SNP-major order (cell ``j·batch + i``), each surviving independently with
    probability ``1 − p`` (:func:`survivor_positions`).

    Returns
    -------
    (snp, sample)
        int64 tensors, sorted by ``(snp, sample)``.
    """
    pos = survivor_positions(n_snps * batch, p, generator)
    # ⌊pos / batch⌋ is exact for pos < 2**53
    snp = pos.div(batch).floor_()
    sample = pos.sub_(snp * batch)
    return snp.long(), sample.long()


def _sort_key(key: torch.Tensor, n_keys: int) -> torch.Tensor:
    """``key`` in the narrowest integer type holding ``0 … n_keys − 1``: torch's CPU radix sort then
    needs one pass per byte (uint8 is about 4x faster than int64 for 750 000 keys)."""
    for dtype, limit in ((torch.uint8, 256), (torch.int16, 2**15), (torch.int32, 2**31)):
        if n_keys <= limit:
            return key.to(dtype)
    return key


def sparse_preactivation(weight_t: torch.Tensor, snp: torch.Tensor, sample: torch.Tensor,
                         values: torch.Tensor, batch: int) -> torch.Tensor:
    """``z0[i] = Σ_j x̃_ij · W1[:, j]`` over the survivors, ``(batch, H1)``, without the bias.

    ``weight_t`` is ``W1ᵀ`` (``M × H1``, SNP-major). The survivors are regrouped by (block of
    :data:`SPARSE_BLOCK_SNPS` SNPs, sample) with a stable sort, so one ``embedding_bag`` reads each block
    of ``W1ᵀ`` (about 10 MB at H1 = 290) while it is in cache for all samples, instead of walking all of
    ``W1ᵀ`` once per sample; the per-block partial sums are then added up.
    """
    shift = SPARSE_BLOCK_SNPS.bit_length() - 1  # a power of two: a shift, not an int64 division
    n_blocks = ((weight_t.shape[0] - 1) >> shift) + 1
    bag = torch.bitwise_right_shift(snp, shift).mul_(batch).add_(sample)
    order = torch.argsort(_sort_key(bag, n_blocks * batch), stable=True)
    offsets = torch.bincount(bag, minlength=n_blocks * batch).cumsum(0)
    offsets = torch.cat([offsets.new_zeros(1), offsets[:-1]])
    partial = F.embedding_bag(snp[order], weight_t, offsets, per_sample_weights=values[order], mode="sum")
    return partial.view(n_blocks, batch, -1).sum(0)


def sparse_weight_grad(snp: torch.Tensor, sample: torch.Tensor, values: torch.Tensor, dz: torch.Tensor,
                       *, n_snps: int, out: torch.Tensor) -> torch.Tensor:
    """``∂L/∂W1ᵀ = x̃ᵀ · ∂L/∂z`` (``M × H1``) into ``out``: one CSR (SNP-major) × dense product.

    Every row of ``out`` is written (rows of SNPs without survivors get zeros), so it needs no zeroing.
    """
    crow = torch.cat([snp.new_zeros(1), torch.bincount(snp, minlength=n_snps).cumsum(0)])
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we use the one stable product
        warnings.simplefilter("ignore", UserWarning)
        x_t = torch.sparse_csr_tensor(crow, sample, values, (n_snps, dz.shape[0]))
        return torch.addmm(out, x_t, dz, beta=0.0, out=out)


class SparseInputKernel:
    """Only the survivors of the input dropout reach the first layer (see the module notes).

    ``W1`` is held SNP-major as its own parameter ``weight_t`` (``M × H1``, what the optimiser updates);
    the model's ``first_linear.weight`` becomes a transposed view of it, so validation, ``state_dict``
    and checkpoints see the same numbers with no copy. :meth:`finish` gives the model back a plain
    contiguous weight.
    """

    name = "sparse"

    def __init__(self, x_train: torch.Tensor, model: AnnClassifier, *, input_noise: float,
                 input_dropout: float) -> None:
        self.x_train, self.input_noise, self.p = x_train, input_noise, input_dropout
        first = model.first_linear
        self.weight_t = nn.Parameter(first.weight.detach().t().contiguous())
        first.weight = nn.Parameter(self.weight_t.detach().t(), requires_grad=False)
        self.grad_buf = torch.empty_like(self.weight_t)  # persistent: a fresh 336 MB gradient page-faults
        self._saved: tuple[torch.Tensor, ...] | None = None

    def parameters(self, model: AnnClassifier) -> list[nn.Parameter]:
        return [self.weight_t, *(q for q in model.parameters() if q is not model.first_linear.weight)]

    def optimizer(self, model: AnnClassifier, *, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        return fused_adam(self.parameters(model), lr=lr, weight_decay=weight_decay)

    def preactivation(self, model: AnnClassifier, idx: torch.Tensor, generator: torch.Generator
                      ) -> torch.Tensor:
        b, n_snps = idx.numel(), self.x_train.shape[1]
        snp, sample = draw_survivors(n_snps, b, self.p, generator)
        values = self.x_train.view(-1)[idx[sample] * n_snps + snp].to(torch.float32)
        if self.input_noise > 0:
            values.sub_(torch.empty_like(values).normal_(0.0, self.input_noise, generator=generator))
        values.mul_(1.0 / (1.0 - self.p))
        with torch.no_grad():
            z0 = sparse_preactivation(self.weight_t, snp, sample, values, b)
        z0.requires_grad_()
        self._saved = (snp, sample, values, z0)
        return z0 + model.first_linear.bias

    def backward(self, model: AnnClassifier, loss: torch.Tensor) -> None:
        loss.backward()
        snp, sample, values, z0 = self._saved
        self._saved = None
        self.weight_t.grad = sparse_weight_grad(snp, sample, values, z0.grad, n_snps=self.weight_t.shape[0],
                                                out=self.grad_buf)

    def prefetch(self, model: AnnClassifier, idx: torch.Tensor, generator: torch.Generator) -> None:
        pass  # draws its survivors with the batch

    def steps(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def finish(self, model: AnnClassifier) -> None:
        model.first_linear.weight = nn.Parameter(self.weight_t.detach().t().contiguous())


def make_input_kernel(name: str, x_train: torch.Tensor, model: AnnClassifier, *, max_batch: int,
                      input_noise: float, bf16: bool) -> BatchKernel:
    """The batch kernel ``name`` (``auto``/``dense``/``sparse``/``fused``) for ``model``'s input dropout.

    The sparse and fused kernels compute the first layer in float32 (a gather, not a matrix product:
    bf16 would only add rounding); ``bf16`` then applies to validation alone.
    """
    p = float(model.config.input_dropout)
    kind = resolve_input_kernel(name, p, device_type=x_train.device.type)
    if kind == "dense":
        return DenseInputKernel(x_train, max_batch=max_batch, input_noise=input_noise, input_dropout=p,
                                bf16=bf16)
    if bf16:
        log.info("%s input-dropout kernel: the first layer runs in float32 during training", kind)
    if kind == "fused":
        from annpal.fused_input import FusedInputKernel  # numba: imported (and compiled) only when used

        return FusedInputKernel(x_train, model, input_noise=input_noise, input_dropout=p)
    return SparseInputKernel(x_train, model, input_noise=input_noise, input_dropout=p)


__all__ = ["KERNEL_CHOICES", "SPARSE_BLOCK_SNPS", "SPARSE_MIN_DROPOUT", "BatchKernel", "DenseInputKernel",
           "SparseInputKernel", "draw_survivors", "fused_adam", "fused_available", "make_input_kernel",
           "resolve_input_kernel", "sparse_preactivation", "sparse_weight_grad", "survivor_positions"]
