#!/usr/bin/env python3
"""Study: does PAL pick ancestry-informative SNPs on a stratified cohort, and does ``--nn-covariates pcs``
stop it? (issue 18 item 3; the result is in docs/covariates.md).

Cohort: ``annpal-testdata --split-generations T``: two msprime populations A and B (Ne 10 000 each, split
T generations ago, no migration), N samples half from each, three 5 Mb chromosomes thinned to about
300 SNPs/Mb. Trait: pure stratification, no causal SNP at all: a seeded draw of exactly
``rate_A · N/2`` cases among A and ``rate_B · N/2`` among B (:func:`annpal.stratification.stratified_status`).
Every SNP the networks call is therefore a false positive, and the question is whether the false
positives are the ancestry-informative SNPs (high Hudson F_ST, :func:`annpal.stratification.hudson_fst`).

Steps, single-threaded: the pipeline's bins annpal-prepare, annpal-pca (once) and annpal-gwas without and
with the PCs (the comparator, for reference); then for ``--nn-covariates none`` and ``pcs`` the same K real
and K null models (seeds and permutation seeds as the pipeline numbers them) trained and IG-attributed in
this process with the library calls annpal-train and annpal-attribute make (one process instead of 4K
interpreter starts: the study has to run niced on a shared machine), each model's MAS written as an
ATTRIBUTE folder; then the bins annpal-merge-mas, annpal-call-pal and annpal-pvalues. Finished models are
kept, so an interrupted study resumes. The training recipe is ``-profile test``'s small-panel one (H1 64,
H2 16, input dropout 0.5, 40 epochs, batch 64, ``--lr auto``, ``--balance auto``, ``--keep best_val_loss``).

Reported per mode: validation AUC of the real models; the correlation over all SNPs between the mean MAS
and F_ST; the F_ST (median, percentile within the genome-wide F_ST distribution, share in its top 10 % and
1 %) of the 20 and 100 SNPs of highest mean MAS, of each model's detected SNPs (top θ), of the PAL and
PAL-common SNPs per θ, and of the SNPs whose AMAS P-value (every SNP, ``--all-snps``, 100 null draws)
is below 0.05; for LR: λGC and hits at P < 1e-4 and 5e-8 with and without PCs.
Writes ``benchmarks/results/covariates_stratified.json``.

Usage (about 15 minutes on one shared core with the defaults)::

    nice -n 15 .venv/bin/python benchmarks/study_covariates.py --work /tmp/annpal-strat
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats

from annpal import results
from annpal.attribution import attribution_rows, mas_for_model
from annpal.collapse import auto_learning_rate
from annpal.covariates import nn_covariates
from annpal.model import ModelConfig
from annpal.prepared import load_prepared
from annpal.provenance import versions
from annpal.stratification import hudson_fst, stratified_status
from annpal.train import TrainConfig, train_model

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / "bin"
OUT = ROOT / "benchmarks" / "results" / "covariates_stratified.json"
#: -profile test's small-panel recipe (conf/test.config), as annpal-train builds it.
RECIPE = {"epochs": 40, "batch_size": 64, "balance": "auto", "keep": "best_val_loss", "device": "cpu", "threads": 1}
ARCHITECTURE = {"h1": 64, "h2": 16, "input_dropout": 0.5}
IG_STEPS = 16
#: The pipeline's null-model seed offsets (subworkflows/local/train_and_attribute.nf).
NULL_PERMUTE_SEED_OFFSET, NULL_MODEL_SEED_OFFSET = 100000, 200000
MODES = ("none", "pcs")

log = logging.getLogger("study_covariates")


def run(*args: object) -> None:
    """One bin, as the pipeline runs it; stop the study on failure."""
    cmd = [sys.executable, str(BIN / str(args[0])), *map(str, args[1:])]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")


def make_cohort(work: Path, a: argparse.Namespace) -> tuple[Path, np.ndarray]:
    """Genotypes with two populations, the stratified status, the prepared dataset; population per row."""
    prefix = work / "strat"
    prepared = work / "prepared"
    if not (prepared / results.QC.filename).is_file():
        _write_cohort(work, prefix, prepared, a)
    pops = results.read(results.POPULATIONS, f"{prefix}.populations.tsv")
    population = (pops["population"] == "B").to_numpy().astype(np.int8)
    ds = load_prepared(prepared)
    by_id = dict(zip(pops["FID"] + "\0" + pops["IID"], population, strict=True))
    return prepared, np.array([by_id[k] for k in ds.samples["FID"] + "\0" + ds.samples["IID"]], dtype=np.int8)


def _write_cohort(work: Path, prefix: Path, prepared: Path, a: argparse.Namespace) -> None:
    run("annpal-testdata", "--out", prefix, "--n-samples", a.n_samples, "--n-chromosomes", 3,
        "--chrom-length-mb", 5, "--seed", a.seed, "--split-generations", a.split_generations)
    pops = results.read(results.POPULATIONS, f"{prefix}.populations.tsv")
    population = (pops["population"] == "B").to_numpy().astype(np.int8)
    status = stratified_status(population, case_rate=(a.rate_a, a.rate_b), seed=a.seed)
    pd.DataFrame({"FID": pops["FID"], "IID": pops["IID"], "status": status}).to_csv(
        work / "pheno.tsv", sep="\t", index=False)
    run("annpal-prepare", "--bfile", prefix, "--pheno", work / "pheno.tsv", "--trait-type", "binary",
        "--val-cases", 60, "--val-controls", 60, "--split-seed", 1, "--threads", 1, "--out-dir", prepared)


def train_and_attribute(ds, out: Path, *, mode: str, pcs: Path, kind: str, n: int) -> None:
    """One model as annpal-train + annpal-attribute --method ig make it; its ATTRIBUTE folder in ``out``."""
    if (out / results.MAS.filename).is_file():
        return
    null = kind == "null"
    seed = NULL_MODEL_SEED_OFFSET + n if null else n
    covariates, names = nn_covariates(mode, ds.samples, pcs=pcs if mode == "pcs" else None)
    config = ModelConfig(n_snps=ds.n_snps, covariates=tuple(names), **ARCHITECTURE)
    recipe = TrainConfig(lr=auto_learning_rate(ds.n_snps, input_dropout=ARCHITECTURE["input_dropout"]), **RECIPE)
    result = train_model(ds, seed=seed, null=null, permute_seed=NULL_PERMUTE_SEED_OFFSET + n if null else None,
                         model_config=config, train_config=recipe, covariates=covariates)
    rows, _ = attribution_rows(ds.labels, result.meta)
    mas = mas_for_model(result.model, ds.genotypes, rows=rows, method="ig", n_steps=IG_STEPS, covariates=covariates)
    kept = result.history.iloc[result.meta["kept_epoch"] - 1]
    out.mkdir(parents=True, exist_ok=True)
    results.write(results.ATTR, out, {"method": "ig", "kind": kind, "seed": seed, "degenerate": mas.degenerate,
                                      "collapsed": result.meta["collapsed"], "val_auc": float(kept["val_auc"]),
                                      "collapse_epoch": result.meta["collapse_epoch"], "covariates": names})
    results.write(results.MAS, out, mas.mas)  # last: its presence marks the model done
    log.info("%s %s %d: kept epoch %d, val AUC %.3f", mode, kind, n, result.meta["kept_epoch"], kept["val_auc"])


def networks(work: Path, prepared: Path, pcs: Path, a: argparse.Namespace) -> None:
    """K real and K null models per mode (interleaved, real first), IG MAS, merges, PAL and P-values."""
    ds = load_prepared(prepared, mmap=False)
    counts = {"real": a.models, "null": a.null_models}
    for kind in ("real", "null"):
        for n in range(1, counts[kind] + 1):
            for mode in MODES:
                train_and_attribute(ds, work / mode / "attribution" / f"ig_{kind}_s{n}", mode=mode, pcs=pcs,
                                    kind=kind, n=n)
    for mode in MODES:
        root = work / mode
        for kind in ("real", "null"):
            run("annpal-merge-mas", "--method", "ig", "--kind", kind, "--out-dir", root / "mas" / f"ig_{kind}",
                *(root / "attribution" / f"ig_{kind}_s{n}" for n in range(1, counts[kind] + 1)))
        pal_and_pvalues(root, prepared, a)


def pal_and_pvalues(root: Path, prepared: Path, a: argparse.Namespace) -> None:
    """annpal-call-pal and annpal-pvalues on one mode's MAS matrices."""
    run("annpal-call-pal", "--dataset", prepared, "--mas", root / "mas" / "ig_real" / "mas_matrix.npy",
        "--method", "ig", "--thresholds", a.thresholds, "--out-dir", root / "pal")
    run("annpal-pvalues", "--mas", root / "mas" / "ig_real" / "mas_matrix.npy", "--null-mas",
        root / "mas" / "ig_null" / "mas_matrix.npy", "--scores", root / "pal" / "scores.tsv", "--dataset", prepared,
        "--draws", 100, "--seed", 1, "--all-snps", "--out-dir", root / "pvalues")


def fst_summary(index: np.ndarray, fst: np.ndarray) -> dict:
    """F_ST of a SNP set against the genome-wide distribution."""
    ok = np.isfinite(fst)
    values = fst[index][ok[index]]
    if values.size == 0:
        return {"n": 0}
    pct = scipy.stats.percentileofscore(fst[ok], values, kind="weak")
    return {"n": int(values.size), "fst_median": float(np.median(values)),
            "fst_percentile_median": float(np.median(pct)), "fst_percentile_min": float(pct.min()),
            "share_top10pct_fst": float(np.mean(pct > 90)), "share_top1pct_fst": float(np.mean(pct > 99))}


def _kept_auc(root: Path, attr_dir: Path) -> float:
    """The kept epoch's validation AUC: in attr.json, or in train.json for models made with the bins."""
    record = results.read(results.ATTR, attr_dir / "attr.json")
    if "val_auc" in record:
        return float(record["val_auc"])
    train = root / "train" / attr_dir.name.removeprefix("ig_")
    return float(results.read(results.TRAIN_RECORD, train / "train.json")["kept"]["val_auc"])


def summarise_networks(root: Path, fst: np.ndarray, thresholds: list[str], n_models: int) -> dict:
    """AUCs, PAL per θ with their F_ST, P-value counts, MAS–F_ST correlation of one mode."""
    aucs = [_kept_auc(root, root / "attribution" / f"ig_real_s{n}") for n in range(1, n_models + 1)]
    scores = results.read(results.SCORES, root / "pal" / "scores.tsv")
    pvalues = results.read(results.PVALUES, root / "pvalues" / "pvalues.tsv")
    mas = results.read_mas_matrix(root / "mas" / "ig_real" / "mas_matrix.npy")
    ok = np.isfinite(fst)
    top = np.argsort(scores["mas_mean"].to_numpy())[::-1]
    out = {"val_auc_real": aucs, "val_auc_real_median": float(np.median(aucs)),
           "spearman_mas_fst": float(scipy.stats.spearmanr(scores["mas_mean"][ok], fst[ok]).statistic),
           "top20_mean_mas": fst_summary(top[:20], fst), "top100_mean_mas": fst_summary(top[:100], fst), "pal": {}}
    for th in thresholds:
        pal_index = scores["index"][results.as_bool(scores[f"pal_{th}"])].to_numpy()
        detected = np.flatnonzero(mas > np.percentile(mas, float(th), axis=1, keepdims=True)) % mas.shape[1]
        p = pvalues[pvalues["threshold"].astype(str) == th]
        out["pal"][th] = {"pal": fst_summary(pal_index, fst),
                          "pal_common": fst_summary(np.flatnonzero(scores[f"count_{th}"] == n_models), fst),
                          "detected_per_model": fst_summary(detected, fst),
                          "n_p_below_0.05": int((p["p_value"] < 0.05).sum()),
                          "n_p_below_0.001": int((p["p_value"] < 0.001).sum()),
                          "p_below_0.05": fst_summary(p["index"][p["p_value"] < 0.05].to_numpy(), fst)}
    return out


def summarise_gwas(directory: Path, fst: np.ndarray) -> dict:
    table = results.read(results.GWAS, directory / "gwas.tsv")
    record = results.read(results.GWAS_RECORD, directory / "gwas.json")
    p = 10.0 ** -table["neg_log10_p"].to_numpy()
    return {"n_pcs": record["n_pcs"], "lambda_gc": record["lambda_gc"],
            "n_p_below_1e-4": int((p < 1e-4).sum()), "n_p_below_5e-8": int((p < 5e-8).sum()),
            "p_below_1e-4": fst_summary(np.flatnonzero(p < 1e-4), fst)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="Work folder (created).")
    ap.add_argument("--n-samples", type=int, default=1200)
    ap.add_argument("--split-generations", type=float, default=2000.0)
    ap.add_argument("--rate-a", type=float, default=0.65, help="Case rate in population A.")
    ap.add_argument("--rate-b", type=float, default=0.35, help="Case rate in population B.")
    ap.add_argument("--models", type=int, default=3, help="Real models per mode.")
    ap.add_argument("--null-models", type=int, default=3, help="Null models per mode.")
    ap.add_argument("--n-pcs", type=int, default=3)
    ap.add_argument("--thresholds", default="99.9,99")
    ap.add_argument("--seed", type=int, default=7, help="Seed of the cohort and the status draw.")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    a.work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    prepared, population = make_cohort(a.work, a)
    log.info("cohort ready")
    ds = load_prepared(prepared)
    fst, fst_all = hudson_fst(ds.genotypes, population)
    pcs = a.work / "pca" / "pcs.tsv"
    if not (a.work / "gwas_pcs" / "gwas.json").is_file():
        run("annpal-pca", "--dataset", prepared, "--n-pcs", a.n_pcs, "--out-dir", a.work / "pca")
        run("annpal-gwas", "--dataset", prepared, "--n-pcs", 0, "--out-dir", a.work / "gwas_nopcs")
        run("annpal-gwas", "--dataset", prepared, "--pcs", pcs, "--out-dir", a.work / "gwas_pcs")
    pc1 = results.read(results.PCS, pcs)["PC1"].to_numpy()
    summary = {
        "cohort": {"n_samples": ds.n_samples, "n_snps": ds.n_snps, "split_generations": a.split_generations,
                   "case_rate": {"A": a.rate_a, "B": a.rate_b}, "n_cases": int(ds.labels.sum()),
                   "seed": a.seed, "fst_genome_wide": fst_all,
                   "fst_quantiles": {q: float(np.nanquantile(fst, float(q))) for q in ("0.5", "0.9", "0.99")},
                   "pc1_population_r": float(abs(np.corrcoef(pc1, population)[0, 1]))},
        "lr": {"no_pcs": summarise_gwas(a.work / "gwas_nopcs", fst), "pcs": summarise_gwas(a.work / "gwas_pcs", fst)},
        "thresholds": a.thresholds.split(","), "models": a.models, "null_models": a.null_models,
        "recipe": {**RECIPE, **ARCHITECTURE, "lr": "auto", "ig_steps": IG_STEPS},
    }
    networks(a.work, prepared, pcs, a)
    for mode in MODES:
        summary[f"nn_covariates_{mode}"] = summarise_networks(a.work / mode, fst, summary["thresholds"], a.models)
    summary["seconds"] = round(time.time() - t0, 1)
    summary["versions"] = versions()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
