"""A small hand-made results layout ``R`` for the annotate and report tests.

Written with the one writer of each artifact (:mod:`annpal.results`), not by the producing steps, so the
tests of ANNOTATE and REPORT do not depend on training anything. Every value the tests check is set here by hand:

* 300 SNPs, 150 per chromosome (1 and 2), at 10 kb spacing (BP = 10 000 · (k + 1)); IDs ``rs<1000+i>``
  except the :data:`NON_RS` indices, which have IDs like ``1:40000_A_G``.
* method ``ig``: PAL at θ 99.99 = {10, 11, 14, 160}; at θ 99.95 additionally {25, 161}. SNP 25 sits
  110 kb from SNP 14, so it starts its own locus; SNP 3 (``NON_RS``) is not PAL.
  P-values (pvalues.tsv): see :data:`IG_P`; SNPs 11 and 14 both have P = 0 (bound 1/(100·300)) and 14
  has the larger AMAS, so 14 leads the first locus.
* method ``sm``: PAL at θ 99.95 = 60 SNPs (indices 100..159, spanning both chromosomes) → two LDtrait
  files (50 + 10); θ 99.99 = {100}. No pvalues folder for sm (leads chosen by AMAS).
* 200 samples with IDs ``IND_00000`` … (underscore: never part of base64, so a test can search the HTML).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from annpal import results as R
from annpal.genome import format_neg_log10_p, format_p

N_SNPS, PER_CHROM, N_SAMPLES = 300, 150, 200
NON_RS = (3, 14, 120)
THRESHOLDS = ("99.99", "99.95")
IG_PAL = {"99.99": [10, 11, 14, 160], "99.95": [10, 11, 14, 25, 160, 161]}
SM_PAL = {"99.99": [100], "99.95": list(range(100, 160))}
P_BOUND = 1.0 / (100 * N_SNPS)
#: (threshold, index) -> AMAS P-value for method ig.
IG_P = {("99.99", 10): 0.01, ("99.99", 11): 0.0, ("99.99", 14): 0.0, ("99.99", 160): 0.002,
        ("99.95", 10): 0.02, ("99.95", 11): 0.0, ("99.95", 14): 0.0, ("99.95", 25): 0.04,
        ("99.95", 160): 0.003, ("99.95", 161): 0.003}
GWAS_MISSING = (5, 200)  # SNPs whose regression did not converge (NaN beta/se/p)


def variants() -> pd.DataFrame:
    idx = np.arange(N_SNPS)
    chrom = np.where(idx < PER_CHROM, "1", "2")
    bp = (idx % PER_CHROM + 1) * 10_000
    snp = [f"{c}:{b}_A_G" if i in NON_RS else f"rs{1000 + i}" for i, c, b in zip(idx, chrom, bp, strict=True)]
    maf = 0.05 + 0.4 * ((idx * 37) % 100) / 100
    return pd.DataFrame({"index": idx, "CHR": chrom, "BP": bp, "SNP": snp, "A1": "A", "A2": "G",
                         "MAF": maf, "MISSING": 0.0})


def sample_ids() -> list[str]:
    return [f"IND_{i:05d}" for i in range(N_SAMPLES)]


def _scores(pal: dict[str, list[int]], seed: int, k: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    v = variants()
    mas = rng.uniform(0.5, 1.5, size=(k, N_SNPS)) / N_SNPS
    hot = sorted({i for ids in pal.values() for i in ids})
    mas[:, hot] *= 6.0
    mas /= mas.sum(axis=1, keepdims=True)
    mean = mas.mean(axis=0)
    df = v[["index", "CHR", "BP", "SNP"]].copy()
    df["mas_mean"] = mean
    for th in THRESHOLDS:
        members = np.zeros(N_SNPS, bool)
        members[pal[th]] = True
        count = np.where(members, k, 0)
        weight = count / k
        df[f"count_{th}"] = count
        df[f"weight_{th}"] = weight
        # PAL AMAS rises with the SNP index (and stays above every non-PAL value), so P-value ties
        # break towards the later SNP: known leads for the tests.
        df[f"amas_{th}"] = np.where(members, 0.05 + 1e-4 * np.arange(N_SNPS), mean)
        df[f"pal_{th}"] = members
        df[f"pal_common_{th}"] = members & (np.arange(N_SNPS) % 2 == 0)
    return df, mas


def build_results(root: Path, *, gwas: bool = True, pvalues: bool = True, evaluation: bool = True,
                  annotate: Path | None = None, poor_null_fit: bool = True) -> Path:
    """Write the results layout under ``root`` and return it.

    Parameters
    ----------
    gwas, pvalues, evaluation
        Include ``gwas/``, ``pvalues/ig/`` and ``evaluation/`` (and ``simulation/``).
    annotate
        Copy this ANNOTATE output folder to ``R/annotate``.
    poor_null_fit
        ig's null_fit.json says gamma fits best and carries a warning.
    """
    root.mkdir(parents=True, exist_ok=True)
    layout = R.Layout(root)
    v = variants()
    label = (np.arange(N_SAMPLES) % 5 < 2).astype(int)  # 80 cases, 120 controls
    split = np.where(np.arange(N_SAMPLES) % 4 == 0, "val", "train")
    _write(layout, R.VARIANTS, v)
    _write(layout, R.SAMPLES, pd.DataFrame({"FID": [f"FAM_{i:05d}" for i in range(N_SAMPLES)], "IID": sample_ids(),
                                            "label": label, "split": split}))
    _write(layout, R.QC, {"n_samples_read": 210, "n_samples_no_phenotype": 10, "n_snps_read": 320,
                          "removed": {"monomorphic": 15, "maf": 5, "missing_rate": 0}, "n_missing_calls": 42})
    if evaluation:
        _write(layout, R.TRUTH, pd.DataFrame({"SNP": ["rs1010", "rs1160"], "CHR": ["1", "2"], "BP": [110_000, 110_000],
                                              "role": ["dominant", "pair"], "partners": ["", "rs1161"],
                                              "weight": [0.8, -1.1]}))
    _write_training(layout)
    _write_pal_and_mas(layout)
    if pvalues:
        _write_pvalues(layout, poor_null_fit=poor_null_fit)
    if gwas:
        _write_gwas(layout, v)
    if evaluation:
        _write_evaluation(layout)
    _write(layout, R.PARAMS, {"n_models": 3, "n_null_models": 2, "methods": "ig,sm", "thresholds": "99.99,99.95",
                              "train": {"epochs": 20, "lr": 1e-5}})
    (root / "pipeline" / "versions.yml").write_text('"TRAIN":\n  annpal: 0.1.0\n  torch: 2.5.0\n"REPORT":\n'
                                                    '  matplotlib: 3.9.0\n')
    if annotate is not None:
        import shutil

        shutil.copytree(annotate, root / "annotate")
    return root


def _write(layout: R.Layout, artifact: R.Artifact, data, **names) -> None:
    path = layout.path(artifact, **names)
    path.parent.mkdir(parents=True, exist_ok=True)
    R.write(artifact, path, data)


def _write_training(layout: R.Layout) -> None:
    for kind, seeds in (("real", (1, 2, 3)), ("null", (101, 102))):
        for s in seeds:
            model = f"{kind}_s{s}"
            epochs = np.arange(1, 21)
            auc = (0.55 if kind == "null" else 0.65 + 0.01 * s) - 0.1 * np.exp(-epochs / 5)
            if kind == "real" and s == 3:
                auc = auc - 0.2  # final AUC < 0.6: the report must warn
            _write(layout, R.HISTORY, pd.DataFrame({"epoch": epochs, "train_loss": 0.7 * np.exp(-epochs / 30),
                                                    "val_loss": 0.7 - 0.002 * epochs, "val_auc": auc, "val_r2": np.nan,
                                                    "val_output_sd": 0.1, "val_dead_fraction": 0.0, "seconds": 0.1}),
                   model=model)
            _write(layout, R.TRAIN_RECORD, {"kind": kind, "seed": s, "hidden_sizes": [3, 1], "device": "cpu"},
                   model=model)


def _write_pal_and_mas(layout: R.Layout) -> None:
    for method, pal, seed in (("ig", IG_PAL, 1), ("sm", SM_PAL, 2)):
        scores, mas = _scores(pal, seed)
        _write(layout, R.SCORES, scores, method=method)
        rows = []
        for th in THRESHOLDS:
            for i in pal[th]:
                rows.append({"threshold": th, "SNP": scores["SNP"][i], "CHR": scores["CHR"][i], "BP": scores["BP"][i],
                             "index": i, "mas_mean": scores["mas_mean"][i], "count": scores[f"count_{th}"][i],
                             "amas": scores[f"amas_{th}"][i], "pal_common": scores[f"pal_common_{th}"][i]})
        _write(layout, R.PAL, pd.DataFrame(rows), method=method)
        _write(layout, R.PAL_RECORD, {"method": method, "thresholds": list(THRESHOLDS)}, method=method)
        for kind, k in (("real", 3), ("null", 2)):
            if kind == "real":
                matrix = mas
            else:
                matrix = np.abs(np.random.default_rng(seed + 10).normal(0, 1.0 / N_SNPS, size=(k, N_SNPS)))
            _write(layout, R.MAS_MATRIX, matrix, method=method, kind=kind)
            _write(layout, R.MODELS, pd.DataFrame({
                "row": range(k), "seed": (1, 2, 3)[:k] if kind == "real" else (101, 102), "kind": kind,
                "method": method, "degenerate": False, "collapsed": False, "collapse_epoch": np.nan,
                "collapsed_models": "exclude"}), method=method, kind=kind)


def _write_pvalues(layout: R.Layout, *, poor_null_fit: bool) -> None:
    scores = R.read(R.SCORES, layout.path(R.SCORES, method="ig"))
    rows = []
    for (th, i), p in IG_P.items():
        rows.append({"threshold": th, "index": i, "SNP": scores["SNP"][i], "CHR": scores["CHR"][i],
                     "BP": scores["BP"][i], "amas": scores[f"amas_{th}"][i], "p_value": p, "p_bound": P_BOUND,
                     "p_text": format_p(p, bound=P_BOUND)})
    _write(layout, R.PVALUES, pd.DataFrame(rows), method="ig")
    _write(layout, R.NULL_FIT, pd.DataFrame({
        "distribution": ["halfnorm", "gamma"], "params": ["scale=0.0033", "a=1.2"], "loglik": [10.0, 12.0],
        "aic": [-18.0, -20.0], "bic": [-17.0, -18.5], "best": [not poor_null_fit, poor_null_fit]}), method="ig")
    fit = {"sigma": 1.0 / N_SNPS, "best": "gamma" if poor_null_fit else "halfnorm", "tail_fraction": 0.1,
           "warning": ("half-normal is not the best supported distribution for the null tail (gamma); "
                       "P-values are not calibrated") if poor_null_fit else None}
    _write(layout, R.NULL_FIT_RECORD, fit, method="ig")


def _write_gwas(layout: R.Layout, v: pd.DataFrame) -> None:
    from scipy import stats

    rng = np.random.default_rng(7)
    beta = rng.normal(0, 0.1, N_SNPS)
    se = np.full(N_SNPS, 0.1)
    z = beta / se
    p = 2 * stats.norm.sf(np.abs(z))
    status = np.array(["ok"] * N_SNPS, dtype=object)
    for i in GWAS_MISSING:
        beta[i], se[i], z[i], p[i] = np.nan, np.nan, np.nan, np.nan
        status[i] = "separation"
    nlp = -np.log10(p)
    # Written in reverse order: the summary statistics must come out sorted anyway.
    g = pd.DataFrame({"index": v["index"], "CHR": v["CHR"], "BP": v["BP"], "SNP": v["SNP"], "A1": "A", "A2": "G",
                      "beta": beta, "se": se, "z": z, "p_value": [format_neg_log10_p(x) for x in nlp],
                      "neg_log10_p": nlp, "af": 1 - v["MAF"], "n": N_SAMPLES, "status": status}).iloc[::-1]
    _write(layout, R.GWAS, g)
    _write(layout, R.GWAS_RECORD, {"lambda_gc": 1.02, "n_pcs": 3})


def _write_evaluation(layout: R.Layout) -> None:
    # evaluation.tsv as annpal-evaluate writes it: PAL rows without and with a P threshold, LR rows
    _write(layout, R.EVALUATION, pd.DataFrame({
        "method": ["ig", "ig", "ig", "ig", "sm", "lr", "lr"],
        "threshold": ["99.99", "99.95", "99.99", "99.99", "99.95", None, None],
        "p_threshold": [None, None, "1e-3", "1.7e-7", None, "1e-3", "1.7e-7"],
        "n_detected": [4, 6, 4, 1, 60, 30, 0], "n_blocks": [2, 3, 2, 1, 2, 10, 0],
        "tp": [2, 2, 2, 1, 1, 2, 0], "fp": [0, 1, 0, 0, 1, 8, 0],
        "precision": [1.0, 0.667, 1.0, 1.0, 0.5, 0.2, np.nan],
        "recall": [1.0, 1.0, 1.0, 0.5, 0.5, 1.0, 0.0], "n_causal_loci": 2}))


def build_annotated_report(base: Path, *, title: str | None = None) -> tuple[Path, Path]:
    """Run the real ``annpal-annotate`` then ``annpal-report`` on synthetic results under ``base``;
    returns ``(report folder, results layout)``. Shared by the report and browser tests."""
    from click.testing import CliRunner
    from conftest import load_bin

    annotate = base / "N"
    res = CliRunner().invoke(load_bin("annpal-annotate"), ["--results", str(build_results(base / "R0")),
                                                           "--out-dir", str(annotate)])
    assert res.exit_code == 0, res.output
    results = build_results(base / "R", annotate=annotate)
    out = base / "O"
    args = ["--results", str(results), "--out-dir", str(out)] + (["--title", title] if title else [])
    res = CliRunner().invoke(load_bin("annpal-report"), args)
    assert res.exit_code == 0, res.output
    return out, results
