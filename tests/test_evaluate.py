"""Tests for annpal.evaluate and bin/annpal-evaluate (docs/method.md §9), on hand-made blocks."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import load_bin

from annpal import evaluate
from annpal.errors import InputError

# Hand-made layout (window 50 kb, blocks < 100 kb):
#   chr1 detected 100, 50_000, 149_999 → one block (gaps 49_900, 99_999); nearest causal 200_000 is
#        50_001 from 149_999 → FP.
#   chr1 detected 250_000 → gap 100_001 → own block; 50_000 from causal 200_000 (inclusive) → TP.
#   chr2 detected 100 → own block; causal on chr2 at 1_000_000 → FP.
#   causal chr3:5_000 has no detection → missed.
DET_CHR = ["1", "1", "1", "1", "chr2"]
DET_BP = [50_000, 100, 149_999, 250_000, 100]
CAUSAL_CHR = ["chr1", "2", "3"]
CAUSAL_BP = [200_000, 1_000_000, 5_000]


def test_evaluate_detections__hand_made():
    ev = evaluate.evaluate_detections(DET_CHR, DET_BP, CAUSAL_CHR, CAUSAL_BP, window_bp=50_000, block_bp=100_000)
    assert (ev.n_detected, ev.n_blocks, ev.tp, ev.fp) == (5, 3, 1, 2)
    assert ev.precision == pytest.approx(1 / 3)
    assert (ev.n_causal_loci, ev.n_causal_hit) == (3, 1)
    assert ev.recall == pytest.approx(1 / 3)


def test_evaluate_detections__wider_window_changes_counts():
    ev = evaluate.evaluate_detections(DET_CHR, DET_BP, CAUSAL_CHR, CAUSAL_BP, window_bp=60_000, block_bp=100_000)
    assert (ev.tp, ev.fp, ev.n_causal_hit) == (2, 1, 1)


def test_evaluate_detections__one_block_hits_two_loci():
    ev = evaluate.evaluate_detections(["5", "5"], [1_000, 60_000], ["5", "5", "5"], [0, 70_000, 500_000],
                                      window_bp=50_000, block_bp=100_000)
    assert (ev.n_blocks, ev.tp, ev.n_causal_hit, ev.recall) == (1, 1, 2, pytest.approx(2 / 3))


def test_evaluate_detections__nothing_detected_gives_nan_precision():
    ev = evaluate.evaluate_detections([], [], CAUSAL_CHR, CAUSAL_BP)
    assert (ev.n_blocks, ev.tp, ev.fp, ev.recall) == (0, 0, 0, 0.0)
    assert math.isnan(ev.precision)


def _truth(path):
    pd.DataFrame({"SNP": ["rs1", "rs2", "rs3", "rs2"], "CHR": CAUSAL_CHR + ["2"], "BP": CAUSAL_BP + [1_000_000],
                  "role": ["dominant", "pair", "recessive", "pair"], "partners": [".", "rs9", ".", "rs8"],
                  "weight": [0.5, -1.0, 0.3, 0.2]}).to_csv(path, sep="\t", index=False)
    return path


def _gwas(path):
    # SNPs 0-4 are the hand-made detections; P decreasing down the table; SNP 5 would be detected
    # but failed (separation); SNP 1 has a P below double precision.
    pd.DataFrame({"index": range(6), "CHR": DET_CHR + ["3"], "BP": DET_BP + [5_000],
                  "SNP": [f"s{i}" for i in range(6)], "A1": "A", "A2": "G", "beta": 0.1, "se": 0.1, "z": 1.0,
                  "p_value": ["1e-2", "0", "1e-5", "1e-7", "1e-4", "NA"],
                  "neg_log10_p": [2.0, 400.0, 5.0, 7.0, 4.0, np.nan], "af": 0.3, "n": 100,
                  "status": ["ok"] * 5 + ["separation"]}).to_csv(path, sep="\t", index=False, na_rep="NA")
    return path


def _pal(path):
    pd.DataFrame({"threshold": ["99.99", "99.99", "99.95", "99.95", "99.95"], "SNP": ["a", "b", "a", "b", "c"],
                  "CHR": ["1", "3", "1", "3", "2"], "BP": [250_000, 5_000, 250_000, 5_000, 100], "index": [0, 1, 0, 1, 2],
                  "mas_mean": 0.1, "count": 3, "amas": 0.1, "pal_common": [1, 0, 1, 0, 1]}).to_csv(path, sep="\t",
                                                                                              index=False)
    return path


def test_read_truth__one_locus_per_causal_snp(tmp_path):
    truth = evaluate.read_truth(_truth(tmp_path / "truth.tsv"))
    assert truth["SNP"].tolist() == ["rs1", "rs2", "rs3"]
    assert truth["CHR"].tolist() == ["1", "2", "3"]


def test_read_truth__missing_column_is_input_error(tmp_path):
    path = tmp_path / "truth.tsv"
    path.write_text("SNP\tCHR\nrs1\t1\n")
    with pytest.raises(InputError, match="truth.tsv: missing columns"):
        evaluate.read_truth(path)


def test_evaluate_gwas__thresholds_and_status(tmp_path):
    truth = evaluate.read_truth(_truth(tmp_path / "truth.tsv"))
    rows = evaluate.evaluate_gwas(evaluate.read_gwas(_gwas(tmp_path / "gwas.tsv")), truth,
                                  thresholds=[("1e-3", 1e-3), ("1e-6", 1e-6), ("1e-300", 1e-300)])
    got = {r["p_threshold"]: (r["n_detected"], r["n_blocks"], r["tp"], r["n_causal_hit"]) for r in rows}
    assert all(r["threshold"] is None for r in rows)
    # P ≤ 1e-3: SNPs 1 (chr1:100), 2, 3, 4; without SNP 0 (chr1:50_000) the chr1 gaps are ≥ 100 kb
    # → four blocks, only chr1:250_000 a TP
    assert got["1e-3"] == (4, 4, 1, 1)
    # P ≤ 1e-6: SNP 1 (P ~ 1e-400) and SNP 3 → blocks {chr1:100}, {chr1:250_000}
    assert got["1e-6"] == (2, 2, 1, 1)
    assert got["1e-300"] == (1, 1, 0, 0)
    assert all(r["method"] == "lr" for r in rows)


def test_evaluate_pal__every_threshold_gets_a_row(tmp_path):
    truth = evaluate.read_truth(_truth(tmp_path / "truth.tsv"))
    rows = evaluate.evaluate_pal(evaluate.read_pal(_pal(tmp_path / "pal.tsv")), truth, method="ig",
                                 thresholds=["99.99", "99.95", "99.9"], common=True)
    got = {(r["method"], r["threshold"]): (r["n_detected"], r["n_blocks"], r["tp"], r["n_causal_hit"]) for r in rows}
    assert all(r["p_threshold"] is None for r in rows)
    assert got[("ig", "99.99")] == (2, 2, 2, 2)
    assert got[("ig", "99.95")] == (3, 3, 2, 2)
    assert got[("ig", "99.9")] == (0, 0, 0, 0)
    assert got[("ig-common", "99.95")] == (2, 2, 1, 1)
    assert [r["method"] for r in rows] == ["ig"] * 3 + ["ig-common"] * 3


# AMAS P-values of the hand-made PAL (_pal): bound 1e-6 (B·M = 1e6); P = 0 means "P < 1e-6".
#   99.99: a (idx 0, chr1:250_000, TP) P < 1e-6; b (idx 1, chr3:5_000, TP) P = 2e-4
#   99.95: a P < 1e-6; b P = 5e-6; c (idx 2, chr2:100, FP) P = 1e-3
def _pvalues(path, *, drop_c=False):
    table = pd.DataFrame({"threshold": ["99.99", "99.99", "99.95", "99.95", "99.95"], "index": [0, 1, 0, 1, 2],
                          "SNP": ["a", "b", "a", "b", "c"], "CHR": ["1", "3", "1", "3", "2"],
                          "BP": [250_000, 5_000, 250_000, 5_000, 100], "amas": 0.1,
                          "p_value": [0, 2e-4, 0, 5e-6, 1e-3], "p_bound": 1e-6,
                          "p_text": ["< 1e-06", "0.0002", "< 1e-06", "5e-06", "0.001"]})
    if drop_c:
        table = table[table["SNP"] != "c"]
    path.mkdir(parents=True, exist_ok=True)
    table.to_csv(path / "pvalues.tsv", sep="\t", index=False)
    return path


P_LEVELS = [("1e-3", 1e-3), ("1e-5", 1e-5), ("1e-6", 1e-6), ("1.7e-7", 1.7e-7)]


@pytest.mark.parametrize(("p", "bound", "t", "expected"), [
    (2e-4, 1e-6, 1e-3, True), (2e-4, 1e-6, 2e-4, True), (2e-4, 1e-6, 1e-4, False),
    (0.0, 1e-6, 1e-5, True),   # P < 1e-6 ≤ 1e-5
    (0.0, 1e-6, 1e-6, True),   # P < 1e-6 = t
    (0.0, 1e-6, 1.7e-7, False),  # P < 1e-6 says nothing about P ≤ 1.7e-7
    (np.nan, np.nan, 1e-3, False),  # no P-value: never detected
])
def test_p_at_most__bound_cases(p, bound, t, expected):
    assert evaluate.p_at_most(np.array([p]), np.array([bound]), t).tolist() == [expected]


def test_evaluate_pal__p_threshold_rows_hand_made(tmp_path):
    truth = evaluate.read_truth(_truth(tmp_path / "truth.tsv"))
    pvalues = evaluate.read_pvalues(_pvalues(tmp_path / "ig") / "pvalues.tsv")
    rows = evaluate.evaluate_pal(evaluate.read_pal(_pal(tmp_path / "pal.tsv")), truth, method="ig",
                                 thresholds=["99.99", "99.95"], pvalues=pvalues, p_thresholds=P_LEVELS)
    got = {(r["threshold"], r["p_threshold"]): (r["n_detected"], r["n_blocks"], r["tp"], r["fp"], r["n_causal_hit"])
           for r in rows}
    assert len(rows) == 2 * 5
    assert got[("99.99", None)] == (2, 2, 2, 0, 2)  # unthresholded rows kept
    assert got[("99.99", "1e-3")] == (2, 2, 2, 0, 2)
    assert got[("99.99", "1e-5")] == (1, 1, 1, 0, 1)  # a (P < 1e-6) only
    assert got[("99.99", "1e-6")] == (1, 1, 1, 0, 1)  # bound = t still passes
    assert got[("99.99", "1.7e-7")] == (0, 0, 0, 0, 0)  # below the bound nothing passes
    assert got[("99.95", None)] == (3, 3, 2, 1, 2)
    assert got[("99.95", "1e-3")] == (3, 3, 2, 1, 2)  # c (P = 1e-3 ≤ 1e-3) is the FP block
    assert got[("99.95", "1e-5")] == (2, 2, 2, 0, 2)
    assert got[("99.95", "1e-6")] == (1, 1, 1, 0, 1)
    assert got[("99.95", "1.7e-7")] == (0, 0, 0, 0, 0)


def test_evaluate_pal__pal_snp_without_p_value_never_passes(tmp_path):
    truth = evaluate.read_truth(_truth(tmp_path / "truth.tsv"))
    pvalues = evaluate.read_pvalues(_pvalues(tmp_path / "ig", drop_c=True) / "pvalues.tsv")
    rows = evaluate.evaluate_pal(evaluate.read_pal(_pal(tmp_path / "pal.tsv")), truth, method="ig",
                                 pvalues=pvalues, p_thresholds=[("1e-3", 1e-3)])
    got = {(r["threshold"], r["p_threshold"]): r["n_detected"] for r in rows}
    assert got[("99.95", None)] == 3 and got[("99.95", "1e-3")] == 2


def test_read_pvalues__non_numeric_p_is_input_error(tmp_path):
    path = tmp_path / "pvalues.tsv"
    path.write_text("threshold\tindex\tp_value\tp_bound\n99.99\t0\t< 1e-6\t1e-6\n")
    with pytest.raises(InputError, match="pvalues.tsv: column 'p_value'"):
        evaluate.read_pvalues(path)


# ----------------------------------------------------------------------------------------------
# bin/annpal-evaluate


def _run(args):
    return CliRunner().invoke(load_bin("annpal-evaluate"), [str(a) for a in args])


def test_main__writes_evaluation(tiny_prepared, tmp_path):
    out = tmp_path / "e"
    result = _run(["--truth", _truth(tmp_path / "truth.tsv"), "--dataset", tiny_prepared,
                   "--pal", _pal(tmp_path / "pal.tsv"), "--pal-label", "ig", "--gwas", _gwas(tmp_path / "gwas.tsv"),
                   "--p-thresholds", "1e-3,1e-9", "--out-dir", out, "--versions", tmp_path / "v.yml"])
    assert result.exit_code == 0, result.output
    text = (out / "evaluation.tsv").read_text().splitlines()
    assert text[0].split("\t") == ["method", "threshold", "p_threshold", "n_detected", "n_blocks", "tp", "fp",
                                   "precision", "recall", "n_causal_loci"]
    assert text[1:] == ["ig\t99.99\tNA\t2\t2\t2\t0\t1\t0.666667\t3",
                        "ig\t99.95\tNA\t3\t3\t2\t1\t0.666667\t0.666667\t3",
                        "lr\tNA\t1e-3\t4\t4\t1\t3\t0.25\t0.333333\t3",
                        "lr\tNA\t1e-9\t1\t1\t0\t1\t0\t0\t3"]
    summary = json.loads((out / "evaluation.json").read_text())
    assert summary["n_causal_loci"] == 3 and summary["window_kb"] == 50
    assert (tmp_path / "v.yml").read_text().startswith('"EVALUATE":')


def test_main__no_blocks_writes_na(tiny_prepared, tmp_path):
    out = tmp_path / "e"
    result = _run(["--truth", _truth(tmp_path / "truth.tsv"), "--dataset", tiny_prepared,
                   "--gwas", _gwas(tmp_path / "gwas.tsv"), "--p-thresholds", "1e-500", "--out-dir", out])
    assert result.exit_code == 2  # 1e-500 is 0.0 in double precision: rejected
    result = _run(["--truth", _truth(tmp_path / "truth.tsv"), "--dataset", tiny_prepared,
                   "--gwas", _gwas(tmp_path / "gwas.tsv"), "--p-thresholds", "1e-450", "--out-dir", out])
    assert result.exit_code == 2
    pal = tmp_path / "empty.tsv"
    pal.write_text("threshold\tSNP\tCHR\tBP\tindex\tmas_mean\tcount\tamas\tpal_common\n")
    result = _run(["--truth", _truth(tmp_path / "truth.tsv"), "--dataset", tiny_prepared,
                   "--pal", pal, "--pal-label", "sm", "--out-dir", out])
    assert result.exit_code == 0, result.output
    lines = (out / "evaluation.tsv").read_text().splitlines()
    assert lines[1:] == ["sm\t99.99\tNA\t0\t0\t0\t0\tNA\t0\t3", "sm\t99.95\tNA\t0\t0\t0\t0\tNA\t0\t3"]


@pytest.mark.parametrize("args", [
    ["--pal-label", "ig"],  # label without table
    ["--p-thresholds", "0.5,abc"],
    ["--p-thresholds", "2"],
    [],  # nothing to evaluate
])
def test_main__usage_errors_exit_2(tiny_prepared, tmp_path, args):
    result = _run(["--truth", _truth(tmp_path / "truth.tsv"), "--dataset", tiny_prepared, "--out-dir",
                   tmp_path / "e", *args])
    assert result.exit_code == 2


def test_main__bad_truth_is_one_line_error(tiny_prepared, tmp_path):
    truth = tmp_path / "truth.tsv"
    truth.write_text("SNP\tCHR\tBP\nrs1\t1\t100\n")
    result = _run(["--truth", truth, "--dataset", tiny_prepared, "--gwas", _gwas(tmp_path / "gwas.tsv"),
                   "--out-dir", tmp_path / "e"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("[ERROR]")]
    assert len(errors) == 1 and "truth.tsv" in errors[0] and "role" in errors[0]
    assert not (tmp_path / "e").exists()


def test_main__bad_gwas_is_one_line_error(tiny_prepared, tmp_path):
    gwas = tmp_path / "gwas.tsv"
    gwas.write_text("index\tCHR\n0\t1\n")
    result = _run(["--truth", _truth(tmp_path / "truth.tsv"), "--dataset", tiny_prepared, "--gwas", gwas,
                   "--out-dir", tmp_path / "e"])
    assert result.exit_code == 1 and "[ERROR]" in result.output and "neg_log10_p" in result.output


def test_main__pvalues_rows(tiny_prepared, tmp_path):
    out = tmp_path / "e"
    result = _run(["--truth", _truth(tmp_path / "truth.tsv"), "--dataset", tiny_prepared,
                   "--pal", _pal(tmp_path / "pal.tsv"), "--pal-label", "ig", "--pvalues", _pvalues(tmp_path / "ig"),
                   "--gwas", _gwas(tmp_path / "gwas.tsv"), "--p-thresholds", "1e-5,1.7e-7", "--out-dir", out])
    assert result.exit_code == 0, result.output
    lines = (out / "evaluation.tsv").read_text().splitlines()
    assert lines[1:7] == ["ig\t99.99\tNA\t2\t2\t2\t0\t1\t0.666667\t3",
                          "ig\t99.99\t1e-5\t1\t1\t1\t0\t1\t0.333333\t3",
                          "ig\t99.99\t1.7e-7\t0\t0\t0\t0\tNA\t0\t3",
                          "ig\t99.95\tNA\t3\t3\t2\t1\t0.666667\t0.666667\t3",
                          "ig\t99.95\t1e-5\t2\t2\t2\t0\t1\t0.666667\t3",
                          "ig\t99.95\t1.7e-7\t0\t0\t0\t0\tNA\t0\t3"]
    assert [line.split("\t")[:3] for line in lines[7:]] == [["lr", "NA", "1e-5"], ["lr", "NA", "1.7e-7"]]


@pytest.mark.parametrize("folder", ["sm", "ig_pvalues"])
def test_main__pvalues_folder_must_name_a_pal_label(tiny_prepared, tmp_path, folder):
    result = _run(["--truth", _truth(tmp_path / "truth.tsv"), "--dataset", tiny_prepared,
                   "--pal", _pal(tmp_path / "pal.tsv"), "--pal-label", "ig", "--pvalues", _pvalues(tmp_path / folder),
                   "--out-dir", tmp_path / "e"])
    assert result.exit_code == 2 and "--pal-label" in result.output
    assert not (tmp_path / "e").exists()
