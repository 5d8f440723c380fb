"""annpal.validation and bin/annpal-validation-summary on hand-made results folders, and a miniature of
``make validation`` (scripts/validation.sh with -profile validation at toy sizes) to prove the wiring."""

from __future__ import annotations

import json
import math
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import REPO, load_bin, nextflow_bin, nextflow_env

from annpal import validation

# Null run by hand: M = 1000 SNPs, B = 10 draws -> bound 1/(B·M) = 1e-4. SNP i has AMAS P = i/1000
# (SNP 0: written 0, "P < 1e-4"); the PAL of θ 99.99 are SNPs 0..4.
#   t = 1e-2: SNPs 0..10 -> 11 (M·t = 10)    t = 1e-3: SNPs 0, 1 -> 2 (1)
#   t = 1e-4: SNP 0 (bound = t passes) -> 1  t = 1e-5: below the bound, nothing -> 0 (not in the verdict)
LEVELS = [("1e-2", 1e-2), ("1e-3", 1e-3), ("1e-4", 1e-4), ("1e-5", 1e-5)]
M, BOUND = 1000, 1e-4


def _null_results(root, *, all_snps=True, n_zero=1):
    pdir, paldir, gdir = root / "pvalues" / "ig", root / "pal" / "ig", root / "gwas"
    for d in (pdir, paldir, gdir):
        d.mkdir(parents=True)
    p = np.arange(M) / M
    p[:n_zero] = 0.0
    idx = np.arange(M) if all_snps else np.arange(5)
    pd.DataFrame({"threshold": "99.99", "index": idx, "SNP": [f"rs{i}" for i in idx], "CHR": "1", "BP": idx * 1000,
                  "amas": 1.0 - p[idx], "p_value": p[idx], "p_bound": BOUND, "p_text": "x"}).to_csv(
        pdir / "pvalues.tsv", sep="\t", index=False)
    (pdir / "null_fit.json").write_text(json.dumps({"n_snps": M, "p_bound": BOUND, "sigma": 1.0, "best": "halfnorm",
                                                    "tail_fraction": 0.1}))
    pd.DataFrame({"threshold": "99.99", "SNP": [f"rs{i}" for i in range(5)], "CHR": "1", "BP": np.arange(5) * 1000,
                  "index": range(5), "mas_mean": 0.1, "count": 3, "amas": 0.1, "pal_common": 0}).to_csv(
        paldir / "pal.tsv", sep="\t", index=False)
    # LR: 4 of 200 SNPs at P <= 1e-2 (M·t = 2), one at 1e-4
    nlp = np.r_[[4.0, 2.5, 2.2, 2.0], np.full(196, 0.5)]
    pd.DataFrame({"index": range(200), "CHR": "1", "BP": range(200), "SNP": [f"rs{i}" for i in range(200)],
                  "neg_log10_p": nlp, "status": "ok"}).to_csv(gdir / "gwas.tsv", sep="\t", index=False)
    return root


@pytest.mark.parametrize(("observed", "expected", "verdict"), [
    ([10], [10.0], "calibrated"),
    ([30], [10.0], "anti-conservative"),  # P(X >= 30 | 10) ~ 7e-7
    ([0], [10.0], "conservative"),  # P(X <= 0 | 10) = e^-10
    ([1, 30], [10.0, 10.0], "anti-conservative"),  # any anti-conservative level wins
    ([1], [0.1], "calibrated"),  # P(X >= 1 | 0.1) = 0.095
    ([14, 1], [10.0, 0.1], "calibrated"),  # 0.036 and 0.095: not below 0.05 / 2 levels
])
def test_calibration_verdict__poisson_tails(observed, expected, verdict):
    got, upper, lower = validation.calibration_verdict(observed, expected)
    assert got == verdict
    assert upper[0] == pytest.approx(1 - sum(math.exp(-expected[0]) * expected[0] ** k / math.factorial(k)
                                             for k in range(observed[0])))


def test_null_calibration__hand_made_all_snps(tmp_path):
    table = validation.null_calibration(_null_results(tmp_path), levels=LEVELS)
    row = table.iloc[0].to_dict()
    assert (row["method"], row["threshold"], row["n_snps"], row["n_pal"], row["pal_at_bound"]) == ("ig", "99.99", M, 5, 1)
    assert row["counted_over"] == "all SNPs"
    assert [row[f"n_p_le_{lab}"] for lab, _ in LEVELS] == [11, 2, 1, 0]
    assert [row[f"pal_p_le_{lab}"] for lab, _ in LEVELS] == [5, 2, 1, 0]
    assert [row[f"expected_{lab}"] for lab, _ in LEVELS] == pytest.approx([10, 1, 0.1, 0.01])
    assert row["pal_p_median"] == pytest.approx(2e-3)  # 1e-4 (the bound), 1e-3, 2e-3, 3e-3, 4e-3
    assert row["verdict"] == "calibrated"


def test_null_calibration__too_many_small_p_is_anti_conservative(tmp_path):
    row = validation.null_calibration(_null_results(tmp_path, n_zero=30), levels=LEVELS).iloc[0]
    assert row["n_p_le_1e-3"] == 30 and row["verdict"] == "anti-conservative"


def test_null_calibration__no_pal_still_counts_all_snps(tmp_path):
    root = _null_results(tmp_path)
    pal = root / "pal" / "ig" / "pal.tsv"
    pal.write_text(pal.read_text().splitlines()[0] + "\n")  # header only: no PAL SNP
    row = validation.null_calibration(root, levels=LEVELS).iloc[0]
    assert (row["n_pal"], row["n_p_le_1e-2"], row["pal_p_le_1e-2"]) == (0, 11, 0)
    assert math.isnan(row["pal_p_median"])


def test_null_calibration__pal_only_counts(tmp_path):
    row = validation.null_calibration(_null_results(tmp_path, all_snps=False), levels=LEVELS).iloc[0]
    assert row["counted_over"] == "PAL SNPs"
    assert [row[f"n_p_le_{lab}"] for lab, _ in LEVELS] == [5, 2, 1, 0]


def test_lr_null_counts__hand_made(tmp_path):
    got = validation.lr_null_counts(_null_results(tmp_path), levels=[("1e-2", 1e-2), ("1e-3", 1e-3)])
    # 4 against 2 (P(X >= 4) = 0.14), 1 against 0.2 (P(X >= 1) = 0.18)
    assert (got["n_snps"], got["n_p_le_1e-2"], got["n_p_le_1e-3"]) == (200, 4, 1)
    assert got["expected_1e-2"] == pytest.approx(2.0) and got["verdict"] == "calibrated"
    # one SNP at P <= 1e-4 where 0.02 are expected: P(X >= 1) = 0.0198 < 0.05 / 2 levels
    assert validation.lr_null_counts(tmp_path, levels=[("1e-2", 1e-2), ("1e-4", 1e-4)])["verdict"] == \
        "anti-conservative"


@pytest.mark.parametrize(("text", "seconds"), [("1h 2m 3s", 3723.0), ("850ms", 0.85), ("3.5s", 3.5), ("-", math.nan)])
def test_parse_duration__nextflow_forms(text, seconds):
    got = validation.parse_duration(text)
    assert (math.isnan(got) and math.isnan(seconds)) or got == pytest.approx(seconds)


def _scenario(root, *, precision_ig=1.0):
    (root / "evaluation").mkdir(parents=True)
    pd.DataFrame({"method": ["ig", "ig", "ig", "lr", "lr"], "threshold": ["99.99", "99.99", "99.95", None, None],
                  "p_threshold": [None, "1e-5", "1e-5", "1e-5", "1.7e-7"], "n_detected": [3, 2, 4, 9, 1],
                  "n_blocks": [2, 1, 3, 5, 1], "tp": [1, 1, 1, 2, 0], "fp": [1, 0, 2, 3, 1],
                  "precision": [0.5, precision_ig, 1 / 3, 0.4, 0.0], "recall": [0.01, 0.01, 0.01, 0.02, 0.0],
                  "n_causal_loci": 100}).to_csv(root / "evaluation" / "evaluation.tsv", sep="\t", index=False,
                                                na_rep="NA")
    for model, aucs in (("real_s1", [0.5, 0.7, 0.6]), ("null_s1", [0.5, 0.52, 0.49])):
        (root / "train" / model).mkdir(parents=True)
        pd.DataFrame({"epoch": [1, 2, 3], "train_loss": 0.7, "val_loss": [0.7, 0.6, 0.65], "val_auc": aucs,
                      "seconds": 1.0}).to_csv(root / "train" / model / "history.tsv", sep="\t", index=False)
    (root / "pipeline_info").mkdir()
    pd.DataFrame({"task_id": [1, 2], "process": ["ANNPAL:TRAIN", "ANNPAL:EVALUATE"], "tag": ["real_s1", "x"],
                  "status": "COMPLETED", "submit": ["2026-12-01 01:00:00.000", "2026-12-01 01:00:30.000"],
                  "duration": ["1m", "2m"], "realtime": ["50s", "1m 50s"]}).to_csv(
        root / "pipeline_info" / "execution_trace_2026-12-01_01-00-00.txt", sep="\t", index=False)
    return root


def test_headline_table__lr_first_and_filtered(tmp_path):
    ev = validation.read_evaluation(_scenario(tmp_path / "a"))
    table = validation.headline_table({"lambda1": ev}, p_thresholds=["1e-5"])
    assert table["series"].tolist() == ["LR", "IG_strict", "IG_relaxed"]
    assert table[["n_blocks", "tp", "fp"]].to_numpy().tolist() == [[5, 2, 3], [1, 1, 0], [3, 1, 2]]


def test_training_table_and_trace_times(tmp_path):
    root = _scenario(tmp_path / "a")
    train = validation.training_table(root).set_index("model")
    assert train.loc["real_s1", ["best_val_auc", "best_epoch", "final_val_auc"]].tolist() == [0.7, 2, 0.6]
    assert train.loc["null_s1", "kind"] == "null"
    wall, steps = validation.trace_times(root)
    assert wall == pytest.approx(150.0)  # 01:00:00 -> 01:00:30 + 2 min
    assert steps.set_index("process")["realtime_s"].to_dict() == {"TRAIN": 50.0, "EVALUATE": 110.0}


def test_main__writes_summary(tmp_path):
    _scenario(tmp_path / "a")
    _null_results(tmp_path / "null")
    out = tmp_path / "summary"
    result = CliRunner().invoke(load_bin("annpal-validation-summary"), [
        "--run", f"lambda1={tmp_path / 'a'}", "--null", str(tmp_path / "null"), "--p-thresholds", "1e-5,1.7e-7",
        "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("evaluation.tsv", "headline.tsv", "training.tsv", "timings.tsv", "null_calibration.tsv",
                 "lr_null.json", "fig2_lambda1.png", "null_calibration.png", "summary.md"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.svg"))
    text = (out / "summary.md").read_text()
    assert "| lambda1 | IG_strict | 1e-5 | 1 | 1 | 0 | 1 |" in text and "calibrated" in text


def test_main__bad_run_is_usage_error(tmp_path):
    result = CliRunner().invoke(load_bin("annpal-validation-summary"), [
        "--run", f"x{tmp_path / 'missing'}", "--out-dir", str(tmp_path / "s")])
    assert result.exit_code == 2 and not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------------------------
# make validation in miniature: the same script and profile at toy sizes


@pytest.mark.pipeline
@pytest.mark.skipif(nextflow_bin() is None, reason="Nextflow not installed (make setup)")
def test_validation_script__miniature(tmp_path):
    env = nextflow_env(tmp_path)
    env.update({
        "PATH": f"{os.path.dirname(nextflow_bin())}{os.pathsep}{env['PATH']}",
        "VALIDATION_DIR": str(tmp_path / "v"), "VALIDATION_LAMBDAS": "3", "VALIDATION_NULL": "1",
        "VALIDATION_TESTDATA_ARGS": "--n-samples 400 --n-chromosomes 2 --chrom-length-mb 2 --snps-per-mb 300 --seed 1",
        "VALIDATION_NF_ARGS": f"-c {REPO / 'tests' / 'validation_small.config'}",
        "VALIDATION_SUMMARY": str(tmp_path / "summary"),
    })
    proc = subprocess.run([str(REPO / "scripts" / "validation.sh")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = tmp_path / "summary"
    for name in ("headline.tsv", "fig2_lambda3.png", "null_calibration.tsv", "null_calibration.png", "summary.md",
                 "wall_seconds.tsv"):
        assert (summary / name).is_file(), name
    headline = pd.read_csv(summary / "headline.tsv", sep="\t", dtype={"p_threshold": str})
    assert {"LR", "IG θ=99", "SM θ=98"} <= set(headline["series"])
    assert set(headline["p_threshold"]) == {"1e-3", "1e-4", "1e-5", "1e-6", "1.7e-7"}
    # EVALUATE got the P-values: PAL rows per P threshold, never more SNPs than the PAL as called
    ev = pd.read_csv(tmp_path / "v" / "lambda3" / "evaluation" / "evaluation.tsv", sep="\t",
                     dtype={"threshold": str, "p_threshold": str})
    pal = ev[ev["method"] != "lr"]
    called = pal[pal["p_threshold"].isna()].set_index(["method", "threshold"])["n_detected"]
    assert called.sum() > 0
    for row in pal[pal["p_threshold"].notna()].itertuples():
        assert row.n_detected <= called[(row.method, row.threshold)]
    # the null run: permuted phenotype, P-values of every SNP
    sim = json.loads((tmp_path / "v" / "null" / "simulation" / "simulate.json").read_text())
    assert sim["permuted"] is True
    calibration = pd.read_csv(summary / "null_calibration.tsv", sep="\t")
    assert set(calibration["counted_over"]) == {"all SNPs"}
