"""Tests for ``annpal.fused_input``: the fused (numba) kernel against dense products, ``torch.optim.Adam`` and
itself unfolded (its draws: tests/test_counter_rng.py; its input law and p = 0 agreement with the dense
kernel: tests/test_input_dropout.py)."""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from annpal import numba_jit
from annpal.counter_rng import draw_batch
from annpal.fused_input import (
    ROW_CHUNKS,
    FusedFirstLayerAdam,
    FusedInputKernel,
    adam_rows,
    forward_rows,
    padded_rows,
    padded_width,
    padded_zeros,
)
from annpal.input_dropout import draw_survivors
from annpal.model import AnnClassifier, ModelConfig
from annpal.prepared import load_prepared
from annpal.train import TrainConfig, train_model


@pytest.fixture(scope="module")
def ds(tiny_prepared):
    return load_prepared(tiny_prepared, mmap=False)


def relative_error(a, b) -> float:
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return ((a - b).norm() / b.norm()).item()


def dense_batch(m: int, batch: int, snp: torch.Tensor, sample: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    x = torch.zeros(batch, m)
    x[sample.long(), snp.long()] = values
    return x


def csr_by_snp(snp: torch.Tensor, m: int) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.bincount(snp.numpy(), minlength=m))]).astype(np.int64)


# ----------------------------------------------------------------------------------- survivors


@pytest.mark.parametrize("p, noise", [(0.99, 0.5), (0.9, 0.0), (0.5, 0.3), (0.0, 0.1), (0.0, 0.0)])
def test_fused_kernel__survivors_are_draw_batchs_under_a_key_from_the_generator(p, noise):
    """One key per batch from the run's generator (none when nothing is random), then draw_batch: the
    survivors (SNP-major), the noisy scaled values and the CSR row pointer by SNP."""
    m, n, batch = 700, 40, 24
    x = torch.randint(-1, 2, (n, m), generator=torch.Generator().manual_seed(1)).to(torch.int8)
    model = AnnClassifier(ModelConfig(n_snps=m, h1=5, h2=2, input_dropout=p))
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(2))[:batch]
    kernel = FusedInputKernel(x, model, input_noise=noise, input_dropout=p)
    gen = torch.Generator().manual_seed(3)
    got = kernel.survivors(idx, gen)

    ref_gen = torch.Generator().manual_seed(3)
    key = 0 if p == 0 and noise == 0 else int(torch.randint(0, 2 ** 63 - 1, (1,), generator=ref_gen))
    want = draw_batch(key, x.numpy().reshape(-1), m, idx.numpy().astype(np.int64), p, noise, 1.0 / (1.0 - p))
    for a, b in zip(got, want, strict=True):
        assert np.array_equal(a, b)
    assert torch.equal(gen.get_state(), ref_gen.get_state())  # the generator moved by the key alone
    snp, sample, values, crow = got
    assert np.array_equal(crow, csr_by_snp(torch.from_numpy(snp).long(), m))
    if p == 0.0:
        assert snp.size == m * batch
    if noise == 0.0:  # survivors carry their genotype scaled by 1/(1 − p)
        assert np.array_equal(values, x.numpy()[idx.numpy()[sample], snp].astype(np.float32) / np.float32(1 - p))


def test_fused_kernel__no_survivors():
    """An empty batch of survivors: zero pre-activations and a row pointer of zeros."""
    m = 50
    model = AnnClassifier(ModelConfig(n_snps=m, h1=4, h2=2, input_dropout=0.999999))
    kernel = FusedInputKernel(torch.ones(3, m, dtype=torch.int8), model, input_noise=0.1, input_dropout=0.999999)
    z = kernel.preactivation(model, torch.arange(3), torch.Generator().manual_seed(0))
    assert kernel._saved[0].tolist() == [0] * (m + 1)
    torch.testing.assert_close(z.detach(), model.first_linear.bias.detach().expand(3, -1))


# ----------------------------------------------------------------------------------- forward


@pytest.mark.parametrize("n_chunks", [1, 3, 16])
def test_forward_rows__matches_dense_product(n_chunks):
    m, h1, batch, p = 2000, 13, 32, 0.95
    gen = torch.Generator().manual_seed(4)
    weight = torch.randn(h1, m, generator=gen) * 0.05
    snp, sample = draw_survivors(m, batch, p, gen)
    values = torch.randn(snp.numel(), generator=gen) * 20
    partial = np.full((n_chunks, batch, h1), np.nan, np.float32)
    forward_rows(weight.t().contiguous().numpy(), csr_by_snp(snp, m), sample.int().numpy(), values.numpy(), partial)
    assert relative_error(partial.sum(0), dense_batch(m, batch, snp, sample, values) @ weight.t()) < 1e-6


def test_adam_rows__folded_product_is_forward_rows_on_the_updated_weights():
    """The next batch's product computed inside the Adam pass equals, bit for bit, the standalone product
    from the weights the pass leaves (same chunks, same order); without a next batch nothing is written."""
    m, h1, batch, p = 900, 9, 20, 0.9
    gen = torch.Generator().manual_seed(11)
    w = (torch.randn(m, h1, generator=gen) * 0.1).numpy()
    state = [np.abs(torch.randn(m, h1, generator=gen).numpy()) * 1e-3 for _ in range(2)]
    snp, sample = draw_survivors(m, batch, p, gen)
    values, dz = torch.randn(snp.numel(), generator=gen).numpy(), torch.randn(batch, h1, generator=gen).numpy()
    nsnp, nsample = draw_survivors(m, batch, p, gen)
    nvalues = torch.randn(nsnp.numel(), generator=gen).numpy()
    f32 = np.float32
    consts = (f32(1e-3), f32(0.9), f32(0.999), f32(0.1), f32(0.001), f32(1e-3), f32(0.5), f32(1e-8))
    folded = np.full((ROW_CHUNKS, batch, h1), np.nan, np.float32)
    w_fold = w.copy()
    adam_rows(w_fold, state[0].copy(), state[1].copy(), csr_by_snp(snp, m), sample.int().numpy(), values, dz,
              *consts, csr_by_snp(nsnp, m), nsample.int().numpy(), nvalues, folded)
    w_plain, untouched = w.copy(), np.full((ROW_CHUNKS, 0, h1), np.nan, np.float32)
    adam_rows(w_plain, state[0].copy(), state[1].copy(), csr_by_snp(snp, m), sample.int().numpy(), values, dz,
              *consts, np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.float32), untouched)
    assert np.array_equal(w_fold, w_plain) and not np.array_equal(w_fold, w)
    standalone = np.empty_like(folded)
    forward_rows(w_plain, csr_by_snp(nsnp, m), nsample.int().numpy(), nvalues, standalone)
    assert np.array_equal(folded, standalone)
    assert relative_error(folded.sum(0), dense_batch(m, batch, nsnp, nsample, torch.from_numpy(nvalues))
                          @ torch.from_numpy(w_plain)) < 1e-6


def test_fused_kernel__preactivation_is_the_dense_product_of_its_survivors():
    m, n, p = 3000, 60, 0.95
    x = torch.randint(-1, 2, (n, m), generator=torch.Generator().manual_seed(6)).to(torch.int8)
    model = AnnClassifier(ModelConfig(n_snps=m, h1=11, h2=3, input_dropout=p))
    idx = torch.arange(0, n, 2)
    kernel = FusedInputKernel(x, model, input_noise=0.5, input_dropout=p)
    z = kernel.preactivation(model, idx, torch.Generator().manual_seed(9)).detach()
    snp, sample, values, _ = kernel.survivors(idx, torch.Generator().manual_seed(9))
    dense = dense_batch(m, idx.numel(), torch.from_numpy(snp).long(), torch.from_numpy(sample).long(),
                        torch.from_numpy(values))
    kernel.finish(model)
    want = dense @ model.first_linear.weight.detach().t() + model.first_linear.bias.detach()
    assert relative_error(z, want) < 1e-6


# ----------------------------------------------------------------------------------- Adam


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
@pytest.mark.parametrize("torch_fused", [True, False])
def test_fused_adam__equals_torch_adam_over_steps(weight_decay, torch_fused):
    """Five steps of the fused W1ᵀ update against torch.optim.Adam with the dense gradient x̃ᵀ·dz; SNPs
    40 … 59 never have survivors (their gradient is λ·w alone)."""
    m, h1, batch, p, lr = 60, 7, 16, 0.8, 1e-2
    gen = torch.Generator().manual_seed(8)
    w0, b0 = torch.randn(m, h1, generator=gen) * 0.1, torch.randn(h1, generator=gen)
    ref_w, ref_b = nn.Parameter(w0.clone()), nn.Parameter(b0.clone())
    w, b = nn.Parameter(w0.clone()), nn.Parameter(b0.clone())
    ref = torch.optim.Adam([ref_w, ref_b], lr=lr, weight_decay=weight_decay, fused=torch_fused)
    fused = FusedFirstLayerAdam(w, [b], lr=lr, weight_decay=weight_decay)
    for _ in range(5):
        snp, sample = draw_survivors(40, batch, p, gen)
        values = torch.randn(snp.numel(), generator=gen) * 5
        dz, db = torch.randn(batch, h1, generator=gen) * 0.1, torch.randn(h1, generator=gen)
        ref.zero_grad()
        fused.zero_grad()
        ref_w.grad = dense_batch(m, batch, snp, sample, values).t() @ dz
        ref_b.grad, b.grad = db.clone(), db.clone()
        fused.set_sparse_grad(csr_by_snp(snp, m), sample.int().numpy(), values.numpy(), dz.numpy())
        ref.step()
        fused.step()
    assert w.grad is None
    torch.testing.assert_close(w.detach(), ref_w.detach(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(w.detach()[40:], ref_w.detach()[40:], rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(b.detach(), ref_b.detach(), rtol=0, atol=0)
    for key in ("exp_avg", "exp_avg_sq"):
        want = ref.state[ref_w][key]  # gradients summed in another order: tolerance on the scale of the state
        torch.testing.assert_close(fused.state[w][key], want, rtol=1e-5, atol=1e-6 * want.abs().max().item())
    assert float(fused.state[w]["step"]) == float(ref.state[ref_w]["step"]) == 5.0
    assert not torch.equal(w.detach(), w0)


def test_fused_adam__no_gradient_no_step_and_zero_grad_clears():
    w, b = nn.Parameter(torch.ones(4, 3)), nn.Parameter(torch.ones(3))
    opt = FusedFirstLayerAdam(w, [b], lr=0.1, weight_decay=0.0)
    opt.step()  # no sparse gradient: W1ᵀ is skipped like a parameter without .grad
    assert torch.equal(w.detach(), torch.ones(4, 3)) and not opt.state[w]
    opt.set_sparse_grad(np.zeros(5, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32),
                        np.ones((1, 3), np.float32))
    opt.zero_grad()
    opt.step()
    assert torch.equal(w.detach(), torch.ones(4, 3))


def test_fused_adam__state_dict_round_trip():
    """W1ᵀ's state is Adam's own (same keys), so a checkpoint restores it into a fresh optimiser."""
    w, b = nn.Parameter(torch.randn(5, 2)), nn.Parameter(torch.randn(2))
    opt = FusedFirstLayerAdam(w, [b], lr=0.1, weight_decay=1e-3)
    crow = np.array([0, 1, 1, 2, 2, 2], np.int64)
    opt.set_sparse_grad(crow, np.array([0, 0], np.int32), np.array([1.0, -2.0], np.float32),
                        np.ones((1, 2), np.float32))
    b.grad = torch.ones(2)
    opt.step()
    fresh = FusedFirstLayerAdam(nn.Parameter(w.detach().clone()), [nn.Parameter(b.detach().clone())], lr=0.1,
                                weight_decay=1e-3)
    fresh.load_state_dict(opt.state_dict())
    state = fresh.state[fresh.weight_t]
    assert set(state) == {"step", "exp_avg", "exp_avg_sq"} and float(state["step"]) == 1.0
    torch.testing.assert_close(state["exp_avg_sq"], opt.state[w]["exp_avg_sq"], rtol=0, atol=0)


def _sparse_steps(opt: FusedFirstLayerAdam, b: nn.Parameter, m: int, h1: int, batch: int, seed: int,
                  n_steps: int = 4) -> list[np.ndarray]:
    """``n_steps`` steps of ``opt`` with the same random sparse gradients for a given ``seed``, each also
    folding a next batch's product; the products (first ``h1`` columns)."""
    gen = torch.Generator().manual_seed(seed)
    products = []
    for _ in range(n_steps):
        snp, sample = draw_survivors(m, batch, 0.7, gen)
        values = torch.randn(snp.numel(), generator=gen) * 5
        nsnp, nsample = draw_survivors(m, batch, 0.7, gen)
        nvalues = torch.randn(nsnp.numel(), generator=gen)
        dz, db = torch.randn(batch, h1, generator=gen) * 0.1, torch.randn(h1, generator=gen)
        opt.zero_grad()
        b.grad = db
        opt.set_sparse_grad(csr_by_snp(snp, m), sample.int().numpy(), values.numpy(), dz.numpy())
        partial = np.full((ROW_CHUNKS, batch, opt.row_width), np.nan, np.float32)
        opt.set_next(csr_by_snp(nsnp, m), nsample.int().numpy(), nvalues.numpy(), partial)
        opt.step()
        products.append(opt.pop_next_product()[:, :, :h1].copy())
    return products


@pytest.mark.parametrize("h1", [7, 11, 16])
def test_fused_adam__padded_rows_equal_contiguous_ones(h1):
    """W1ᵀ in rows padded to a vector boundary (the kernel's layout) gives the same weights, Adam state and
    folded products, bit for bit, as a contiguous W1ᵀ; the padding stays zero and the state takes W1ᵀ's
    layout."""
    m, batch = 50, 12
    w0, b0 = torch.randn(m, h1, generator=torch.Generator().manual_seed(3)), torch.randn(h1)
    padded = padded_zeros(m, h1)
    padded.copy_(w0)
    w_pad, w_plain = nn.Parameter(padded), nn.Parameter(w0.clone())
    b_pad, b_plain = nn.Parameter(b0.clone()), nn.Parameter(b0.clone())
    opt_pad = FusedFirstLayerAdam(w_pad, [b_pad], lr=1e-2, weight_decay=1e-2)
    opt_plain = FusedFirstLayerAdam(w_plain, [b_plain], lr=1e-2, weight_decay=1e-2)
    assert opt_pad.row_width == padded_width(h1) and opt_plain.row_width == h1
    assert padded_width(h1) % 8 == 0 and h1 <= padded_width(h1) < h1 + 8
    got, want = _sparse_steps(opt_pad, b_pad, m, h1, batch, 5), _sparse_steps(opt_plain, b_plain, m, h1, batch, 5)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    assert torch.equal(w_pad.detach(), w_plain.detach())
    for key in ("exp_avg", "exp_avg_sq"):
        state = opt_pad.state[w_pad][key]
        assert torch.equal(state, opt_plain.state[w_plain][key]) and state.stride() == w_pad.stride()
        assert not padded_rows(state)[:, h1:].any()
    assert not padded_rows(w_pad)[:, h1:].any()


def test_fused_adam__load_state_dict_lays_the_state_out_like_the_weight():
    """A checkpoint's state (saved from a contiguous W1ᵀ, or round-tripped through torch.save) is copied
    into W1ᵀ's padded layout, and the next steps equal those of the optimiser it was saved from."""
    import io

    m, h1, batch = 40, 5, 10
    w0, b0 = torch.randn(m, h1, generator=torch.Generator().manual_seed(4)), torch.randn(h1)
    w_plain, b_plain = nn.Parameter(w0.clone()), nn.Parameter(b0.clone())
    opt_plain = FusedFirstLayerAdam(w_plain, [b_plain], lr=1e-2, weight_decay=1e-3)
    _sparse_steps(opt_plain, b_plain, m, h1, batch, 1, n_steps=2)
    buffer = io.BytesIO()
    torch.save(opt_plain.state_dict(), buffer)
    padded = padded_zeros(m, h1)
    padded.copy_(w_plain.detach())
    w_pad, b_pad = nn.Parameter(padded), nn.Parameter(b_plain.detach().clone())
    opt_pad = FusedFirstLayerAdam(w_pad, [b_pad], lr=1e-2, weight_decay=1e-3)
    buffer.seek(0)
    opt_pad.load_state_dict(torch.load(buffer))
    assert all(opt_pad.state[w_pad][k].stride() == w_pad.stride() for k in ("exp_avg", "exp_avg_sq"))
    got = _sparse_steps(opt_pad, b_pad, m, h1, batch, 2, n_steps=2)
    want = _sparse_steps(opt_plain, b_plain, m, h1, batch, 2, n_steps=2)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    assert torch.equal(w_pad.detach(), w_plain.detach())


def test_padded_rows__rejects_a_layout_it_cannot_widen():
    with pytest.raises(ValueError, match="padded rows"):
        padded_rows(torch.zeros(6, 4).t())
    assert padded_rows(padded_zeros(3, 5)).shape == (3, 8)


def test_fused_kernel__weight_is_a_padded_view_shared_with_the_model():
    """The kernel keeps W1ᵀ in padded rows; the model's first-layer weight is a view of the same memory."""
    m, h1 = 200, 13
    x = torch.randint(-1, 2, (30, m), generator=torch.Generator().manual_seed(2)).to(torch.int8)
    model = AnnClassifier(ModelConfig(n_snps=m, h1=h1, h2=3, input_dropout=0.9))
    want = model.first_linear.weight.detach().clone()
    kernel = FusedInputKernel(x, model, input_noise=0.1, input_dropout=0.9)
    assert kernel.weight_t.stride() == (padded_width(h1), 1)
    assert model.first_linear.weight.data_ptr() == kernel.weight_t.data_ptr()
    assert torch.equal(model.first_linear.weight.detach(), want)
    kernel.finish(model)
    assert model.first_linear.weight.is_contiguous() and torch.equal(model.first_linear.weight.detach(), want)


# ----------------------------------------------------------------------------------- training


def small(ds, **kw):
    return ModelConfig(n_snps=ds.n_snps, **{"h1": 8, "h2": 3, **kw})


def quick(epochs=3, **kw):
    return TrainConfig(**{"epochs": epochs, "batch_size": 64, "lr": 1e-3, "device": "cpu", "threads": 1, **kw})


def test_train_model__folded_equals_unfolded(ds, monkeypatch):
    """Folding the next batch's first-layer product into the Adam pass changes no number: the trained
    weights and the history are identical to the kernel computing each product on its own."""
    config = small(ds, input_dropout=0.95)
    recipe = quick(4, input_dropout_kernel="fused", label_noise=0.1)
    folded = train_model(ds, seed=6, model_config=config, train_config=recipe)
    original = FusedInputKernel.__init__

    def unfolded(self, *args, **kw):
        original(self, *args, **{**kw, "fold": False})

    monkeypatch.setattr(FusedInputKernel, "__init__", unfolded)
    plain = train_model(ds, seed=6, model_config=config, train_config=recipe)
    a, b = folded.model.state_dict(), plain.model.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    pd.testing.assert_frame_equal(folded.history.drop(columns="seconds"), plain.history.drop(columns="seconds"),
                                  rtol=0, atol=0)


def test_fused_kernel__threads_numba_on_the_runs_torch_alone_in_steps():
    """The kernel's numba passes run on torch's thread count when the kernel was made (``--threads``);
    inside :meth:`steps` torch runs on one thread (no OpenMP spin taking a core from numba) and gets its
    count back after, also when a step fails."""
    m = 50
    x = torch.randint(-1, 2, (20, m), generator=torch.Generator().manual_seed(1)).to(torch.int8)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        model = AnnClassifier(ModelConfig(n_snps=m, h1=5, h2=2, input_dropout=0.9))
        kernel = FusedInputKernel(x, model, input_noise=0.1, input_dropout=0.9)
        opt = kernel.optimizer(model, lr=1e-3, weight_decay=0.0)
        assert kernel.threads == opt.threads == 2
        with kernel.steps():
            assert torch.get_num_threads() == 1
            kernel.preactivation(model, torch.arange(8), torch.Generator().manual_seed(2))
            assert numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="boom"), kernel.steps():
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_jit__falls_back_to_memory_without_a_writable_cache(monkeypatch):
    calls = []

    def fake_njit(**kw):
        calls.append(kw)
        if kw["cache"]:
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x.py'")
        return lambda f: f

    monkeypatch.setattr(numba_jit.numba, "njit", fake_njit)
    assert numba_jit.jit(fastmath={"contract"})(len) is len
    assert [kw["cache"] for kw in calls] == [True, False]
    assert calls[1] == {"cache": False, "parallel": True, "nogil": True, "error_model": "numpy",
                        "fastmath": {"contract"}}

