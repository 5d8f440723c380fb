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
