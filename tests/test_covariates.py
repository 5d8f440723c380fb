"""Covariates in the network (``--nn-covariates``): the model, training, and every attribution method."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

from annpal.attribution import (
    deeplift,
    fast_deeplift,
    fast_integrated_gradients,
    fast_saliency,
    integrated_gradients,
    mas_for_model,
    permutation_importance,
    permutation_importance_reference,
    saliency,
    smoothgrad,
)
from annpal.errors import InputError
from annpal.model import AnnClassifier, ModelConfig, load_model, save_model
from annpal.prepared import load_prepared
from annpal.train import TrainConfig, train_model

NAMES = ("PC1", "PC2", "age")


def _model(m: int = 120, *, h1: int = 8, h2: int = 3, seed: int = 0, scale: float = 3.0,
           names: tuple[str, ...] = NAMES) -> AnnClassifier:
    """A float64 random network with covariates, their scaling set to a non-trivial mean and SD."""
    torch.manual_seed(seed)
    model = AnnClassifier(ModelConfig(n_snps=m, h1=h1, h2=h2, input_dropout=0.5, covariates=names)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    if names:
        model.set_covariate_scaling(torch.linspace(-1, 2, len(names)), torch.linspace(0.5, 3, len(names)))
    return model.eval()


def _data(n: int, m: int, c: int = len(NAMES), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(-1, 2, size=(n, m)).astype(np.int8), rng.normal(1.0, 2.0, size=(n, c))


def _rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


# ---------------------------------------------------------------------------------------------- model


def test_forward__covariates_join_after_the_first_layer():
    model = _model()
    g, cov = _data(5, 120)
    x, c = torch.tensor(g, dtype=torch.float64), torch.tensor(cov)
    assert model.second_linear.in_features == 8 + 3 and model.first_linear.in_features == 120
    # by hand: relu(W1 x + b1), appended (c - mean) / scale, then the paper's tail
    layers = model.layers
    h = torch.relu(layers[1](x))
    joined = torch.cat([h, (c - model.covariate_mean) / model.covariate_scale], dim=1)
    expected = torch.sigmoid(layers[7](torch.nn.functional.gelu(layers[4](joined))))
    torch.testing.assert_close(model(x, c), expected, rtol=1e-12, atol=0)
    # the covariates change the output, and the network refuses to run without them
    assert not torch.allclose(model(x, c), model(x, c + 1.0))
    with pytest.raises(ValueError, match="takes 3 covariates"):
        model(x)
    with pytest.raises(ValueError, match="takes no covariates"):
        _model(names=())(x, c)


def test_forward__no_covariates_is_the_paper_network():
    model = _model(names=())
    assert model.second_linear.in_features == 8 and "covariate_mean" not in model.state_dict()


def test_save_load__scaling_and_names_kept(tmp_path):
    model = _model()
    save_model(tmp_path / "model.pt", model, meta={})
    loaded, _ = load_model(tmp_path / "model.pt")
    assert loaded.config.covariates == NAMES
    g, cov = _data(4, 120)
    x = torch.tensor(g, dtype=torch.float32)
    torch.testing.assert_close(loaded(x, torch.tensor(cov, dtype=torch.float32)),
                               model.float()(x, torch.tensor(cov, dtype=torch.float32)))


# ---------------------------------------------------------------------------------------------- attribution


def test_fast_integrated_gradients__equals_captum_with_covariates():
    model = _model(seed=21)
    g, cov = _data(20, 120, seed=21)
    x, c = torch.tensor(g, dtype=torch.float64), torch.tensor(cov)
    expected = IntegratedGradients(model).attribute(
        x, baselines=torch.zeros_like(x), target=0, n_steps=100, additional_forward_args=(c,)).detach().numpy()
    fast = fast_integrated_gradients(model, g, covariates=cov, absolute=False)
    assert np.abs(expected).max() > 1e-3
    assert _rel_diff(fast, expected) < 1e-6
    # our captum wrapper (float32) with an internal batch (captum repeats the covariates per step) too
    assert _rel_diff(integrated_gradients(model.float(), g, covariates=cov, internal_batch_size=300),
                     np.abs(expected)) < 1e-5


def test_integrated_gradients__covariates_get_no_share():
    """Completeness with covariates held fixed: Σ_i IG_i = f(x, c) − f(0, c), so the covariates take
    nothing of the output difference and the attributions stay M wide."""
    model = _model(seed=22, scale=1.0)
    with torch.no_grad():  # every ReLU open along the path (test_attribution's smooth-path setting)
        model.first_linear.bias.fill_(3.0)
        model.second_linear.weight.mul_(4.0)
    g, cov = _data(6, 120, seed=22)
    ig = fast_integrated_gradients(model, g, covariates=cov, absolute=False, n_steps=100)
    assert ig.shape == (6, 120)
    x, c = torch.tensor(g, dtype=torch.float64), torch.tensor(cov)
    with torch.no_grad():
        assert bool((model.first_linear(x) > 0).all())
        delta = (model(x, c) - model(torch.zeros_like(x), c))[:, 0].numpy()
    assert np.abs(delta).max() > 1e-2
    np.testing.assert_allclose(ig.sum(axis=1), delta, rtol=0, atol=1e-9)


def test_fast_saliency__equals_captum_with_covariates():
    model = _model(seed=24)
    g, cov = _data(20, 120, seed=24)
    x = torch.tensor(g, dtype=torch.float64, requires_grad=True)
    expected = Saliency(model).attribute(x, target=0, abs=True,
                                         additional_forward_args=(torch.tensor(cov),)).detach().numpy()
    np.testing.assert_allclose(fast_saliency(model, g, covariates=cov), expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(saliency(model.float(), g, covariates=cov), expected, rtol=1e-4,
                               atol=1e-6 * expected.max())


@pytest.mark.filterwarnings("ignore:Setting forward, backward hooks")
def test_fast_deeplift__equals_captum_with_covariates_and_sums_to_delta():
    model = _model(seed=25)
    g, cov = _data(20, 120, seed=25)
    expected = deeplift(model, g, absolute=False, covariates=cov)
    fast = fast_deeplift(model, g, absolute=False, covariates=cov)
    assert np.abs(expected).max() > 1e-3
    assert _rel_diff(fast, expected) < 1e-6
    x, c = torch.tensor(g, dtype=torch.float64), torch.tensor(cov)
    with torch.no_grad():
        delta = (model(x, c) - model(torch.zeros_like(x), c))[:, 0].numpy()
    np.testing.assert_allclose(fast.sum(axis=1), delta, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("memory_bytes", [1, 1 << 30])
def test_permutation_importance__fast_equals_reference_with_covariates(memory_bytes):
    model = _model(seed=26)
    g, cov = _data(12, 120, seed=26)
    r = np.random.default_rng(26).integers(-1, 2, size=12)
    ref = permutation_importance_reference(model, g, r, covariates=cov)
    assert ref.max() > 1e-3
    np.testing.assert_allclose(permutation_importance(model, g, r, covariates=cov, memory_bytes=memory_bytes),
                               ref, rtol=1e-9, atol=1e-12)


def test_smoothgrad__equals_noise_tunnel_with_covariates():
    model = _model(seed=27).float()
    g, cov = _data(6, 120, seed=27)
    ours = smoothgrad(model, g, n_samples=4, sigma=0.3, seed=9, covariates=cov)
    torch.manual_seed(9)
    x = torch.tensor(g, dtype=torch.float32, requires_grad=True)
    expected = NoiseTunnel(Saliency(model)).attribute(
        x, nt_type="smoothgrad", nt_samples=4, nt_samples_batch_size=1, stdevs=0.3, target=0, abs=True,
        additional_forward_args=(torch.tensor(cov, dtype=torch.float32),)).detach().numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0)


@pytest.mark.filterwarnings("ignore:Setting forward, backward hooks")
@pytest.mark.parametrize("method, impl", [("ig", "fast"), ("ig", "captum"), ("sm", "fast"), ("dl", "fast"),
                                          ("pm", None), ("sg", None)])
def test_mas_for_model__covariates_reach_every_method(method, impl):
    """The MAS stays per SNP (length M) and depends on each sample's own covariate row."""
    model = _model(seed=28).float()
    g, cov = _data(30, 120, seed=28)
    rows = np.arange(0, 30, 2)
    kw = {"impl": impl or "auto", "pm_seed": 1, "sg_seed": 1, "sg_samples": 3, "batch_size": 4, "n_steps": 20}
    mas = mas_for_model(model, g, rows=rows, method=method, covariates=cov, **kw).mas
    assert mas.shape == (120,) and abs(mas.sum() - 1) < 1e-9
    shifted = mas_for_model(model, g, rows=rows, method=method, covariates=cov + 5.0, **kw).mas
    assert np.abs(shifted - mas).max() > 1e-6
    with pytest.raises(ValueError, match="covariates"):
        mas_for_model(model, g, rows=rows, method=method, **kw)


# ---------------------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def ds(tiny_prepared):
    return load_prepared(tiny_prepared, mmap=False)


def _cov(ds, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([ds.labels + rng.normal(0, 1, ds.n_samples), rng.normal(50, 10, ds.n_samples)])


def _config(ds, **kw):
    return ModelConfig(n_snps=ds.n_snps, h1=8, h2=3, covariates=("PC1", "age"), **{"input_dropout": 0.5, **kw})


def _recipe(epochs=3, **kw):
    return TrainConfig(**{"epochs": epochs, "batch_size": 64, "lr": 1e-3, "device": "cpu", "threads": 1, **kw})


@pytest.mark.parametrize("kernel, dropout", [("dense", 0.5), ("sparse", 0.95)])
def test_train_model__covariates_with_both_kernels(ds, kernel, dropout):
    cov = _cov(ds)
    result = train_model(ds, seed=1, model_config=_config(ds, input_dropout=dropout),
                         train_config=_recipe(input_dropout_kernel=kernel), covariates=cov)
    model = result.model
    train = ds.train_mask
    torch.testing.assert_close(model.covariate_mean, torch.tensor(cov[train].mean(0), dtype=torch.float32))
    torch.testing.assert_close(model.covariate_scale, torch.tensor(cov[train].std(0), dtype=torch.float32))
    assert result.info["input_dropout_kernel"] == kernel and np.isfinite(result.history["val_loss"]).all()
    # the covariate columns of W2 were trained (the sparse kernel never sees them, the loss does)
    untrained = AnnClassifier(_config(ds, input_dropout=dropout))
    assert not torch.equal(model.second_linear.weight[:, 8:], untrained.second_linear.weight[:, 8:])


def test_train_model__covariates_checked(ds):
    with pytest.raises(InputError, match="none were given"):
        train_model(ds, seed=1, model_config=_config(ds), train_config=_recipe(1))
    with pytest.raises(InputError, match="shape"):
        train_model(ds, seed=1, model_config=_config(ds), train_config=_recipe(1), covariates=_cov(ds)[:, :1])
    constant = _cov(ds)
    constant[:, 1] = 7.0
    with pytest.raises(InputError, match="age constant"):
        train_model(ds, seed=1, model_config=_config(ds), train_config=_recipe(1), covariates=constant)


def test_train_model__resume_with_covariates_is_exact(ds, tmp_path):
    from test_train import killed_after_5_and_resumed

    cov, config = _cov(ds), _config(ds, input_dropout=0.95)
    recipe = _recipe(6, checkpoint_every=2, input_dropout_kernel="sparse")
    straight, resumed = killed_after_5_and_resumed(ds, tmp_path, seed=5, recipe=recipe, config=config,
                                                   covariates=cov)
    assert resumed.info["resumed_from_epoch"] == 4
    sa, sb = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    pd.testing.assert_frame_equal(straight.history.drop(columns="seconds"),
                                  resumed.history.drop(columns="seconds"))
    # other covariate values are another run: the checkpoint is not resumed
    with pytest.raises(InputError, match="different run"):
        train_model(ds, seed=5, model_config=config, train_config=recipe, checkpoint_dir=tmp_path,
                    covariates=cov + 1.0)


def test_train_model__null_model_gets_the_same_covariates(ds, monkeypatch):
    """A null model permutes the labels only: every step sees the covariates of the rows it trains on."""
    import annpal.train as train_mod

    cov = _cov(ds)
    seen = []
    original = train_mod._train_step

    def spy(run, data, idx, train_config, **kw):
        seen.append((data.c_train.index_select(0, idx).numpy(), idx.numpy()))
        return original(run, data, idx, train_config, **kw)

    monkeypatch.setattr(train_mod, "_train_step", spy)
    result = train_model(ds, seed=2, null=True, model_config=_config(ds), train_config=_recipe(1), covariates=cov)
    train_rows = np.asarray(result.meta["train_rows"])
    for c, idx in seen:
        np.testing.assert_array_equal(c, cov[train_rows[idx]].astype(np.float32))


# ---------------------------------------------------------------------------------------------- CLI


def _run(name: str, args: list) -> object:
    from click.testing import CliRunner
    from conftest import load_bin

    return CliRunner().invoke(load_bin(name), [str(a) for a in args], catch_exceptions=False)


TRAIN_SMALL = ["--epochs", "2", "--batch-size", "64", "--lr", "1e-3", "--h1", "8", "--h2", "3",
               "--input-dropout", "0.5", "--device", "cpu", "--threads", "1"]


@pytest.fixture(scope="module")
def pcs_dir(tiny_prepared, tmp_path_factory):
    out = tmp_path_factory.mktemp("pca") / "pca"
    res = _run("annpal-pca", ["--dataset", tiny_prepared, "--n-pcs", 2, "--out-dir", out])
    assert res.exit_code == 0, res.output
    return out


def _covar_file(ds, path, *, extra_row: bool = True, drop: int = 0, bad: bool = False):
    samples = ds.samples.iloc[drop:]
    table = pd.DataFrame({"FID": samples["FID"], "IID": samples["IID"],
                          "age": [f"{v:g}" for v in np.linspace(20, 80, len(samples))]})
    if bad:
        table.loc[table.index[3], "age"] = "old"
    if extra_row:  # samples not in the dataset are ignored
        table = pd.concat([table, pd.DataFrame({"FID": ["X"], "IID": ["Y"], "age": [1.0]})])
    table.to_csv(path, sep="\t", index=False)
    return path


def test_pca_and_gwas__share_the_pcs(tiny_prepared, pcs_dir, tmp_path):
    from annpal import results

    pcs = results.read(results.PCS, pcs_dir / "pcs.tsv")
    assert list(pcs.columns) == ["FID", "IID", "PC1", "PC2"]
    assert results.read(results.PCA_RECORD, pcs_dir / "pca.json")["n_pcs"] == 2
    shared = tmp_path / "shared"
    assert _run("annpal-gwas", ["--dataset", tiny_prepared, "--pcs", pcs_dir / "pcs.tsv", "--out-dir", shared]
                ).exit_code == 0
    own = tmp_path / "own"
    assert _run("annpal-gwas", ["--dataset", tiny_prepared, "--n-pcs", 2, "--out-dir", own]).exit_code == 0
    # the same PCs: the same regression; with --pcs no second pcs.tsv is written
    assert not (shared / "pcs.tsv").exists() and (own / "pcs.tsv").exists()
    a, b = (results.read(results.GWAS, d / "gwas.tsv") for d in (shared, own))
    np.testing.assert_allclose(a["z"], b["z"], rtol=1e-9)
    assert results.read(results.GWAS_RECORD, shared / "gwas.json")["n_pcs"] == 2


@pytest.mark.filterwarnings("ignore:Setting forward, backward hooks")
def test_train_and_attribute__nn_covariates_pcs_plus_file(tiny_prepared, pcs_dir, ds, tmp_path):
    covar = _covar_file(ds, tmp_path / "covar.tsv")
    out = tmp_path / "model"
    res = _run("annpal-train", ["--dataset", tiny_prepared, "--seed", 1, *TRAIN_SMALL, "--nn-covariates",
                                "pcs+file", "--pcs", pcs_dir / "pcs.tsv", "--covar", covar, "--out-dir", out])
    assert res.exit_code == 0, res.output
    model, _ = load_model(out / "model.pt")
    assert model.config.covariates == ("PC1", "PC2", "age")
    table = pd.read_csv(out / "covariates.tsv", sep="\t")
    assert list(table.columns) == ["FID", "IID", "PC1", "PC2", "age"] and len(table) == ds.n_samples
    import json

    info = json.loads((out / "train.json").read_text())
    assert info["nn_covariates"]["mode"] == "pcs+file" and info["nn_covariates"]["names"] == ["PC1", "PC2", "age"]
    for method in ("ig", "pm"):
        res = _run("annpal-attribute", ["--dataset", tiny_prepared, "--model", out / "model.pt", "--method", method,
                                        "--device", "cpu", "--out-dir", tmp_path / method])
        assert res.exit_code == 0, res.output
        assert np.load(tmp_path / method / "mas.npy").shape == (ds.n_snps,)
        assert json.loads((tmp_path / method / "attr.json").read_text())["covariates"] == ["PC1", "PC2", "age"]
    # without its covariates.tsv the model cannot be attributed: one line naming the file
    (out / "covariates.tsv").unlink()
    res = _run("annpal-attribute", ["--dataset", tiny_prepared, "--model", out / "model.pt", "--method", "ig",
                                    "--device", "cpu", "--out-dir", tmp_path / "x"])
    assert res.exit_code == 1 and "covariates.tsv: missing" in res.stderr and not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, message", [
    (["--nn-covariates", "pcs"], "needs --pcs"),
    (["--nn-covariates", "file"], "needs --covar"),
    (["--pcs", "PCS"], "does not use it"),
    (["--nn-covariates", "file", "--covar", "MISSING"], "1 of 400 dataset samples have no row"),
    (["--nn-covariates", "file", "--covar", "BAD"], "not numeric"),
    (["--nn-covariates", "pcs", "--pcs", "NOTPCS"], "expected columns FID IID PC1"),
])
def test_train__bad_covariate_inputs_one_line(tiny_prepared, pcs_dir, ds, tmp_path, args, message):
    files = {"PCS": pcs_dir / "pcs.tsv", "MISSING": _covar_file(ds, tmp_path / "m.tsv", drop=1),
             "BAD": _covar_file(ds, tmp_path / "b.tsv", bad=True),
             "NOTPCS": _covar_file(ds, tmp_path / "n.tsv")}
    args = [files.get(a, a) for a in args]
    res = _run("annpal-train", ["--dataset", tiny_prepared, "--seed", 1, *TRAIN_SMALL, *args,
                                "--out-dir", tmp_path / "o"])
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert not (tmp_path / "o").exists()
