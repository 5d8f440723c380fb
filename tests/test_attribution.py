"""Attributions (METHOD.md §3): IG and SM against captum called directly, IG completeness, the exact
fast permutation importance against the per-feature loop, MAS per model, and the annpal-attribute CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, Saliency
from click.testing import CliRunner
from conftest import load_bin
from torch import nn

from annpal.attribution import (
    draw_replacement_genotypes,
    feature_block_size,
    ig_internal_batch_size,
    integrated_gradients,
    mas_for_model,
    permutation_importance,
    permutation_importance_reference,
    saliency,
)
from annpal.model import AnnClassifier, ModelConfig, save_model
from annpal.prepared import load_prepared


def _random_model(n_snps: int, *, h1: int = 8, h2: int = 3, seed: int = 0, scale: float = 1.0
                  ) -> AnnClassifier:
    torch.manual_seed(seed)
    model = AnnClassifier(ModelConfig(n_snps=n_snps, h1=h1, h2=h2, input_dropout=0.5))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model.eval()


def _genotypes(n: int, m: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1, 2, size=(n, m)).astype(np.int8)


def _normalised_mean(scores: np.ndarray) -> np.ndarray:
    """MAS by hand: each row over its sum, then the column means (all-zero rows left out)."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[s.sum(axis=1) > 0]
    return (s / s.sum(axis=1, keepdims=True)).mean(axis=0)


@pytest.fixture(scope="module")
def trained(tiny_prepared):
    """A small network trained briefly (plain full-batch loop) on the tiny dataset, in eval mode."""
    ds = load_prepared(tiny_prepared)
    x = torch.tensor(np.asarray(ds.genotypes), dtype=torch.float32)
    y = torch.tensor(ds.labels, dtype=torch.float32)[:, None]
    torch.manual_seed(1)
    model = AnnClassifier(ModelConfig(n_snps=ds.n_snps, h1=16, h2=3, input_dropout=0.5))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(100):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return model.eval(), ds


# --- integrated gradients --------------------------------------------------------------------------

def test_integrated_gradients__equals_captum_called_directly():
    model = _random_model(120, scale=2.0)
    g = _genotypes(20, 120)
    x = torch.tensor(g, dtype=torch.float32)
    expected = IntegratedGradients(model).attribute(
        x, baselines=torch.zeros_like(x), target=0, n_steps=100).detach().abs().numpy()
    ours = integrated_gradients(model, g, n_steps=100, internal_batch_size=60)  # 3 steps per pass
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-7)
    assert ours.dtype == np.float32 and (ours >= 0).all()


def test_integrated_gradients__equals_authors_call():
    """The authors' 3a call: (n, 1, M) inputs, target=None, internal_batch_size=1000."""
    model = _random_model(80, scale=2.0, seed=4)
    g = _genotypes(15, 80, seed=4)
    inpt = torch.tensor(g).reshape(15, 1, 80).float()
    attributions, _ = IntegratedGradients(model).attribute(
        inpt, torch.zeros(15, 1, 80), target=None, return_convergence_delta=True, n_steps=100,
        internal_batch_size=1000)
    expected = np.abs(attributions.view(15, 80).detach().numpy())
    np.testing.assert_allclose(integrated_gradients(model, g), expected, rtol=1e-5, atol=1e-7)


def test_integrated_gradients__completeness_on_a_smooth_path():
    # A positive first-layer bias with z(1) > 0 keeps every ReLU open along the whole path 0 → x
    # (z(α) = α·Wx + b is linear in α), so f is smooth there and 100 Gauss–Legendre steps integrate
    # it essentially exactly; the larger later weights make f(x) − f(0) clearly non-zero.
    model = _random_model(60, seed=2)
    with torch.no_grad():
        model.first_linear.bias.fill_(3.0)
        model.layers[4].weight.mul_(4.0)
        model.layers[7].weight.mul_(4.0)
    g = _genotypes(12, 60, seed=2)
    x = torch.tensor(g, dtype=torch.float32)
    with torch.no_grad():
        assert bool((model.first_linear(x) > 0).all())
        gap = (model(x) - model(torch.zeros_like(x)))[:, 0].double().numpy()
    signed = integrated_gradients(model, g, n_steps=100, absolute=False)
    assert np.abs(gap).max() > 1e-2  # the check is not vacuous
    np.testing.assert_allclose(signed.astype(np.float64).sum(axis=1), gap, rtol=0, atol=2e-6)


def test_integrated_gradients__training_mode_rejected():
    model = _random_model(10).train()
    with pytest.raises(ValueError, match="eval"):
        integrated_gradients(model, _genotypes(2, 10))


@pytest.mark.parametrize("n_snps, batch, budget, expected", [
    (1000, 64, 10**12, 6400),          # everything at once
    (1000, 64, 1, 64),                 # never below one step for every sample
    (1000, 64, 1000 * 4 * 6 * 500, 500),
])
def test_ig_internal_batch_size__bounds(n_snps, batch, budget, expected):
    assert ig_internal_batch_size(n_snps=n_snps, batch_samples=batch, n_steps=100,
                                  memory_bytes=budget) == expected


# --- saliency ---------------------------------------------------------------------------------------

def test_saliency__equals_captum_called_directly():
    model = _random_model(90, scale=2.0, seed=3)
    g = _genotypes(17, 90, seed=3)
    x = torch.tensor(g, dtype=torch.float32, requires_grad=True)
    expected = Saliency(model).attribute(x, target=0, abs=True).detach().numpy()
    np.testing.assert_array_equal(saliency(model, g), expected)


def test_saliency__equals_autograd_by_hand():
    model = _random_model(30, seed=6)
    g = _genotypes(5, 30, seed=6)
    x = torch.tensor(g, dtype=torch.float32, requires_grad=True)
    model(x).sum().backward()
    np.testing.assert_allclose(saliency(model, g), x.grad.abs().numpy(), rtol=1e-6, atol=0)


# --- permutation importance ----------------------------------------------------------------------

def test_draw_replacement_genotypes__is_the_authors_draw():
    # The authors' call verbatim, on NumPy's legacy global generator (restored afterwards).
    state = np.random.get_state()  # noqa: NPY002
    try:
        np.random.seed(3)  # noqa: NPY002
        authors = np.random.randint(low=-1, high=2, size=(257,))  # noqa: NPY002
    finally:
        np.random.set_state(state)  # noqa: NPY002
    r = draw_replacement_genotypes(257, seed=3)
    np.testing.assert_array_equal(r, authors)
    assert r.dtype == np.int8 and set(np.unique(r)) == {-1, 0, 1}


def _authors_pm_loop(model: nn.Module, g: np.ndarray, r: np.ndarray) -> np.ndarray:
    """3b_get_pm_mas.py's loop, per sample instead of averaged, in float64 for the comparison."""
    net = AnnClassifier(model.config).double()
    net.load_state_dict(model.state_dict())
    net.eval()
    x = torch.from_numpy(g.astype(np.float64))
    with torch.no_grad():
        base = net(x).flatten().numpy()
        out = np.empty(g.shape)
        for i in range(g.shape[1]):
            xt = x.clone()
            xt[:, i] = torch.tensor(r, dtype=torch.float64)
            out[:, i] = np.abs(base - net(xt).flatten().numpy())
    return out


@pytest.mark.parametrize("memory_bytes", [1, 4000, 1 << 30])  # tiny budgets: blocks of 1 and samples split
def test_permutation_importance__fast_equals_reference_on_random_model(memory_bytes):
    model = _random_model(150, h1=12, h2=4, seed=8, scale=3.0)
    g = _genotypes(25, 150, seed=8)
    r = draw_replacement_genotypes(25, seed=1)
    fast = permutation_importance(model, g, r, memory_bytes=memory_bytes)
    ref = permutation_importance_reference(model, g, r)
    assert fast.shape == (25, 150) and fast.dtype == np.float64
    assert ref.max() > 1e-2  # scores are not trivially zero
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ref, _authors_pm_loop(model, g, r), rtol=0, atol=1e-12)


def test_permutation_importance__fast_equals_reference_on_trained_model(trained):
    model, ds = trained
    cases = np.flatnonzero(ds.labels == 1)[:40]
    g = np.asarray(ds.genotypes[cases])
    r = draw_replacement_genotypes(cases.size, seed=2)
    fast = permutation_importance(model, g, r, memory_bytes=200_000)
    ref = permutation_importance_reference(model, g, r)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-6)
    assert np.abs(fast - ref).max() < 1e-12  # float64 throughout: the same numbers, not just close


def test_permutation_importance__leaves_model_unchanged():
    model = _random_model(20, seed=9)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    permutation_importance(model, _genotypes(4, 20), draw_replacement_genotypes(4, seed=0))
    for k, v in model.state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(v, before[k])


def test_permutation_importance__replacement_length_checked():
    with pytest.raises(ValueError, match="replacement"):
        permutation_importance(_random_model(5), _genotypes(3, 5), np.zeros(4, dtype=np.int8))


@pytest.mark.parametrize("n, m, budget, expected", [
    (10, 1000, 10**12, 1000),   # capped at M
    (10, 1000, 1, 1),           # never below 1
    (10, 1000, 10 * (3 * 8 + 3 * 2 + 6) * 8 * 7, 7),
])
def test_feature_block_size__from_budget(n, m, budget, expected):
    assert feature_block_size(n_samples=n, n_snps=m, h1=8, h2=2, memory_bytes=budget) == expected


# --- MAS per model --------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["ig", "sm", "pm"])
def test_mas_for_model__batched_equals_whole(method, trained):
    model, ds = trained
    rows = np.flatnonzero(ds.labels == 1)[:30]
    g = np.asarray(ds.genotypes[rows])
    if method == "ig":
        whole = integrated_gradients(model, g)
    elif method == "sm":
        whole = saliency(model, g)
    else:
        whole = permutation_importance_reference(model, g, draw_replacement_genotypes(30, seed=5))
    # Small budgets so IG takes several captum passes per batch and PM several feature blocks.
    budget = 500_000 if method == "ig" else 50_000
    result = mas_for_model(model, ds.genotypes, rows=rows, method=method, batch_size=7, pm_seed=5,
                           memory_bytes=budget)
    assert result.n_samples == 30 and result.n_zero_sum == 0
    np.testing.assert_allclose(result.mas, _normalised_mean(whole), rtol=1e-5, atol=1e-9)
    assert result.mas.sum() == pytest.approx(1.0, abs=1e-9)


def test_mas_for_model__trained_model_finds_the_causal_snps(trained):
    model, ds = trained
    rows = np.flatnonzero(ds.labels == 1)
    mas = mas_for_model(model, ds.genotypes, rows=rows, method="ig").mas
    top_blocks = {i // 5 for i in np.argsort(mas)[::-1][:10]}  # conftest's LD blocks hold 5 SNPs
    assert {10 // 5, 150 // 5} <= top_blocks


def test_mas_for_model__pm_needs_a_seed_and_a_known_method(trained):
    model, ds = trained
    with pytest.raises(ValueError, match="pm_seed"):
        mas_for_model(model, ds.genotypes, rows=np.arange(3), method="pm")
    with pytest.raises(ValueError, match="unknown method"):
        mas_for_model(model, ds.genotypes, rows=np.arange(3), method="xx")


# --- annpal-attribute ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    """The trained model saved twice: with case_rows (a null-like subset) and without."""
    model, ds = trained
    d = tmp_path_factory.mktemp("models")
    rows = sorted(np.flatnonzero(ds.labels == 0)[:25].tolist())  # "cases" under permuted labels
    save_model(d / "null.pt", model, meta={"kind": "null", "seed": 101, "permute_seed": 7,
                                           "case_rows": rows})
    save_model(d / "real.pt", model, meta={"kind": "real", "seed": 3})
    return d, rows


def test_main__ig_writes_mas_and_record(tiny_prepared, saved, trained, tmp_path):
    d, rows = saved
    model, ds = trained
    out = tmp_path / "A"
    res = CliRunner().invoke(load_bin("annpal-attribute"), [
        "--dataset", str(tiny_prepared), "--model", str(d / "null.pt"), "--method", "ig",
        "--batch-size", "10", "--device", "cpu", "--threads", "1", "--out-dir", str(out),
        "--versions", str(tmp_path / "versions.yml")])
    assert res.exit_code == 0, res.output
    mas = np.load(out / "mas.npy")
    assert mas.dtype == np.float64 and mas.shape == (ds.n_snps,)
    assert mas.sum() == pytest.approx(1.0, abs=1e-9)
    expected = _normalised_mean(integrated_gradients(model, np.asarray(ds.genotypes[rows])))
    np.testing.assert_allclose(mas, expected, rtol=1e-5, atol=1e-9)
    rec = json.loads((out / "attr.json").read_text())
    assert rec["method"] == "ig" and rec["kind"] == "null" and rec["seed"] == 101
    assert rec["n_samples"] == 25 and rec["sample_source"] == "case_rows" and rec["n_steps"] == 100
    assert rec["n_zero_sum_rows"] == 0 and rec["device"] == "cpu" and "torch" in rec["versions"]
    assert (tmp_path / "versions.yml").read_text().startswith('"ATTRIBUTE":')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A", "versions.yml"]  # no temporaries left


def test_main__pm_uses_labels_and_model_seed(tiny_prepared, saved, trained, tmp_path):
    d, _ = saved
    model, ds = trained
    res = CliRunner().invoke(load_bin("annpal-attribute"), [
        "--dataset", str(tiny_prepared), "--model", str(d / "real.pt"), "--method", "pm",
        "--device", "cpu", "--out-dir", str(tmp_path / "A")])
    assert res.exit_code == 0, res.output
    rows = np.flatnonzero(ds.labels == 1)
    r = draw_replacement_genotypes(rows.size, seed=3)
    expected = _normalised_mean(_authors_pm_loop(model, np.asarray(ds.genotypes[rows]), r))
    np.testing.assert_allclose(np.load(tmp_path / "A" / "mas.npy"), expected, rtol=1e-9, atol=1e-12)
    rec = json.loads((tmp_path / "A" / "attr.json").read_text())
    assert rec["pm_seed"] == 3 and rec["sample_source"] == "label" and rec["n_samples"] == rows.size
    assert rec["n_steps"] is None


def test_main__sm_runs(tiny_prepared, saved, tmp_path):
    d, _ = saved
    res = CliRunner().invoke(load_bin("annpal-attribute"), [
        "--dataset", str(tiny_prepared), "--model", str(d / "real.pt"), "--method", "sm",
        "--out-dir", str(tmp_path / "A")])
    assert res.exit_code == 0, res.output
    assert np.load(tmp_path / "A" / "mas.npy").sum() == pytest.approx(1.0, abs=1e-9)


def test_main__bad_method_is_a_usage_error(tiny_prepared, saved, tmp_path):
    d, _ = saved
    res = CliRunner().invoke(load_bin("annpal-attribute"), [
        "--dataset", str(tiny_prepared), "--model", str(d / "real.pt"), "--method", "shap",
        "--out-dir", str(tmp_path / "A")])
    assert res.exit_code == 2 and "shap" in res.output
    assert not (tmp_path / "A").exists()


def test_main__missing_model_is_a_usage_error(tiny_prepared, tmp_path):
    res = CliRunner().invoke(load_bin("annpal-attribute"), [
        "--dataset", str(tiny_prepared), "--model", str(tmp_path / "nope.pt"), "--method", "ig",
        "--out-dir", str(tmp_path / "A")])
    assert res.exit_code == 2 and "nope.pt" in res.output
    assert not (tmp_path / "A").exists()


def _one_error_line(res) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("[ERROR]")]
    assert res.exit_code == 1 and len(lines) == 1, res.output
    return lines[0]


def test_main__snp_count_mismatch_is_one_line(tiny_prepared, tmp_path):
    path = tmp_path / "wide.pt"
    save_model(path, _random_model(301), meta={"kind": "real", "seed": 1})
    res = CliRunner().invoke(load_bin("annpal-attribute"), [
        "--dataset", str(tiny_prepared), "--model", str(path), "--method", "ig",
        "--out-dir", str(tmp_path / "A")])
    line = _one_error_line(res)
    assert "301 SNPs" in line and "300" in line and "wide.pt" in line
    assert not (tmp_path / "A").exists()


def test_main__unreadable_model_is_one_line(tiny_prepared, tmp_path):
    path = tmp_path / "model.pt"
    path.write_text("not a model\n")
    res = CliRunner().invoke(load_bin("annpal-attribute"), [
        "--dataset", str(tiny_prepared), "--model", str(path), "--method", "sm",
        "--out-dir", str(tmp_path / "A")])
    assert "annpal-train" in _one_error_line(res)


def test_main__case_rows_out_of_range_is_one_line(tiny_prepared, tmp_path):
    path = tmp_path / "model.pt"
    save_model(path, _random_model(300), meta={"kind": "null", "seed": 1, "case_rows": [0, 400]})
    res = CliRunner().invoke(load_bin("annpal-attribute"), [
        "--dataset", str(tiny_prepared), "--model", str(path), "--method", "sm",
        "--out-dir", str(tmp_path / "A")])
    assert "case_rows" in _one_error_line(res)


def test_main__pm_without_any_seed_is_one_line(tiny_prepared, tmp_path):
    path = tmp_path / "model.pt"
    save_model(path, _random_model(300), meta={"kind": "real"})
    res = CliRunner().invoke(load_bin("annpal-attribute"), [
        "--dataset", str(tiny_prepared), "--model", str(path), "--method", "pm",
        "--out-dir", str(tmp_path / "A")])
    assert "--pm-seed" in _one_error_line(res)


def test_main__dead_network_gives_uniform_degenerate_mas(tiny_prepared, tmp_path):
    # Every ReLU closed for every sample: all attributions are exactly 0. One dead model must not stop
    # a pipeline run: its MAS is uniform (marks nothing) and attr.json says it is degenerate.
    model = _random_model(300)
    with torch.no_grad():
        model.first_linear.weight.zero_()
        model.first_linear.bias.fill_(-1.0)
    path = tmp_path / "model.pt"
    save_model(path, model, meta={"kind": "real", "seed": 1})
    res = CliRunner().invoke(load_bin("annpal-attribute"), [
        "--dataset", str(tiny_prepared), "--model", str(path), "--method", "sm",
        "--out-dir", str(tmp_path / "A")])
    assert res.exit_code == 0, res.output
    mas = np.load(tmp_path / "A" / "mas.npy")
    np.testing.assert_array_equal(mas, np.full(300, 1 / 300))
    record = json.loads((tmp_path / "A" / "attr.json").read_text())
    assert record["degenerate"] is True and record["n_samples"] == 0


def test_permutation_importance_reference__feature_subset():
    model = _random_model(40, seed=11, scale=2.0)
    g = _genotypes(6, 40, seed=11)
    r = draw_replacement_genotypes(6, seed=4)
    full = permutation_importance_reference(model, g, r)
    np.testing.assert_array_equal(permutation_importance_reference(model, g, r, features=[3, 17, 39]),
                                  full[:, [3, 17, 39]])


def test_ig_internal_batch_size__row_cap():
    assert ig_internal_batch_size(n_snps=1000, batch_samples=64, n_steps=100, memory_bytes=10**12,
                                  max_rows=1000) == 1000
    assert ig_internal_batch_size(n_snps=1000, batch_samples=64, n_steps=100, memory_bytes=10**12,
                                  max_rows=10) == 64  # still one step for every sample
