"""Tests for ``annpal.train`` and ``bin/annpal-train`` (docs/method.md §2)."""

from __future__ import annotations

import copy
import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from conftest import load_bin, make_prepared
from torch.nn import functional as F

import annpal.train as train_mod
from annpal.dataset import balanced_training_index
from annpal.errors import InputError
from annpal.model import AnnClassifier, ModelConfig, load_model
from annpal.prepared import load_prepared
from annpal.train import TrainConfig, resolve_device, roc_auc, train_model

SMALL = {"h1": 8, "h2": 3, "input_dropout": 0.5}


@pytest.fixture(scope="module")
def ds(tiny_prepared):
    return load_prepared(tiny_prepared, mmap=False)


def small_model(ds, **kw):
    return ModelConfig(n_snps=ds.n_snps, **{**SMALL, **kw})


def quick(epochs=3, **kw):
    return TrainConfig(**{"epochs": epochs, "batch_size": 64, "lr": 1e-3, "device": "cpu", "threads": 1, **kw})


def weights_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------------------------------------- AUC


def test_roc_auc__hand_example():
    # pairs (case, control): (0.35, 0.1) ✓ (0.35, 0.4) ✗ (0.8, 0.1) ✓ (0.8, 0.4) ✓ → 3/4
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75


def test_roc_auc__ties_count_half():
    # cases {0.5, 0.9}, controls {0.5, 0.2}: 0.5 vs 0.5 tie (½), the other three pairs won → 3.5/4
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.2, 0.9])) == 0.875


def test_roc_auc__matches_pairwise_count():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 60)
    scores = rng.integers(0, 8, 60) / 8.0  # many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    assert roc_auc(labels, scores) == pytest.approx(wins / (len(pos) * len(neg)), abs=1e-12)


def test_roc_auc__one_class_is_nan():
    assert math.isnan(roc_auc(np.ones(4), np.arange(4.0)))


# ----------------------------------------------------------------------------------- configuration


def test_train_config__paper_defaults():
    c = TrainConfig()
    assert (c.epochs, c.batch_size, c.lr, c.weight_decay, c.label_noise, c.input_noise, c.bf16) == (
        1000, 256, 1e-5, 1e-3, 0.1, 0.1, False)


@pytest.mark.parametrize("field,value", [("epochs", 0), ("batch_size", 0), ("lr", 0.0), ("label_noise", -0.1),
                                         ("checkpoint_every", 0), ("threads", 0)])
def test_train_config__invalid(field, value):
    with pytest.raises(InputError, match=field.replace("_", "-")):
        TrainConfig(**{field: value})


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_resolve_device__cuda_missing():
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(InputError, match="use --device cpu or --device auto"):
        resolve_device("cuda")


def test_train_model__permute_seed_without_null(ds):
    with pytest.raises(InputError, match="--null"):
        train_model(ds, seed=1, model_config=small_model(ds), train_config=quick(1), permute_seed=3)


def test_train_model__snp_count_mismatch(ds):
    with pytest.raises(InputError, match="inputs"):
        train_model(ds, seed=1, model_config=ModelConfig(n_snps=10), train_config=quick(1))


# ---------------------------------------------------------------------------------------- recipe


def test_train_model__one_full_batch_step_matches_plain_reference(ds, monkeypatch):
    """No noise, no dropout, one full batch: one plain Adam step of BCE on the balanced rows."""
    initial = {}

    class Recording(AnnClassifier):
        def __init__(self, config):
            super().__init__(config)
            initial["state"] = copy.deepcopy(self.state_dict())

    monkeypatch.setattr(train_mod, "AnnClassifier", Recording)
    config = small_model(ds, input_dropout=0.0, hidden_dropout=0.0)
    result = train_model(ds, seed=4, model_config=config,
                         train_config=quick(1, batch_size=10_000, lr=1e-2, weight_decay=0.05, label_noise=0.0,
                                            input_noise=0.0))
    # plain reference
    train_rows = np.flatnonzero(ds.train_mask)
    idx = balanced_training_index(ds.labels[train_rows], seed=4, rule=TrainConfig().balance)
    x = torch.tensor(ds.genotypes[train_rows][idx], dtype=torch.float32)
    y = torch.tensor(ds.labels[train_rows][idx], dtype=torch.float32)
    ref = AnnClassifier(config)
    ref.load_state_dict(initial["state"])
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2, weight_decay=0.05)
    loss = F.binary_cross_entropy(ref(x).flatten(), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(result.model.state_dict()[key], value, rtol=1e-5, atol=1e-6)
    assert result.history.loc[0, "train_loss"] == pytest.approx(loss.item(), rel=1e-5)
    # validation: whole set, eval mode
    val_rows = np.flatnonzero(ds.val_mask)
    with torch.no_grad():
        p = ref.eval()(torch.tensor(ds.genotypes[val_rows], dtype=torch.float32)).flatten().double().numpy()
    yv = ds.labels[val_rows]
    bce = -np.mean(yv * np.log(p) + (1 - yv) * np.log(1 - p))
    assert result.history.loc[0, "val_loss"] == pytest.approx(bce, rel=1e-5)
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0
               for a, b in itertools.product(p[yv == 1], p[yv == 0]))
    assert result.history.loc[0, "val_auc"] == pytest.approx(wins / ((yv == 1).sum() * (yv == 0).sum()))


def recording_first_layer(seen: list):
    """An AnnClassifier that records (training?, input of the first linear layer, None) per call."""

    class Recording(AnnClassifier):
        def __init__(self, config):
            super().__init__(config)
            self.first_linear.register_forward_pre_hook(
                lambda module, args: seen.append([self.training, args[0].detach().clone(), None]))

    return Recording


def test_train_model__input_dropout_law(ds, monkeypatch):
    seen = []
    monkeypatch.setattr(train_mod, "AnnClassifier", recording_first_layer(seen))
    train_model(ds, seed=2, model_config=small_model(ds, input_dropout=0.75), train_config=quick(1, input_noise=0.0))
    train_x = torch.cat([x for t, x, _ in seen if t])
    # survivors scaled by 1/(1 − p) = 4, dropped ones are 0: values in {−4, 0, 4}
    assert set(train_x.unique().tolist()) <= {-4.0, 0.0, 4.0}
    eval_x = torch.cat([x for t, x, _ in seen if not t])
    assert set(eval_x.unique().tolist()) <= {-1.0, 0.0, 1.0}  # no dropout in eval
    # among non-zero genotypes, a fraction p is dropped (binomial sd ≈ 0.002 here)
    rows = np.flatnonzero(ds.train_mask)
    nonzero_genotypes = (ds.genotypes[rows] != 0).mean() * train_x.shape[0] * ds.n_snps
    assert (train_x != 0).sum().item() / nonzero_genotypes == pytest.approx(0.25, abs=0.02)


def test_train_model__noise_in_training_not_in_eval(ds, monkeypatch):
    seen = []  # (training?, x, target)
    real_bce = F.binary_cross_entropy

    def recording_bce(y_hat, y, *args, **kwargs):
        seen[-1][2] = y.detach().clone()
        return real_bce(y_hat, y, *args, **kwargs)

    monkeypatch.setattr(train_mod, "AnnClassifier", recording_first_layer(seen))
    monkeypatch.setattr(train_mod.F, "binary_cross_entropy", recording_bce)
    result = train_model(ds, seed=2, model_config=small_model(ds, input_dropout=0.0),
                         train_config=quick(1, batch_size=50))
    train_x = torch.cat([x for t, x, _ in seen if t])
    train_y = torch.cat([y for t, _, y in seen if t])
    eval_x = torch.cat([x for t, x, _ in seen if not t])
    assert train_x.shape[0] == result.meta["n_train_balanced"]  # one pass over the balanced index
    assert sum(1 for t, _, _ in seen if t) == math.ceil(result.meta["n_train_balanced"] / 50)
    # x − ξ, ξ ~ N(0, 0.1) per element, around the integer genotypes
    resid = (train_x - train_x.round()).flatten()
    assert abs(resid.mean().item()) < 0.005 and resid.std().item() == pytest.approx(0.1, rel=0.05)
    # y ← clamp(y − ε, 0, 1): about half the targets move off 0/1, by a half-normal amount
    moved = ~((train_y == 0) | (train_y == 1))
    assert 0.4 < moved.float().mean().item() < 0.6
    dist = torch.minimum(train_y[moved], 1 - train_y[moved])
    assert dist.pow(2).mean().sqrt().item() == pytest.approx(0.1, rel=0.2)
    # validation: exact genotypes of the validation rows, exact labels
    val_rows = np.flatnonzero(ds.val_mask)
    assert torch.equal(eval_x, torch.tensor(ds.genotypes[val_rows], dtype=torch.float32))
    eval_y = [y for t, _, y in seen if not t][-1]
    assert torch.equal(eval_y, torch.tensor(ds.labels[val_rows], dtype=torch.float32))


def test_train_model__optimiser_in_checkpoint(ds, tmp_path):
    train_model(ds, seed=1, model_config=small_model(ds), train_config=quick(1, lr=3e-4, weight_decay=2e-3),
                checkpoint_dir=tmp_path)
    state = torch.load(tmp_path / train_mod.CHECKPOINT_NAME, weights_only=True)
    group = state["optimizer"]["param_groups"][0]
    assert (group["lr"], group["weight_decay"], group["betas"]) == (3e-4, 2e-3, (0.9, 0.999))
    assert {"exp_avg", "exp_avg_sq"} <= set(state["optimizer"]["state"][0])  # Adam
    assert state["epoch"] == 1


def test_train_model__history_columns(ds):
    result = train_model(ds, seed=1, model_config=small_model(ds), train_config=quick(3))
    assert list(result.history.columns) == ["epoch", "train_loss", "val_loss", "val_auc", "val_r2",
                                            "val_output_sd", "val_dead_fraction", "seconds"]
    assert result.history["val_r2"].isna().all()  # binary trait: R² is not defined
    assert result.history["epoch"].tolist() == [1, 2, 3]
    assert (result.history["val_output_sd"] > 0).all() and result.history["val_dead_fraction"].between(0, 1).all()
    assert result.history[["train_loss", "val_loss", "val_auc"]].notna().all().all()
    assert not result.model.training


def test_train_model__learns_the_signal(ds):
    result = train_model(ds, seed=1, model_config=small_model(ds), train_config=quick(40, batch_size=32))
    assert result.history["val_auc"].iloc[-5:].mean() > 0.7


# ------------------------------------------------------- collapse, best epoch, balancing (issue 21)


def test_train_model__collapse_detected_with_epoch(ds):
    # lr 1 (3 000x the paper's lr * sqrt(M)) kills the network in its first epoch: constant output
    result = train_model(ds, seed=1, model_config=small_model(ds), train_config=quick(4, lr=1.0))
    assert (result.history["val_output_sd"] == 0).all() and (result.history["val_auc"] == 0.5).all()
    assert result.meta["collapsed"] and result.meta["training_collapsed"] and result.meta["collapse_epoch"] == 1


def test_train_model__healthy_run_not_collapsed(ds):
    result = train_model(ds, seed=1, model_config=small_model(ds), train_config=quick(3))
    assert not result.meta["collapsed"] and result.meta["collapse_epoch"] is None
    assert result.meta["keep"] == "last" and result.meta["kept_epoch"] == 3


def test_train_model__keep_best_val_loss_is_that_epochs_weights(ds):
    # lr 5e-2, seed 6: the validation loss is lowest at epoch 2 of 6
    best = train_model(ds, seed=6, model_config=small_model(ds),
                       train_config=quick(6, lr=5e-2, keep="best_val_loss"))
    kept = best.meta["kept_epoch"]
    assert kept == int(best.history["val_loss"].idxmin()) + 1 and kept < 6
    # a run stopped at that epoch has the same weights (training never depends on the epoch budget)
    short = train_model(ds, seed=6, model_config=small_model(ds), train_config=quick(kept, lr=5e-2))
    assert weights_equal(best.model, short.model)
    assert len(best.history) == 6


def test_train_model__resume_keeps_the_same_best_epoch(ds, tmp_path):
    recipe = quick(6, lr=5e-2, keep="best_val_loss", checkpoint_every=4)
    straight, resumed = killed_after_5_and_resumed(ds, tmp_path, seed=6, recipe=recipe)
    assert resumed.info["resumed_from_epoch"] == 4 and straight.meta["kept_epoch"] < 4  # best from the checkpoint
    assert resumed.meta["kept_epoch"] == straight.meta["kept_epoch"]
    assert weights_equal(straight.model, resumed.model)


def test_train_model__balance_recorded(ds):
    result = train_model(ds, seed=1, model_config=small_model(ds), train_config=quick(1, balance="none"))
    balance = result.meta["balance"]
    n_train = result.meta["n_train"]
    assert balance["rule"] == balance["rule_used"] == "none" and result.meta["n_train_balanced"] == n_train
    assert balance["before"] == balance["after"]
    auto = train_model(ds, seed=1, model_config=small_model(ds), train_config=quick(1))
    assert auto.meta["balance"]["rule"] == "auto" and 0.4 <= auto.meta["balance"]["after"]["case_share"] <= 0.6


# ------------------------------------------------------------------------------ seeds and nulls


def test_train_model__same_seed_identical_different_seed_not(ds):
    a = train_model(ds, seed=7, model_config=small_model(ds), train_config=quick(2))
    b = train_model(ds, seed=7, model_config=small_model(ds), train_config=quick(2))
    c = train_model(ds, seed=8, model_config=small_model(ds), train_config=quick(2))
    assert weights_equal(a.model, b.model)
    pd.testing.assert_frame_equal(a.history.drop(columns="seconds"), b.history.drop(columns="seconds"))
    assert not weights_equal(a.model, c.model)


def test_train_model__leaves_global_torch_state_alone(ds):
    torch.manual_seed(123)
    before, threads = torch.get_rng_state(), torch.get_num_threads()
    train_model(ds, seed=1, model_config=small_model(ds), train_config=quick(1, threads=1))
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.get_num_threads() == threads


def test_train_model__real_case_rows_are_all_cases(ds):
    result = train_model(ds, seed=1, model_config=small_model(ds), train_config=quick(1))
    assert result.meta["kind"] == "real" and result.meta["permutation"] is None
    assert result.meta["case_rows"] == np.flatnonzero(ds.labels == 1).tolist()
    assert result.meta["n_train"] + result.meta["n_val"] == ds.n_samples


def test_train_model__null_permutation_recorded_and_reproducible(ds):
    run = lambda ps: train_model(ds, seed=1, model_config=small_model(ds), train_config=quick(1),  # noqa: E731
                                 null=True, permute_seed=ps)
    a, b, c = run(11), run(11), run(12)
    meta = a.meta
    train_rows = np.array(meta["train_rows"])
    perm = np.array(meta["permutation"])
    assert meta["kind"] == "null" and meta["permute_seed"] == 11
    assert sorted(perm.tolist()) == list(range(len(train_rows)))
    assert perm.tolist() == np.random.default_rng(11).permutation(len(train_rows)).tolist()
    permuted = ds.labels[train_rows][perm]
    assert permuted.sum() == ds.labels[train_rows].sum()  # a permutation keeps the class counts
    assert meta["case_rows"] == train_rows[permuted == 1].tolist()
    assert set(meta["case_rows"]) <= set(train_rows.tolist())  # validation rows keep their real labels
    assert meta["case_rows"] != np.flatnonzero(ds.labels == 1).tolist()
    assert b.meta["permutation"] == meta["permutation"] and weights_equal(a.model, b.model)
    assert c.meta["permutation"] != meta["permutation"]


def test_train_model__null_trains_on_permuted_labels(ds, monkeypatch):
    targets = []
    real_bce = F.binary_cross_entropy
    monkeypatch.setattr(train_mod.F, "binary_cross_entropy",
                        lambda y_hat, y, *a, **k: (targets.append(y.clone()), real_bce(y_hat, y, *a, **k))[1])
    result = train_model(ds, seed=3, model_config=small_model(ds), null=True,
                         train_config=quick(1, batch_size=10_000, label_noise=0.0, input_noise=0.0))
    assert result.meta["permute_seed"] == 3  # defaults to the seed
    train_rows = np.array(result.meta["train_rows"])
    permuted = ds.labels[train_rows][np.array(result.meta["permutation"])]
    expected = np.sort(permuted[balanced_training_index(permuted, seed=3, rule=TrainConfig().balance)])
    assert np.sort(targets[0].numpy()).tolist() == expected.astype(np.float32).tolist()


# ------------------------------------------------------------------------------------ checkpoints


def killed_after_5_and_resumed(ds, tmp_path, *, seed, recipe, config=None, **train_kw):
    """An uninterrupted run, and the same run killed after epoch 5 and resumed from its checkpoint
    (``train_kw``: more arguments of every train_model call)."""
    config = config or small_model(ds)
    straight = train_model(ds, seed=seed, model_config=config, train_config=recipe, **train_kw)

    class Killed(Exception):
        pass

    def kill_after_5(epoch, row):
        if epoch == 5:
            raise Killed

    with pytest.raises(Killed):
        train_model(ds, seed=seed, model_config=config, train_config=recipe, checkpoint_dir=tmp_path,
                    on_epoch_end=kill_after_5, **train_kw)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 4
    resumed = train_model(ds, seed=seed, model_config=config, train_config=recipe, checkpoint_dir=tmp_path,
                          **train_kw)
    return straight, resumed


@pytest.mark.parametrize("kernel", ["dense", "sparse", "fused"])
def test_train_model__resume_after_kill_equals_uninterrupted(ds, tmp_path, kernel):
    straight, resumed = killed_after_5_and_resumed(
        ds, tmp_path, seed=5, recipe=quick(6, checkpoint_every=2, input_dropout_kernel=kernel),
        config=small_model(ds, input_dropout=0.95))
    assert resumed.info["resumed_from_epoch"] == 4 and resumed.info["input_dropout_kernel"] == kernel
    assert weights_equal(straight.model, resumed.model)
    pd.testing.assert_frame_equal(straight.history.drop(columns="seconds"),
                                  resumed.history.drop(columns="seconds"))
    assert not list(tmp_path.glob(".checkpoint.pt.tmp-*"))


def test_train_model__resume_extends_epochs(ds, tmp_path):
    config = small_model(ds)
    straight = train_model(ds, seed=5, model_config=config, train_config=quick(5, checkpoint_every=10))
    train_model(ds, seed=5, model_config=config, train_config=quick(3, checkpoint_every=10),
                checkpoint_dir=tmp_path)  # the last epoch is always checkpointed
    longer = train_model(ds, seed=5, model_config=config, train_config=quick(5, checkpoint_every=10),
                         checkpoint_dir=tmp_path)
    assert longer.info["resumed_from_epoch"] == 3
    assert weights_equal(straight.model, longer.model)


def test_train_model__checkpoint_of_another_run_refused(ds, tmp_path):
    train_model(ds, seed=5, model_config=small_model(ds), train_config=quick(1), checkpoint_dir=tmp_path)
    with pytest.raises(InputError, match="different run"):
        train_model(ds, seed=6, model_config=small_model(ds), train_config=quick(1), checkpoint_dir=tmp_path)
    with pytest.raises(InputError, match="different run"):
        train_model(ds, seed=5, model_config=small_model(ds), train_config=quick(1, lr=0.5),
                    checkpoint_dir=tmp_path)


# ---------------------------------------------------------------------------------------------- CLI

CLI_SMALL = ["--epochs", "3", "--batch-size", "64", "--lr", "1e-3", "--h1", "8", "--h2", "3",
             "--input-dropout", "0.5", "--device", "cpu", "--threads", "1"]


@pytest.fixture(scope="module")
def cli():
    return load_bin("annpal-train")


def run(cli, args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_main__writes_model_history_json(cli, tiny_prepared, tmp_path):
    out = tmp_path / "model"
    res = run(cli, ["--dataset", tiny_prepared, "--seed", 2, *CLI_SMALL, "--out-dir", out,
                    "--versions", tmp_path / "versions.yml"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["history.tsv", "model.pt", "train.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    history = pd.read_csv(out / "history.tsv", sep="\t")
    assert list(history.columns) == ["epoch", "train_loss", "val_loss", "val_auc", "val_r2", "val_output_sd",
                                     "val_dead_fraction", "seconds"]
    assert history["epoch"].tolist() == [1, 2, 3]
    model, meta = load_model(out / "model.pt")
    assert model.config.hidden_sizes() == (8, 3) and model.config.input_dropout == 0.5
    assert meta["kind"] == "real" and meta["seed"] == 2 and meta["permute_seed"] is None
    assert meta["train_config"]["epochs"] == 3 and meta["n_val"] == 80
    info = json.loads((out / "train.json").read_text())
    for key in ("seconds", "device", "threads", "versions", "final", "n_parameters"):
        assert key in info
    assert info["device"] == "cpu" and info["threads"] == 1
    assert info["final"]["val_auc"] == pytest.approx(history["val_auc"].iloc[-1])
    assert '"TRAIN":' in (tmp_path / "versions.yml").read_text()


def test_main__lr_auto_keep_best_collapse_and_balance_recorded(cli, tiny_prepared, tmp_path):
    args = [a for a in CLI_SMALL]
    args[args.index("--lr") + 1] = "auto"
    res = run(cli, ["--dataset", tiny_prepared, "--seed", 2, *args, "--keep", "best_val_loss", "--balance", "equal",
                    "--out-dir", tmp_path / "o"])
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "o" / "train.json").read_text())
    n_snps = info["n_snps"]
    assert info["lr_rule"] == "auto"
    assert info["train_config"]["lr"] == pytest.approx(1e-5 * math.sqrt(290_522 / n_snps))
    assert info["keep"] == "best_val_loss" and 1 <= info["kept_epoch"] <= 3
    assert info["collapsed"] is False and info["collapse_epoch"] is None and info["warnings"] == []
    assert info["balance"]["rule_used"] == "equal" and info["balance"]["after"]["case_share"] == 0.5
    assert set(info["kept"]) == {"train_loss", "val_loss", "val_auc", "val_r2", "val_output_sd", "val_dead_fraction"}
    _, meta = load_model(tmp_path / "o" / "model.pt")
    assert meta["collapsed"] is False and meta["kept_epoch"] == info["kept_epoch"]


@pytest.mark.parametrize("value", ["fast", "-1", "0", "inf"])
def test_main__bad_lr_one_line(cli, tiny_prepared, tmp_path, value):
    res = CliRunner().invoke(cli, ["--dataset", str(tiny_prepared), "--seed", "1", "--device", "cpu",
                                   "--lr", value, "--out-dir", str(tmp_path / "o")])
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--lr {value}: not a positive number" in lines[0]
    assert not (tmp_path / "o").exists()


def test_main__null_model(cli, tiny_prepared, tmp_path):
    res = run(cli, ["--dataset", tiny_prepared, "--seed", 2, "--null", "--permute-seed", 9, *CLI_SMALL,
                    "--out-dir", tmp_path / "o"])
    assert res.exit_code == 0, res.output
    _, meta = load_model(tmp_path / "o" / "model.pt")
    assert meta["kind"] == "null" and meta["permute_seed"] == 9 and len(meta["permutation"]) == meta["n_train"]
    assert json.loads((tmp_path / "o" / "train.json").read_text())["kind"] == "null"


def test_main__same_seed_same_weights(cli, tiny_prepared, tmp_path):
    for name in ("a", "b"):
        assert run(cli, ["--dataset", tiny_prepared, "--seed", 4, *CLI_SMALL, "--out-dir", tmp_path / name]
                   ).exit_code == 0
    a, _ = load_model(tmp_path / "a" / "model.pt")
    b, _ = load_model(tmp_path / "b" / "model.pt")
    assert weights_equal(a, b)


def test_main__checkpoint_resume(cli, tiny_prepared, tmp_path):
    ckpt = tmp_path / "ckpt"
    args = ["--dataset", tiny_prepared, "--seed", 4, *CLI_SMALL, "--checkpoint-dir", ckpt,
            "--checkpoint-every", 1]
    assert run(cli, [*args, "--out-dir", tmp_path / "first"]).exit_code == 0
    args[args.index("--epochs") + 1] = "5"
    assert run(cli, [*args, "--out-dir", tmp_path / "second"]).exit_code == 0
    info = json.loads((tmp_path / "second" / "train.json").read_text())
    assert info["resumed_from_epoch"] == 3
    assert len(pd.read_csv(tmp_path / "second" / "history.tsv", sep="\t")) == 5


def test_main__checkpoint_root_keyed_by_run(cli, tiny_prepared, tmp_path):
    """--checkpoint-root: a retried task (new out dir) resumes; another seed gets its own folder."""
    root = tmp_path / "root"
    base = ["--dataset", tiny_prepared, *CLI_SMALL, "--checkpoint-root", root, "--checkpoint-every", 1]
    assert run(cli, [*base, "--seed", 4, "--out-dir", tmp_path / "a"]).exit_code == 0
    assert run(cli, [*base, "--seed", 5, "--out-dir", tmp_path / "b"]).exit_code == 0
    assert len(list(root.iterdir())) == 2
    assert run(cli, [*base, "--seed", 4, "--out-dir", tmp_path / "retry"]).exit_code == 0
    info = json.loads((tmp_path / "retry" / "train.json").read_text())
    assert info["resumed_from_epoch"] == 3
    a, _ = load_model(tmp_path / "a" / "model.pt")
    retry, _ = load_model(tmp_path / "retry" / "model.pt")
    assert weights_equal(a, retry)
    res = CliRunner().invoke(cli, [str(x) for x in [*base, "--seed", 4, "--checkpoint-dir", tmp_path / "c",
                                                    "--out-dir", tmp_path / "c"]])
    assert res.exit_code == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_main__cuda_unavailable_one_line(cli, tiny_prepared, tmp_path):
    res = CliRunner().invoke(cli, ["--dataset", str(tiny_prepared), "--seed", "1", "--device", "cuda",
                                   "--out-dir", str(tmp_path / "o")])
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[ERROR]") and "--device cpu" in lines[0]
    assert not (tmp_path / "o").exists()


def test_main__bad_dataset_one_line(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(cli, ["--dataset", str(tmp_path / "empty"), "--seed", "1", "--device", "cpu",
                                   "--out-dir", str(tmp_path / "o")])
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[ERROR]") and "annpal-prepare" in lines[0]


@pytest.mark.parametrize("extra,code", [(["--permute-seed", "3"], 2), (["--device", "tpu"], 2),
                                        (["--input-dropout", "1.5"], 1), (["--epochs", "0"], 1)])
def test_main__bad_options(cli, tiny_prepared, tmp_path, extra, code):
    res = CliRunner().invoke(cli, ["--dataset", str(tiny_prepared), "--seed", "1", "--device", "cpu",
                                   "--out-dir", str(tmp_path / "o"), *extra])
    assert res.exit_code == code
    assert not (tmp_path / "o").exists()


def test_main__help_shows_paper_defaults(cli):
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0
    for text in ("--input-dropout", "0.99", "auto", "--checkpoint-dir", "--bf16 / --no-bf16", "--keep",
                 "--balance"):
        assert text in res.output


@pytest.mark.parametrize("input_dropped", [False, True])
def test_forward__bf16_first_layer_close_to_float32(input_dropped):
    # the CUDA bf16 path, exercised on the CPU: autocast covers only the first linear layer
    torch.manual_seed(0)
    model = AnnClassifier(ModelConfig(n_snps=500, h1=16, h2=4)).eval()
    x = torch.randint(-1, 2, (6, 500)).float()
    out = train_mod._forward(model, x, bf16=True, input_dropped=input_dropped)
    assert out.dtype == torch.float32 and out.shape == (6,)
    torch.testing.assert_close(out, model(x).flatten(), atol=2e-2, rtol=0)


# ------------------------------------------------------------------------- quantitative traits (MSE)


@pytest.fixture(scope="module")
def qds(tmp_path_factory):
    """The 400 × 300 dataset of ``tiny_prepared`` with its liability as a quantitative trait."""
    path = tmp_path_factory.mktemp("quantitative") / "prepared"
    make_prepared(path, trait_type="quantitative")
    return load_prepared(path, mmap=False)


def linear_model(ds, **kw):
    return small_model(ds, output="linear", **kw)


def test_r_squared__hand_example():
    # SS_res = 1 (one prediction off by 1), SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5 → 1 − 1/5
    assert train_mod.r_squared(np.array([1.0, 2, 3, 4]), np.array([1.0, 2, 3, 5])) == pytest.approx(0.8)
    assert train_mod.r_squared(np.array([1.0, 2, 3, 4]), np.full(4, 2.5)) == 0.0  # the mean itself
    # SS_res = 12.25 + 6.25 + 2.25 + 0.25 = 21: worse than the mean, so negative
    assert train_mod.r_squared(np.array([1.0, 2, 3, 4]), np.full(4, 4.5)) == pytest.approx(1 - 21 / 5)
    assert math.isnan(train_mod.r_squared(np.ones(3), np.arange(3.0)))


def test_output_loss__mse_and_bce_by_hand():
    out, y = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1.0, 0.0, 2.0])
    assert train_mod.output_loss(out, y, linear=True).item() == pytest.approx((0.25 + 1.0 + 0.0) / 3)
    p, t = torch.tensor([0.8, 0.3]), torch.tensor([1.0, 0.0])
    assert train_mod.output_loss(p, t, linear=False).item() == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)


def test_train_model__quantitative_history_rows_and_scaling(qds):
    result = train_model(qds, seed=1, model_config=linear_model(qds), train_config=quick(3))
    h = result.history
    assert h["val_auc"].isna().all() and h["val_r2"].notna().all()
    train = qds.train_mask
    mean, sd = qds.labels[train].mean(), qds.labels[train].std()
    assert result.meta["trait_scaling"] == pytest.approx({"mean": mean, "sd": sd})
    assert result.meta["case_rows"] == list(range(qds.n_samples))  # every sample is attributed
    assert result.meta["balance"]["rule_used"] == "none" and result.meta["n_train_balanced"] == train.sum()
    # the last epoch's validation loss and R² recomputed by hand from the returned network
    x = torch.from_numpy(qds.genotypes[qds.val_mask].astype(np.float32))
    with torch.no_grad():
        pred = result.model(x).flatten().numpy().astype(np.float64)
    y = (qds.labels[qds.val_mask] - mean) / sd
    assert h["val_loss"].iloc[-1] == pytest.approx(np.mean((y - pred) ** 2), rel=1e-5)
    assert h["val_r2"].iloc[-1] == pytest.approx(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2), rel=1e-5)
    assert not isinstance(result.model.layers[-1], torch.nn.Sigmoid)


def test_train_model__quantitative_targets_standardised_unclamped_unbalanced(qds, monkeypatch):
    seen = []
    loss = train_mod.output_loss
    # training steps only (their outputs carry gradients; validation scores without)
    monkeypatch.setattr(train_mod, "output_loss",
                        lambda o, t, linear: (o.requires_grad and seen.append((t.clone(), linear))) or loss(o, t, linear=linear))
    cfg = linear_model(qds)
    train_model(qds, seed=2, model_config=cfg, train_config=quick(1, label_noise=0.0))
    targets = np.sort(np.concatenate([t.numpy() for t, linear in seen if linear]))
    train = qds.labels[qds.train_mask]
    # one epoch without label noise: every training row once (no balancing), standardised
    np.testing.assert_allclose(targets, np.sort((train - train.mean()) / train.std()), rtol=1e-5, atol=1e-6)
    seen.clear()
    train_model(qds, seed=2, model_config=cfg, train_config=quick(1, label_noise=0.5))
    noisy = np.concatenate([t.numpy() for t, linear in seen if linear])
    # ε ~ N(0, 0.5) added to a unit-variance trait, not clamped to [0, 1]: variance about 1.25
    assert 1.05 < noisy.var() < 1.5 and noisy.min() < -1 and noisy.max() > 2


def test_train_model__quantitative_learns_and_keeps_the_best_epoch(qds):
    result = train_model(qds, seed=1, model_config=linear_model(qds, input_dropout=0.0, hidden_dropout=0.0),
                         train_config=quick(20, lr=3e-3, keep="best_val_loss"))
    h = result.history
    best = int(h["val_loss"].idxmin())
    assert result.meta["kept_epoch"] == best + 1 == int(h["val_r2"].idxmax()) + 1  # R² = 1 − MSE / Var
    assert h["val_r2"].max() > 0.15  # the two causal SNPs carry most of the trait's variance
    assert not result.meta["collapsed"]


def test_train_model__quantitative_null_permutes_values_and_attributes_training_rows(qds):
    result = train_model(qds, seed=3, model_config=linear_model(qds), train_config=quick(1), null=True)
    train_rows = np.flatnonzero(qds.train_mask)
    assert result.meta["case_rows"] == train_rows.tolist()
    perm = np.asarray(result.meta["permutation"])
    assert sorted(perm.tolist()) == list(range(train_rows.size)) and (perm != np.arange(train_rows.size)).any()


@pytest.mark.parametrize("balance", ["paper", "equal"])
def test_train_model__quantitative_refuses_class_balancing(qds, balance):
    with pytest.raises(InputError, match=rf"--balance {balance}: class balancing needs a case/control trait"):
        train_model(qds, seed=1, model_config=linear_model(qds), train_config=quick(1, balance=balance))


def test_train_model__output_must_match_the_trait(qds, ds):
    with pytest.raises(InputError, match=r"sigmoid output cannot fit the dataset's quantitative trait"):
        train_model(qds, seed=1, model_config=small_model(qds), train_config=quick(1))
    with pytest.raises(InputError, match=r"linear output cannot fit the dataset's binary trait"):
        train_model(ds, seed=1, model_config=linear_model(ds), train_config=quick(1))


def test_main__quantitative_dataset(qds, tmp_path):
    out = tmp_path / "o"
    args = ["--dataset", str(qds.path), "--seed", "1", "--epochs", "2", "--batch-size", "64", "--h1", "8",
            "--h2", "3", "--input-dropout", "0.5", "--device", "cpu", "--threads", "1", "--out-dir", str(out)]
    result = CliRunner().invoke(load_bin("annpal-train"), args)
    assert result.exit_code == 0, result.output
    history = pd.read_csv(out / "history.tsv", sep="\t")
    assert history["val_auc"].isna().all() and history["val_r2"].notna().all()
    info = json.loads((out / "train.json").read_text())
    assert info["trait_type"] == "quantitative" and info["best_val_auc"] is None
    assert info["best_val_r2"] == pytest.approx(history["val_r2"].max())
    model, meta = load_model(out / "model.pt")
    assert model.config.output == "linear" and meta["trait_type"] == "quantitative"
    refused = CliRunner().invoke(load_bin("annpal-train"), [*args[:-1], str(tmp_path / "p"), "--balance", "paper"])
    assert refused.exit_code == 1 and "class balancing needs a case/control trait" in refused.output
