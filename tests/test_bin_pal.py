"""bin/annpal-merge-mas, annpal-call-pal, annpal-pvalues through Click's CliRunner (docs/dev/interfaces.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import BIN, load_bin

from annpal.prepared import load_prepared


def write_attr(folder: Path, *, seed: int, mas: np.ndarray, kind: str = "real", method: str = "ig") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "mas.npy", mas)
    (folder / "attr.json").write_text(json.dumps({"method": method, "kind": kind, "seed": seed}))
    return folder


def mas_rows(n_models: int, n_snps: int, *, seed: int, hot: tuple[int, ...] = (10, 150)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mas = rng.exponential(1.0, (n_models, n_snps))
    mas[:, list(hot)] += 20.0
    return mas / mas.sum(axis=1, keepdims=True)


def one_error_line(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("[ERROR] "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize("name", ["annpal-merge-mas", "annpal-call-pal", "annpal-pvalues"])
def test_bin__executable_help(runner, name: str) -> None:
    path = BIN / name
    assert os.access(path, os.X_OK) and path.read_text().startswith("#!/usr/bin/env python3\n")
    result = runner.invoke(load_bin(name), ["--help"])
    assert result.exit_code == 0 and "--out-dir" in result.output and "--versions" in result.output


def test_merge_mas__sorts_by_seed(runner, tmp_path) -> None:
    mas = mas_rows(3, 50, seed=0, hot=(10,))
    folders = [write_attr(tmp_path / f"a{s}", seed=s, mas=mas[i]) for i, s in enumerate([7, 2, 5])]
    versions = tmp_path / "versions.yml"
    result = runner.invoke(load_bin("annpal-merge-mas"),
                           ["--method", "ig", "--kind", "real", "--out-dir", str(tmp_path / "X"),
                            "--versions", str(versions), *map(str, folders)])
    assert result.exit_code == 0, result.output
    matrix = np.load(tmp_path / "X" / "mas_matrix.npy")
    assert matrix.dtype == np.float64 and matrix.shape == (3, 50)
    np.testing.assert_array_equal(matrix, mas[[1, 2, 0]])
    models = pd.read_csv(tmp_path / "X" / "models.tsv", sep="\t")
    assert list(models.columns) == ["row", "seed", "kind", "method", "degenerate", "collapsed", "collapse_epoch",
                                    "collapsed_models"]
    assert models.degenerate.tolist() == [0, 0, 0] and models.collapsed.tolist() == [0, 0, 0]
    assert models.seed.tolist() == [2, 5, 7] and set(models.kind) == {"real"} and set(models.method) == {"ig"}
    assert versions.read_text().startswith('"MERGE_MAS":')


@pytest.mark.parametrize(("policy", "rows", "excluded"), [
    ("exclude", [2, 7], [5]),
    ("keep", [2, 5, 7], []),
])
def test_merge_mas__collapsed_models(runner, tmp_path, policy: str, rows: list, excluded: list) -> None:
    mas = mas_rows(3, 50, seed=0, hot=(10,))
    folders = [write_attr(tmp_path / f"a{s}", seed=s, mas=mas[i]) for i, s in enumerate([7, 2, 5])]
    attr = json.loads((folders[2] / "attr.json").read_text())
    (folders[2] / "attr.json").write_text(json.dumps({**attr, "collapsed": True, "collapse_epoch": 12}))
    result = runner.invoke(load_bin("annpal-merge-mas"),
                           ["--method", "ig", "--kind", "real", "--collapsed-models", policy,
                            "--out-dir", str(tmp_path / "X"), *map(str, folders)])
    assert result.exit_code == 0, result.output
    models = pd.read_csv(tmp_path / "X" / "models.tsv", sep="\t")
    gone = pd.read_csv(tmp_path / "X" / "excluded.tsv", sep="\t")
    assert models.seed.tolist() == rows and models.row.tolist() == list(range(len(rows)))
    assert gone.seed.tolist() == excluded and set(models.collapsed_models) == {policy}
    by_seed = {7: mas[0], 2: mas[1], 5: mas[2]}
    np.testing.assert_array_equal(np.load(tmp_path / "X" / "mas_matrix.npy"), np.stack([by_seed[s] for s in rows]))
    if policy == "exclude":
        assert gone.collapse_epoch.tolist() == [12]
    else:
        assert models.loc[models.seed == 5, "collapse_epoch"].tolist() == [12]


@pytest.mark.parametrize(("second", "message"), [
    ({"method": "sm"}, "method 'sm'"),
    ({"kind": "null"}, "kind 'null'"),
    ({"length": 40}, "different lengths"),
    ({"seed": 1}, "more than once"),
])
def test_merge_mas__refuses_mixed_inputs(runner, tmp_path, second: dict, message: str) -> None:
    a = write_attr(tmp_path / "a", seed=1, mas=np.full(50, 0.02))
    b = write_attr(tmp_path / "b", seed=second.get("seed", 2), mas=np.full(second.get("length", 50), 0.02),
                   kind=second.get("kind", "real"), method=second.get("method", "ig"))
    result = runner.invoke(load_bin("annpal-merge-mas"),
                           ["--method", "ig", "--kind", "real", "--out-dir", str(tmp_path / "X"), str(a), str(b)])
    assert result.exit_code == 1
    assert message in one_error_line(result)
    assert not (tmp_path / "X").exists()


def test_merge_mas__missing_attr_json(runner, tmp_path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    np.save(a / "mas.npy", np.ones(5))
    result = runner.invoke(load_bin("annpal-merge-mas"), ["--method", "ig", "--kind", "real", "--out-dir",
                                                          str(tmp_path / "X"), str(a)])
    assert result.exit_code == 1 and "attr.json" in one_error_line(result)


@pytest.fixture(scope="module")
def pal_run(tiny_prepared, tmp_path_factory):
    """call-pal on the tiny dataset with a MAS matrix peaking at the causal SNPs."""
    tmp = tmp_path_factory.mktemp("pal")
    mas = mas_rows(4, 300, seed=1)
    np.save(tmp / "mas.npy", mas)
    null = np.abs(np.random.default_rng(2).standard_normal((3, 300))) / 300
    np.save(tmp / "null.npy", null)
    result = CliRunner().invoke(load_bin("annpal-call-pal"),
                                ["--dataset", str(tiny_prepared), "--mas", str(tmp / "mas.npy"), "--method", "ig",
                                 "--thresholds", "99.5,99", "--out-dir", str(tmp / "P"),
                                 "--versions", str(tmp / "v.yml")])
    assert result.exit_code == 0, result.output + result.stderr
    return tmp, mas


def test_call_pal__outputs(pal_run, tiny_prepared) -> None:
    tmp, mas = pal_run
    scores = pd.read_csv(tmp / "P" / "scores.tsv", sep="\t")
    expected = ["index", "CHR", "BP", "SNP", "mas_mean"] + [
        f"{p}_{t}" for t in ("99.5", "99") for p in ("count", "weight", "amas", "pal", "pal_common")]
    assert list(scores.columns) == expected
    assert len(scores) == 300
    np.testing.assert_allclose(scores.mas_mean, mas.mean(axis=0), rtol=1e-9)
    ds = load_prepared(tiny_prepared)
    assert scores.SNP.tolist() == ds.variants.SNP.tolist()
    assert scores.loc[[10, 150], "pal_99"].tolist() == [1, 1]
    pal = pd.read_csv(tmp / "P" / "pal.tsv", sep="\t", dtype={"threshold": str})
    assert list(pal.columns) == ["threshold", "SNP", "CHR", "BP", "index", "mas_mean", "count", "amas", "pal_common"]
    assert set(pal.threshold) == {"99.5", "99"}
    assert len(pal) == scores.pal_99.sum() + scores["pal_99.5"].sum()
    info = json.loads((tmp / "P" / "pal.json").read_text())
    assert info["parameters"] == {"thresholds": ["99.5", "99"], "ld_window": 20, "ld_r": 0.5}
    assert info["thresholds"]["99"]["n_pal"] == int(scores.pal_99.sum())
    assert info["n_models"] == 4 and info["method"] == "ig"
    assert (tmp / "v.yml").read_text().startswith('"CALL_PAL":')


@pytest.mark.parametrize("bad", ["abc", "100", "99.9,", "0,50", "99,99.0"])
def test_call_pal__bad_thresholds_exit_2(runner, pal_run, tiny_prepared, bad: str) -> None:
    tmp, _ = pal_run
    result = runner.invoke(load_bin("annpal-call-pal"),
                           ["--dataset", str(tiny_prepared), "--mas", str(tmp / "mas.npy"), "--method", "ig",
                            "--thresholds", bad, "--out-dir", str(tmp / "bad")])
    assert result.exit_code == 2 and "--thresholds" in result.output + result.stderr


def test_call_pal__wrong_snp_count_exit_1(runner, tiny_prepared, tmp_path) -> None:
    np.save(tmp_path / "mas.npy", mas_rows(2, 299, seed=0))
    result = runner.invoke(load_bin("annpal-call-pal"),
                           ["--dataset", str(tiny_prepared), "--mas", str(tmp_path / "mas.npy"), "--method", "ig",
                            "--out-dir", str(tmp_path / "P")])
    assert result.exit_code == 1 and "299 SNPs" in one_error_line(result)
    assert not (tmp_path / "P").exists()


def test_call_pal__not_a_matrix_exit_1(runner, tiny_prepared, tmp_path) -> None:
    np.save(tmp_path / "mas.npy", np.ones(300))
    result = runner.invoke(load_bin("annpal-call-pal"),
                           ["--dataset", str(tiny_prepared), "--mas", str(tmp_path / "mas.npy"), "--method", "ig",
                            "--out-dir", str(tmp_path / "P")])
    assert result.exit_code == 1 and "2-D" in one_error_line(result)


def run_pvalues(runner, tmp: Path, out: str, *extra: str):
    return runner.invoke(load_bin("annpal-pvalues"),
                         ["--mas", str(tmp / "mas.npy"), "--null-mas", str(tmp / "null.npy"), "--scores",
                          str(tmp / "P" / "scores.tsv"), "--draws", "5", "--out-dir", str(tmp / out), *extra])


def test_pvalues__outputs_pal_only(runner, pal_run) -> None:
    tmp, mas = pal_run
    result = run_pvalues(runner, tmp, "V", "--versions", str(tmp / "pv.yml"))
    assert result.exit_code == 0, result.output + result.stderr
    pv = pd.read_csv(tmp / "V" / "pvalues.tsv", sep="\t", dtype={"threshold": str})
    assert list(pv.columns) == ["threshold", "index", "SNP", "CHR", "BP", "amas", "p_value", "p_bound", "p_text"]
    scores = pd.read_csv(tmp / "P" / "scores.tsv", sep="\t")
    assert len(pv) == scores.pal_99.sum() + scores["pal_99.5"].sum()
    assert np.allclose(pv.p_bound, 1 / (5 * 300))
    zero = pv.p_value == 0
    assert all(t.startswith("< ") for t in pv.p_text[zero]) and not any(t.startswith("< ") for t in pv.p_text[~zero])
    assert not (pv.p_text == "0").any()
    fit = pd.read_csv(tmp / "V" / "null_fit.tsv", sep="\t")
    assert list(fit.columns) == ["distribution", "params", "loglik", "aic", "bic", "best"]
    assert fit.best.sum() == 1 and len(fit) == 6
    info = json.loads((tmp / "V" / "null_fit.json").read_text())
    null = np.load(tmp / "null.npy")
    assert info["sigma"] == pytest.approx(np.sqrt(np.mean(null**2)))
    for key in ("best", "warning", "qq", "histogram", "fits", "p_bound", "thresholds"):
        assert key in info
    assert info["draws"] == 5 and info["seed"] == 1
    assert (tmp / "pv.yml").read_text().startswith('"PVALUES":')
    # Same seed, same file.
    again = run_pvalues(runner, tmp, "V2")
    assert again.exit_code == 0
    assert (tmp / "V2" / "pvalues.tsv").read_text() == (tmp / "V" / "pvalues.tsv").read_text()


def test_pvalues__all_snps(runner, pal_run) -> None:
    tmp, _ = pal_run
    result = run_pvalues(runner, tmp, "VA", "--all-snps")
    assert result.exit_code == 0, result.stderr
    pv = pd.read_csv(tmp / "VA" / "pvalues.tsv", sep="\t", dtype={"threshold": str})
    assert len(pv) == 2 * 300 and set(pv.threshold) == {"99", "99.5"}


def test_pvalues__scores_from_other_mas_exit_1(runner, pal_run, tmp_path) -> None:
    tmp, mas = pal_run
    np.save(tmp_path / "mas.npy", mas[::-1] * 1.5)
    result = runner.invoke(load_bin("annpal-pvalues"),
                           ["--mas", str(tmp_path / "mas.npy"), "--null-mas", str(tmp / "null.npy"), "--scores",
                            str(tmp / "P" / "scores.tsv"), "--draws", "2", "--out-dir", str(tmp_path / "V")])
    assert result.exit_code == 1 and "mas_mean" in one_error_line(result)
    assert not (tmp_path / "V").exists()


def test_pvalues__bad_scores_file_exit_1(runner, pal_run, tmp_path) -> None:
    tmp, _ = pal_run
    (tmp_path / "scores.tsv").write_text("index\tSNP\n0\trs1\n")
    result = runner.invoke(load_bin("annpal-pvalues"),
                           ["--mas", str(tmp / "mas.npy"), "--null-mas", str(tmp / "null.npy"), "--scores",
                            str(tmp_path / "scores.tsv"), "--out-dir", str(tmp_path / "V")])
    assert result.exit_code == 1 and "missing columns" in one_error_line(result)


def test_pvalues__heavy_tailed_null_warns(runner, pal_run, tmp_path) -> None:
    tmp, _ = pal_run
    np.save(tmp_path / "null.npy", np.random.default_rng(0).lognormal(0, 1.2, (4, 300)) * 1e-3)
    result = runner.invoke(load_bin("annpal-pvalues"),
                           ["--mas", str(tmp / "mas.npy"), "--null-mas", str(tmp_path / "null.npy"), "--scores",
                            str(tmp / "P" / "scores.tsv"), "--draws", "2", "--out-dir", str(tmp_path / "V")])
    assert result.exit_code == 0
    assert "[WARNING]" in result.stderr and "not be calibrated" in result.stderr
    info = json.loads((tmp_path / "V" / "null_fit.json").read_text())
    assert info["warning"] and info["best"] != "halfnorm"


@pytest.mark.parametrize(("option", "value"), [("--draws", "0"), ("--tail-fraction", "1.5")])
def test_pvalues__bad_options_exit_2(runner, pal_run, option: str, value: str) -> None:
    tmp, _ = pal_run
    result = run_pvalues(runner, tmp, "Vbad", option, value)
    assert result.exit_code == 2 and option in result.output + result.stderr


# -- annpal-pvalues: null pool, half-normal loc, exact recounts (issue 16) --------------------------

def write_null_dir(folder: Path, null: np.ndarray, *, seeds: list[int], degenerate: list[int]) -> Path:
    """annpal-merge-mas over one ATTRIBUTE-like folder per null row: mas_matrix.npy and models.tsv."""
    inputs = []
    for row, seed, dead in zip(null, seeds, degenerate, strict=True):
        attr = write_attr(folder.parent / f"{folder.name}_in" / f"ig_null_s{seed}", seed=seed, mas=row, kind="null")
        (attr / "attr.json").write_text(json.dumps({"method": "ig", "kind": "null", "seed": seed,
                                                    "degenerate": bool(dead)}))
        inputs.append(str(attr))
    result = CliRunner().invoke(load_bin("annpal-merge-mas"), ["--method", "ig", "--kind", "null", "--out-dir",
                                                               str(folder), *inputs])
    assert result.exit_code == 0, result.stderr
    return folder / "mas_matrix.npy"


def test_pvalues__planted_degenerate_null_model_left_out(runner, pal_run, tmp_path) -> None:
    tmp, _ = pal_run
    null = np.load(tmp / "null.npy")
    planted = np.insert(null, 1, np.full(300, 1 / 300), axis=0)  # a dead null network, seed 200002
    seeds = [200001, 200002, 200003, 200004]
    with_dead = write_null_dir(tmp_path / "N", planted, seeds=seeds, degenerate=[0, 1, 0, 0])
    without = write_null_dir(tmp_path / "N0", null, seeds=[200001, 200003, 200004], degenerate=[0, 0, 0])
    scores = str(tmp / "P" / "scores.tsv")
    for null_path, out in ((without, "V0"), (with_dead, "V")):
        result = runner.invoke(load_bin("annpal-pvalues"), ["--mas", str(tmp / "mas.npy"), "--null-mas",
                               str(null_path), "--scores", scores, "--draws", "4", "--out-dir", str(tmp_path / out)])
        assert result.exit_code == 0, result.stderr
    assert "null model(s) with seed 200002 are degenerate" in result.stderr and "left out" in result.stderr
    info = json.loads((tmp_path / "V" / "null_fit.json").read_text())
    assert info["n_null_models"] == 4 and info["n_null_models_used"] == 3
    assert info["degenerate_null_models"] == [{"row": 1, "seed": 200002}]
    assert info["sigma"] == pytest.approx(np.sqrt(np.mean(null**2)), rel=1e-12)  # from the other three
    # P-values computed from the others: identical to a run without the dead model.
    assert (tmp_path / "V" / "pvalues.tsv").read_text() == (tmp_path / "V0" / "pvalues.tsv").read_text()
    # Without models.tsv the flat row is still recognised.
    np.save(tmp_path / "planted.npy", planted)
    result = runner.invoke(load_bin("annpal-pvalues"), ["--mas", str(tmp / "mas.npy"), "--null-mas",
                           str(tmp_path / "planted.npy"), "--scores", scores, "--draws", "4",
                           "--out-dir", str(tmp_path / "V1")])
    assert result.exit_code == 0 and "left out of the null pool" in result.stderr
    assert json.loads((tmp_path / "V1" / "null_fit.json").read_text())["degenerate_null_models"] == [
        {"row": 1, "seed": None}]


def test_pvalues__mostly_degenerate_null_models_stop(runner, pal_run, tmp_path) -> None:
    tmp, _ = pal_run
    null = np.load(tmp / "null.npy")
    null[[0, 2]] = 1 / 300
    path = write_null_dir(tmp_path / "N", null, seeds=[200001, 200002, 200003], degenerate=[1, 0, 1])
    result = runner.invoke(load_bin("annpal-pvalues"), ["--mas", str(tmp / "mas.npy"), "--null-mas", str(path),
                           "--scores", str(tmp / "P" / "scores.tsv"), "--out-dir", str(tmp_path / "V")])
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "2 of 3 null models are degenerate" in line and "more than half" in line and "retrain" in line
    assert not (tmp_path / "V").exists()


def test_pvalues__halfnorm_loc_free_is_the_authors_fit(runner, pal_run) -> None:
    from scipy import stats

    tmp, _ = pal_run
    null = np.load(tmp / "null.npy")
    loc, scale = stats.halfnorm.fit(null.flatten())  # 7_get_amas_pvals.py
    for choice in ("zero", "free"):
        result = run_pvalues(runner, tmp, f"H{choice}", "--halfnorm-loc", choice)
        assert result.exit_code == 0, result.stderr
        info = json.loads((tmp / f"H{choice}" / "null_fit.json").read_text())
        assert info["halfnorm_loc"] == choice
        assert info["sigma_free"] == pytest.approx(scale, rel=1e-12) and info["loc_free"] == loc
        assert info["sigma_zero"] == pytest.approx(np.sqrt(np.mean(null**2)), rel=1e-12)
        assert info["sigma"] == info[f"sigma_{choice}"]
    result = run_pvalues(runner, tmp, "Hbad", "--halfnorm-loc", "min")
    assert result.exit_code == 2 and "--halfnorm-loc" in result.output + result.stderr


@pytest.fixture(scope="module")
def tie_run(tiny_prepared, tmp_path_factory):
    """PAL called on a MAS matrix whose row 0 has a three-way tie at its top (θ = 99.5 cuts into it)."""
    tmp = tmp_path_factory.mktemp("tie")
    mas = mas_rows(4, 300, seed=1)
    top = np.argsort(-mas[0])[:3]
    mas[0, top] = mas[0, top[0]]
    np.save(tmp / "mas.npy", mas)
    np.save(tmp / "null.npy", np.abs(np.random.default_rng(2).standard_normal((3, 300))) / 300)
    result = CliRunner().invoke(load_bin("annpal-call-pal"),
                                ["--dataset", str(tiny_prepared), "--mas", str(tmp / "mas.npy"), "--method", "ig",
                                 "--thresholds", "99.5,99", "--out-dir", str(tmp / "P")])
    assert result.exit_code == 0, result.stderr
    return tmp, mas


def test_pvalues__dataset_recounts_tied_draws_exactly(runner, tie_run, tiny_prepared) -> None:
    from annpal.ld import banded_abs_r
    from annpal.null import amas_pvalues
    from annpal.pal import ld_counts, parse_thresholds

    tmp, mas = tie_run
    assert json.loads((tmp / "P" / "pal.json").read_text())["thresholds"]["99.5"]["n_detected_per_model"][0] == 0
    flagged = run_pvalues(runner, tmp, "V", "--all-snps")
    exact = run_pvalues(runner, tmp, "VD", "--all-snps", "--dataset", str(tiny_prepared))
    assert flagged.exit_code == 0 and exact.exit_code == 0, exact.stderr
    without = json.loads((tmp / "V" / "null_fit.json").read_text())
    info = json.loads((tmp / "VD" / "null_fit.json").read_text())
    assert without["thresholds"]["99.5"]["n_inexact_draws"] == 5 and "--dataset" in flagged.stderr
    assert {t: v["n_inexact_draws"] for t, v in info["thresholds"].items()} == {"99.5": 0, "99": 0}
    assert info["recount"]["dataset"] == str(tiny_prepared) and info["recount"]["band_rows_computed"] > 0
    # Reference: every draw recounted through the full float64 band of the dataset.
    ds = load_prepared(tiny_prepared)
    band = banded_abs_r(np.asarray(ds.genotypes), chromosomes=ds.chromosomes, window=20)
    scores = pd.read_csv(tmp / "P" / "scores.tsv", sep="\t")
    thresholds = parse_thresholds("99.5,99")
    expected = amas_pvalues(mas, thresholds=thresholds, counts=[scores[f"count_{t}"].to_numpy() for t, _ in thresholds],
                            sigma=info["sigma"], n_draws=5, seed=1, all_snps=True,
                            recount=lambda det: ld_counts(det, band=band, ld_r=0.5))
    pv = pd.read_csv(tmp / "VD" / "pvalues.tsv", sep="\t", dtype={"threshold": str})
    for r in expected:
        got = pv[pv.threshold == r.label].sort_values("index")
        np.testing.assert_allclose(got.p_value.to_numpy(), r.p_value, rtol=1e-9, atol=0)
    assert not np.array_equal(pd.read_csv(tmp / "V" / "pvalues.tsv", sep="\t").sort_values(["threshold", "index"])
                              .p_value.to_numpy(), pv.sort_values(["threshold", "index"]).p_value.to_numpy())


def test_pvalues__dataset_with_other_ld_settings_exit_1(runner, tie_run, tiny_prepared) -> None:
    tmp, _ = tie_run
    result = run_pvalues(runner, tmp, "Vld", "--dataset", str(tiny_prepared), "--ld-r", "0.3")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "pal.json" in line and "--ld-r 0.5" in line and "give annpal-pvalues the same" in line
    assert not (tmp / "Vld").exists()
