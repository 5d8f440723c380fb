#!/usr/bin/env python3
"""Study: when do small-panel networks collapse? A grid over learning rate and input dropout.

Panels are msprime cohorts from ``annpal-testdata`` (3 000 samples, 8 chromosomes, about 5k, 20k and 50k
SNPs), each with a phenotype from ``annpal-simulate`` (100 causal SNPs, λ = 1, prevalence 0.2) and the
default 150 + 150 validation split from ``annpal-prepare``. Every grid point trains one real network per
seed with the small-panel architecture of ``-profile test`` (H1 64, H2 16, hidden dropout 0.6, batch 64,
weight decay 1e-3, label and input noise 0.1). The learning rate is given as a multiple ``c`` of the
paper's step relative to the first layer's initial weight bound: ``lr = c · 1e-5 · √290 522 / √M``, so
``c = 1`` is ``--lr auto``.

Per run it records the best and final validation AUC, the epoch of the best, and whether the final
network is collapsed (validation output SD below ``annpal.collapse.COLLAPSE_SD_TOL``; all first-layer
units dead), with the first epoch from which the validation AUC stayed exactly 0.5 (all scores tied).
Results go to ``benchmarks/results/study_lr_runs.tsv`` (one row per run, appended as runs finish, so an
interrupted study resumes), ``benchmarks/results/study_lr.json`` (the table by grid point) and, with
``--plot``, ``docs/img/training_study.png``.

Usage (about 1.5 CPU-hours with the defaults on one thread)::

    nice .venv/bin/python benchmarks/study_lr.py --work /tmp/annpal-study --threads 1 --plot
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from annpal.collapse import (
    COLLAPSE_SD_TOL,
    PAPER_LR_SQRT_M,
    dead_fraction,
    output_sd,
    score_with_dead_units,
)
from annpal.model import ModelConfig
from annpal.prepared import load_prepared
from annpal.provenance import versions
from annpal.train import TrainConfig, train_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: Panel name → chromosome length in Mb (8 chromosomes at 300 SNPs/Mb after thinning).
PANELS = {"5k": 2.05, "20k": 8.2, "50k": 20.5}
RUN_COLUMNS = ["panel", "n_snps", "lr_scale", "lr", "input_dropout", "seed", "epochs", "best_val_auc",
               "best_epoch", "final_val_auc", "final_val_loss", "collapsed", "auc_half_from_epoch",
               "final_val_sd", "final_dead_fraction", "seconds"]


def make_panel(work: Path, name: str, *, n_samples: int, seed: int) -> Path:
    """Genotypes, phenotype and prepared dataset of one panel (reused when already there)."""
    prefix = work / f"panel_{name}"
    prepared = work / f"prepared_{name}"
    if (prepared / "qc.json").is_file():
        return prepared
    bin_dir = ROOT / "bin"
    run = lambda *args: subprocess.run([sys.executable, *map(str, args)], check=True)  # noqa: E731
    if not prefix.with_suffix(".bed").is_file():
        run(bin_dir / "annpal-testdata", "--out", prefix, "--n-samples", n_samples, "--n-chromosomes", 8,
            "--chrom-length-mb", PANELS[name], "--seed", seed)
    run(bin_dir / "annpal-simulate", "--bfile", prefix, "--out-dir", work / f"sim_{name}", "--n-causal", 100,
        "--noise", 1, "--prevalence", 0.2, "--seed", seed, "--threads", 1)
    run(bin_dir / "annpal-prepare", "--bfile", prefix, "--pheno", work / f"sim_{name}" / "phenotype.tsv",
        "--out-dir", prepared, "--threads", 1)
    return prepared


def auc_half_from(history: pd.DataFrame) -> int | None:
    """First epoch from which the validation AUC stays exactly 0.5 to the end (None if it ends elsewhere)."""
    auc = history["val_auc"].to_numpy()
    if auc.size == 0 or auc[-1] != 0.5:
        return None
    other = np.flatnonzero(auc != 0.5)
    return int(other[-1] + 2) if other.size else 1


def train_one(prepared_dir: Path, *, panel: str, lr_scale: float, input_dropout: float, seed: int,
              epochs: int, threads: int) -> dict:
    """One network of the grid; returns its row of ``study_lr_runs.tsv``."""
    dataset = load_prepared(prepared_dir)
    m = dataset.n_snps
    lr = lr_scale * PAPER_LR_SQRT_M / math.sqrt(m)
    model_config = ModelConfig(n_snps=m, h1=64, h2=16, input_dropout=input_dropout)
    train_config = TrainConfig(epochs=epochs, batch_size=64, lr=lr, device="cpu", threads=threads,
                               checkpoint_every=10_000)
    t0 = time.perf_counter()
    result = train_model(dataset, seed=seed, model_config=model_config, train_config=train_config)
    seconds = time.perf_counter() - t0
    hist = result.history
    x_val = torch.from_numpy(np.ascontiguousarray(dataset.genotypes[dataset.val_mask]))
    with torch.no_grad():
        probs, alive = score_with_dead_units(result.model.eval(), x_val)
    sd = output_sd(probs)
    best = int(hist["val_auc"].to_numpy().argmax())
    return {
        "panel": panel, "n_snps": m, "lr_scale": lr_scale, "lr": lr, "input_dropout": input_dropout,
        "seed": seed, "epochs": epochs, "best_val_auc": float(hist["val_auc"].iloc[best]),
        "best_epoch": int(hist["epoch"].iloc[best]), "final_val_auc": float(hist["val_auc"].iloc[-1]),
        "final_val_loss": float(hist["val_loss"].iloc[-1]), "collapsed": bool(sd < COLLAPSE_SD_TOL),
        "auc_half_from_epoch": auc_half_from(hist), "final_val_sd": sd,
        "final_dead_fraction": dead_fraction(alive), "seconds": seconds,
    }


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per grid point: collapse rate, median best/final AUC, median epochs to the best."""
    grouped = runs.groupby(["panel", "n_snps", "lr_scale", "input_dropout"], sort=False)
    table = grouped.agg(
        lr=("lr", "first"), n_runs=("seed", "size"), n_collapsed=("collapsed", "sum"),
        best_val_auc=("best_val_auc", "median"), final_val_auc=("final_val_auc", "median"),
        best_epoch=("best_epoch", "median"), dead_fraction=("final_dead_fraction", "median"),
    ).reset_index()
    table["collapse_rate"] = table["n_collapsed"] / table["n_runs"]
    return table


def plot(runs: pd.DataFrame, path: Path) -> None:
    """Best (dot) and final (cross) validation AUC of every run against ``lr · M``; collapsed runs ringed.

    One panel per input dropout; colours are the panels (SNP counts).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dropouts = sorted(runs["input_dropout"].unique())
    fig, axes = plt.subplots(1, len(dropouts), figsize=(4.2 * len(dropouts), 3.0), sharey=True, squeeze=False)
    colours = {"5k": "#1b9e77", "20k": "#d95f02", "50k": "#7570b3"}
    for ax, p in zip(axes[0], dropouts, strict=True):
        sub = runs[runs["input_dropout"] == p]
        x_all = sub["lr"] * sub["n_snps"]
        for panel, rows in sub.groupby("panel", sort=False):
            x = rows["lr"] * rows["n_snps"]
            colour = colours.get(panel, "black")
            ax.scatter(x, rows["best_val_auc"], s=22, color=colour, label=f"{panel} best")
            ax.scatter(x, rows["final_val_auc"], s=22, marker="x", color=colour, label=f"{panel} final")
            dead = rows["collapsed"].astype(bool)
            ax.scatter(x[dead], rows["final_val_auc"][dead], s=90, facecolors="none", edgecolors="red", lw=0.8)
        ax.set_xscale("log")
        ax.axhline(0.5, color="grey", lw=0.6)
        ax.axvline(1.0, color="red", lw=0.6, ls=":")
        ax.set_xlim(x_all.min() / 1.6, x_all.max() * 1.6)
        ax.set_title(f"input dropout {p:g}; red ring: collapsed", fontsize=8)
        ax.set_xlabel("lr · M (Adam step × SNPs)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("validation AUC", fontsize=8)
    axes[0][-1].legend(fontsize=6, frameon=False, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="Folder for panels and prepared data.")
    ap.add_argument("--panels", default="5k,20k,50k")
    ap.add_argument("--lr-scale", default="1,3,10", help="Multiples c of the paper's lr·√M.")
    ap.add_argument("--input-dropout", default="0.5,0.9")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--n-samples", type=int, default=3000)
    ap.add_argument("--panel-seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=Path, default=RESULTS / "study_lr_runs.tsv")
    ap.add_argument("--plot", action="store_true", help="Write docs/img/training_study.png.")
    ap.add_argument("--summarise-only", action="store_true",
                    help="Train nothing: summarise (and plot) the runs already in --runs.")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="[%(levelname)s] %(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    floats = lambda text: [float(v) for v in text.split(",")]  # noqa: E731
    done = pd.read_csv(args.runs, sep="\t") if args.runs.is_file() else pd.DataFrame(columns=RUN_COLUMNS)
    key = lambda r: (r["panel"], float(r["lr_scale"]), float(r["input_dropout"]), int(r["seed"]),  # noqa: E731
                     int(r["epochs"]))
    seen = {key(r) for _, r in done.iterrows()}
    for panel in [] if args.summarise_only else args.panels.split(","):
        prepared = make_panel(args.work, panel, n_samples=args.n_samples, seed=args.panel_seed)
        for p in floats(args.input_dropout):
            for c in floats(args.lr_scale):
                for seed in [int(s) for s in args.seeds.split(",")]:
                    if (panel, c, p, seed, args.epochs) in seen:
                        continue
                    row = train_one(prepared, panel=panel, lr_scale=c, input_dropout=p, seed=seed,
                                    epochs=args.epochs, threads=args.threads)
                    print(json.dumps(row), flush=True)
                    pd.DataFrame([row], columns=RUN_COLUMNS).to_csv(
                        args.runs, sep="\t", index=False, mode="a", header=not args.runs.is_file(),
                        float_format="%.6g")
    runs = pd.read_csv(args.runs, sep="\t")
    table = summarise(runs)
    print(table.to_string(index=False))
    (RESULTS / "study_lr.json").write_text(json.dumps({
        "settings": {k: str(v) for k, v in vars(args).items()}, "collapse_sd_tol": COLLAPSE_SD_TOL,
        "paper_lr_sqrt_m": PAPER_LR_SQRT_M, "table": table.to_dict(orient="records"), "versions": versions(),
    }, indent=2, default=float) + "\n")
    if args.plot:
        plot(runs, ROOT / "docs" / "img" / "training_study.png")


if __name__ == "__main__":
    main()
