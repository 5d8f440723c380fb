"""Tests for ``annpal.input_dropout``: the sparse input-dropout kernel against the dense reference (the
fused kernel against the sparse one: tests/test_fused_input.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
from click.testing import CliRunner
from conftest import load_bin
from torch.nn import functional as F

from annpal import input_dropout
from annpal.errors import InputError
from annpal.fused_input import FusedInputKernel
from annpal.input_dropout import (
    DenseInputKernel,
    SparseInputKernel,
    draw_survivors,
    resolve_input_kernel,
    sparse_preactivation,
    sparse_weight_grad,
)
from annpal.model import AnnClassifier, ModelConfig
from annpal.prepared import load_prepared
from annpal.train import TrainConfig, train_model


@pytest.fixture(scope="module")
def ds(tiny_prepared):
    return load_prepared(tiny_prepared, mmap=False)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


# ----------------------------------------------------------------------------------- kernel choice


@pytest.mark.parametrize("name,p,device,expected", [
    ("auto", 0.99, "cpu", "fused"), ("auto", 0.9, "cpu", "fused"), ("auto", 0.5, "cpu", "dense"),
    ("auto", 0.99, "cuda", "sparse"), ("auto", 0.5, "cuda", "dense"), ("dense", 0.99, "cpu", "dense"),
    ("sparse", 0.0, "cpu", "sparse"), ("fused", 0.5, "cpu", "fused")])
def test_resolve_input_kernel(name, p, device, expected):
    assert resolve_input_kernel(name, p, device_type=device) == expected


def test_resolve_input_kernel__fused_needs_cpu_and_numba(monkeypatch):
    with pytest.raises(InputError, match="CPU only"):
        resolve_input_kernel("fused", 0.99, device_type="cuda")
    monkeypatch.setattr(input_dropout, "fused_available", lambda: False)
    assert resolve_input_kernel("auto", 0.99) == "sparse"
    with pytest.raises(InputError, match="needs numba"):
        resolve_input_kernel("fused", 0.99)


def test_resolve_input_kernel__unknown():
    with pytest.raises(InputError, match="--input-dropout-kernel"):
        resolve_input_kernel("fast", 0.99)
    with pytest.raises(InputError, match="--input-dropout-kernel"):
        TrainConfig(input_dropout_kernel="fast")


# ----------------------------------------------------------------------------------- survivors' law


def test_draw_survivors__binomial_counts_per_sample():
    """Survivors per sample ~ Binomial(M, 1 − p); chi-square goodness of fit over 200 batches."""
    m, batch, p = 2000, 64, 0.99
    gen = torch.Generator().manual_seed(11)
    counts = []
    for _ in range(200):
        snp, sample = draw_survivors(m, batch, p, gen)
        counts.append(torch.bincount(sample, minlength=batch).numpy())
    counts = np.concatenate(counts)  # 12 800 samples
    binom = scipy.stats.binom(m, 1 - p)
    edges = np.arange(10, 31)  # bins: ≤10, 11, …, 30, ≥31 (expected ≥ 75 each)
    observed = np.array([(counts <= 10).sum(), *[(counts == k).sum() for k in edges[1:]], (counts > 30).sum()])
    expected = counts.size * np.array([binom.cdf(10), *binom.pmf(edges[1:]), binom.sf(30)])
    assert scipy.stats.chisquare(observed, expected).pvalue > 1e-3
    assert counts.mean() == pytest.approx(m * (1 - p), rel=0.01)


def test_draw_survivors__positions_uniform_and_sorted():
    m, batch, p = 500, 32, 0.9
    gen = torch.Generator().manual_seed(3)
    hits = torch.zeros(m, batch)
    for _ in range(100):
        snp, sample = draw_survivors(m, batch, p, gen)
        key = snp * batch + sample
        assert bool((key[1:] > key[:-1]).all())  # SNP-major, each cell at most once
        assert int(snp.max()) < m and int(sample.max()) < batch
        hits[snp, sample] += 1
    # every cell survives with probability 0.1: per-cell counts over 100 draws ~ Binomial(100, 0.1)
    assert hits.mean().item() == pytest.approx(10.0, rel=0.02)
    assert hits.var().item() == pytest.approx(9.0, rel=0.1)
    # no drift along the grid: first and last SNP halves, first and last samples
    assert hits[: m // 2].mean().item() == pytest.approx(hits[m // 2:].mean().item(), rel=0.04)


def test_draw_survivors__no_dropout_keeps_everything():
    snp, sample = draw_survivors(7, 3, 0.0, torch.Generator().manual_seed(0))
    assert snp.tolist() == [j for j in range(7) for _ in range(3)] and sample.tolist() == [0, 1, 2] * 7


# ------------------------------------------------------------------------- exact first-layer algebra


@pytest.mark.parametrize("block", [8192, 512])  # one block of W1ᵀ, six blocks
def test_sparse_first_layer__preactivation_and_weight_grad_match_dense(block, monkeypatch):
    """Same survivors and noise: z and ∂L/∂W1 of the sparse path equal the dense product's."""
    monkeypatch.setattr(input_dropout, "SPARSE_BLOCK_SNPS", block)
    m, h1, batch, p, sigma = 3000, 17, 24, 0.9, 0.1
    gen = torch.Generator().manual_seed(5)
    x = torch.randint(-1, 2, (batch, m), generator=gen).to(torch.int8)
    weight = torch.randn(h1, m, generator=gen) * 0.05
    bias = torch.randn(h1, generator=gen)
    snp, sample = draw_survivors(m, batch, p, gen)
    xi = torch.randn(snp.numel(), generator=gen) * sigma
    values = (x[sample, snp].float() - xi) / (1 - p)
    dense_x = torch.zeros(batch, m)
    dense_x[sample, snp] = values
    w_dense = weight.clone().requires_grad_()
    z_dense = F.linear(dense_x, w_dense, bias)
    dz = torch.randn(batch, h1, generator=gen)
    (z_dense * dz).sum().backward()

    weight_t = weight.t().contiguous()
    z_sparse = sparse_preactivation(weight_t, snp, sample, values, batch) + bias
    grad_t = sparse_weight_grad(snp, sample, values, dz, n_snps=m, out=torch.full((m, h1), float("nan")))
    assert relative_error(z_sparse, z_dense.detach()) < 1e-6
    assert relative_error(grad_t.t(), w_dense.grad) < 1e-6
    assert not torch.isnan(grad_t).any()  # rows of SNPs without survivors are written (zeros)


def test_kernels__same_input_law(ds):
    """Through an identity first layer both kernels deliver x̃ = m ⊙ (x − ξ)/(1 − p) (no noise here)."""
    m, p = ds.n_snps, 0.8
    model = AnnClassifier(ModelConfig(n_snps=m, h1=m, h2=2, input_dropout=p))
    with torch.no_grad():
        model.first_linear.weight.copy_(torch.eye(m))
        model.first_linear.bias.zero_()
    x_train = torch.from_numpy(np.ascontiguousarray(ds.genotypes))
    idx = torch.arange(0, ds.n_samples, 2)
    truth = x_train[idx].float() / (1 - p)
    for kernel in (DenseInputKernel(x_train, max_batch=idx.numel(), input_noise=0.0, input_dropout=p,
                                    bf16=False),
                   SparseInputKernel(x_train, model, input_noise=0.0, input_dropout=p),
                   FusedInputKernel(x_train, model, input_noise=0.0, input_dropout=p)):
        z = kernel.preactivation(model, idx, torch.Generator().manual_seed(1)).detach()
        kept = z != 0
        assert torch.equal(z[kept], truth[kept]), kernel.name  # survivors: the genotype scaled by 1/(1 − p)
        # dropped with probability p among non-zero genotypes (binomial sd ≈ 0.003)
        assert kept.sum().item() / (truth != 0).sum().item() == pytest.approx(1 - p, abs=0.015), kernel.name


# ------------------------------------------------------------------------------------------ training


def small(ds, **kw):
    return ModelConfig(n_snps=ds.n_snps, **{"h1": 8, "h2": 3, **kw})


def quick(epochs=3, **kw):
    return TrainConfig(**{"epochs": epochs, "batch_size": 64, "lr": 1e-3, "device": "cpu", "threads": 1, **kw})


@pytest.mark.parametrize("kernel", ["sparse", "fused"])
def test_train_model__kernels_agree_without_dropout(ds, kernel):
    """p = 0: every input survives, so the survivors-only kernels train the dense kernel's network (float
    rounding apart)."""
    config = small(ds, input_dropout=0.0)
    runs = {k: train_model(ds, seed=3, model_config=config,
                           train_config=quick(4, input_noise=0.0, input_dropout_kernel=k)) for k in ("dense", kernel)}
    assert runs[kernel].info["input_dropout_kernel"] == kernel
    a, b = runs["dense"].model.state_dict(), runs[kernel].model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5)
        assert b[key].is_contiguous()
    pd.testing.assert_frame_equal(runs[kernel].history.drop(columns="seconds"),
                                  runs["dense"].history.drop(columns="seconds"), rtol=1e-4)


def test_train_model__fused_by_default_at_high_dropout_and_learns(ds):
    result = train_model(ds, seed=1, model_config=small(ds, input_dropout=0.9),
                         train_config=quick(40, batch_size=32))
    assert result.info["input_dropout_kernel"] == "fused"
    assert result.history["val_auc"].iloc[-5:].mean() > 0.7


def test_train_model__checkpoint_of_other_kernel_refused(ds, tmp_path):
    config = small(ds, input_dropout=0.95)
    train_model(ds, seed=5, model_config=config, train_config=quick(1, input_dropout_kernel="sparse"),
                checkpoint_dir=tmp_path)
    with pytest.raises(InputError, match="different run"):
        train_model(ds, seed=5, model_config=config, train_config=quick(1, input_dropout_kernel="dense"),
                    checkpoint_dir=tmp_path)


def test_main__kernel_in_train_json(tiny_prepared, tmp_path):
    args = ["--dataset", tiny_prepared, "--seed", 2, "--epochs", 1, "--batch-size", 64, "--h1", 8, "--h2", 3,
            "--device", "cpu", "--threads", 1]
    for p, kernel, expected in ((0.95, "auto", "fused"), (0.5, "auto", "dense"), (0.5, "sparse", "sparse"),
                                (0.95, "fused", "fused")):
        out = tmp_path / f"{p}-{kernel}"
        res = CliRunner().invoke(load_bin("annpal-train"), [str(a) for a in [
            *args, "--input-dropout", p, "--input-dropout-kernel", kernel, "--out-dir", out]],
            catch_exceptions=False)
        assert res.exit_code == 0, res.output
        info = json.loads((out / "train.json").read_text())
        assert info["input_dropout_kernel"] == expected
        assert info["train_config"]["input_dropout_kernel"] == kernel
