"""Deliverables and report at the paper's genome-wide scale (290 522 SNPs, 22 chromosomes, K = K0 = 10).

1. Manhattan plot of 290 522 points: ours (one scatter per chromosome colour, rasterised inside the SVG)
   against the plain approach (one scatter with a per-point colour list, vector SVG) in the same run:
   time and SVG size ratios.
2. ``annotate_results`` (loci, LDtrait, FUMA, GWAS-SSF + YAML) against the I/O floor of reading
   ``gwas.tsv`` and ``scores.tsv`` and writing one TSV of the same size.
3. ``build_report`` (every figure, PNG + SVG, and the HTML) on the same layout; the page size is shown.

The results layout is synthetic (random values written with the artifact writers of ``annpal.results``),
made with ``tests/results_fixture``-like code scaled up. Run:
``.venv/bin/python benchmarks/bench_report.py`` → table on stdout, ``benchmarks/results/report.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from annpal import results as R
from annpal.deliverables import annotate_results
from annpal.genome import format_p
from annpal.provenance import versions
from annpal.report import build_report
from annpal.report import plots as P

RESULTS = Path(__file__).resolve().parent / "results" / "report.json"


def make_layout(root: Path, *, n_snps: int, k: int, seed: int = 1) -> Path:
    """A genome-wide results layout: prepared tables, one method (ig) with 2 θ, P-values, GWAS, training."""
    rng = np.random.default_rng(seed)
    per = n_snps // 22
    chrom = np.minimum(np.arange(n_snps) // per + 1, 22).astype(str)
    bp = np.zeros(n_snps, dtype=np.int64)
    for c in np.unique(chrom):
        idx = np.flatnonzero(chrom == c)
        bp[idx] = np.sort(rng.choice(250_000_000, size=idx.size, replace=False)) + 1
    snp = np.array([f"rs{i + 1}" if i % 10 else f"{c}:{b}_A_G" for i, (c, b) in enumerate(zip(chrom, bp, strict=True))])
    lay = R.Layout(root)

    def put(artifact: R.Artifact, data, **names) -> None:
        path = lay.path(artifact, **names)
        path.parent.mkdir(parents=True, exist_ok=True)
        R.write(artifact, path, data)

    v = pd.DataFrame({"index": np.arange(n_snps), "CHR": chrom, "BP": bp, "SNP": snp, "A1": "A", "A2": "G",
                      "MAF": rng.uniform(0.01, 0.5, n_snps), "MISSING": 0.0})
    put(R.VARIANTS, v)
    n = 9139
    put(R.SAMPLES, pd.DataFrame({"FID": [f"F{i}" for i in range(n)], "IID": [f"I{i}" for i in range(n)],
                                 "label": (np.arange(n) < 1814).astype(int), "split": "train"}))
    put(R.QC, {"n_snps_read": n_snps})
    mas = np.abs(rng.normal(0, 1, (k, n_snps)))
    mas /= mas.sum(axis=1, keepdims=True)
    mean = mas.mean(axis=0)
    scores = v[["index", "CHR", "BP", "SNP"]].copy()
    scores["mas_mean"] = mean
    pv_rows = []
    for th in ("99.99", "99.95"):
        t = np.percentile(mean, float(th))
        pal = mean > t
        scores[f"count_{th}"] = np.where(pal, k, 0)
        scores[f"weight_{th}"] = pal.astype(float)
        scores[f"amas_{th}"] = mean
        scores[f"pal_{th}"] = pal.astype(int)
        scores[f"pal_common_{th}"] = pal.astype(int)
        for i in np.flatnonzero(pal):
            p = float(rng.uniform(0, 1e-3))
            pv_rows.append((th, i, snp[i], chrom[i], bp[i], mean[i], p, 1 / (100 * n_snps), format_p(p)))
    put(R.SCORES, scores, method="ig")
    put(R.PVALUES, pd.DataFrame(pv_rows, columns=R.PVALUES.names), method="ig")
    put(R.NULL_FIT_RECORD, {"sigma": float(np.sqrt((mas ** 2).mean())), "best": "halfnorm", "warning": None,
                            "tail_fraction": 0.1}, method="ig")
    for kind in ("real", "null"):
        put(R.MAS_MATRIX, mas if kind == "real" else mas[::-1], method="ig", kind=kind)
    beta = rng.normal(0, 0.05, n_snps)
    p = rng.uniform(size=n_snps)
    put(R.GWAS, pd.DataFrame({"index": v["index"], "CHR": chrom, "BP": bp, "SNP": snp, "A1": "A", "A2": "G",
                              "beta": beta, "se": 0.05, "z": beta / 0.05, "p_value": [format_p(x) for x in p],
                              "neg_log10_p": -np.log10(p), "af": v["MAF"], "n": n, "status": "ok"}))
    put(R.GWAS_RECORD, {"lambda_gc": 1.0, "n_pcs": 3})
    for kind in ("real", "null"):
        for s in range(1, k + 1):
            e = np.arange(1, 1001)
            put(R.HISTORY, pd.DataFrame({"epoch": e, "train_loss": 0.69 * np.exp(-e / 500), "val_loss": 0.69 - 1e-5 * e,
                                         "val_auc": 0.5 + 0.2 * (1 - np.exp(-e / 200)), "val_r2": np.nan, "val_output_sd": 0.1,
                                         "val_dead_fraction": 0.0, "seconds": 1.0}),
                model=f"{kind}_s{s}")
    return root


def plain_manhattan(scores: pd.DataFrame, out: Path) -> None:
    """Baseline: one scatter with a per-point colour list, vector SVG."""
    x, rank, labels, centres = P.cumulative_positions(scores["CHR"].tolist(), scores["BP"].to_numpy())
    fig = Figure(figsize=(11, 4.2), dpi=P.DPI)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.scatter(x, scores["mas_mean"], s=4, c=[P.CHROM_COLOURS[r % 2] for r in rank], linewidths=0)
    ax.set_xticks(centres, labels)
    fig.savefig(out.with_suffix(".png"), dpi=P.DPI)
    fig.savefig(out.with_suffix(".svg"))


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - t0, value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snps", type=int, default=290_522)
    ap.add_argument("--models", type=int, default=10)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t_make, root = timed(make_layout, tmp / "R", n_snps=args.snps, k=args.models)
        scores = R.read(R.SCORES, R.Layout(root).path(R.SCORES, method="ig"))

        t_ours, _ = timed(P.plot_mas_manhattan, scores, method="ig", thresholds=["99.99", "99.95"],
                          out_prefix=tmp / "ours")
        t_plain, _ = timed(plain_manhattan, scores, tmp / "plain")
        svg_ours, svg_plain = (tmp / "ours.svg").stat().st_size, (tmp / "plain.svg").stat().st_size
        rows.append({"task": f"Manhattan {args.snps} SNPs", "ours_s": t_ours, "baseline_s": t_plain,
                     "ratio": t_plain / t_ours, "note": f"SVG {svg_ours / 1e6:.2f} MB vs {svg_plain / 1e6:.1f} MB "
                                                        f"({svg_plain / svg_ours:.0f}x smaller)"})

        def io_floor() -> None:
            g = pd.read_csv(root / "gwas" / "gwas.tsv", sep="\t", dtype={"CHR": str})
            pd.read_csv(root / "pal" / "ig" / "scores.tsv", sep="\t", dtype={"CHR": str})
            g.to_csv(tmp / "floor.tsv", sep="\t", index=False)

        t_floor, _ = timed(io_floor)
        (tmp / "N").mkdir()
        t_ann, summary = timed(annotate_results, root, tmp / "N")
        rows.append({"task": "annotate_results", "ours_s": t_ann, "baseline_s": t_floor, "ratio": t_floor / t_ann,
                     "note": f"{summary['n_loci']} loci, {len(summary['ldtrait_files'])} LDtrait files; "
                             "baseline = read gwas+scores, write one TSV"})
        t_rep, result = timed(build_report, root, tmp / "O")
        size = result.html.stat().st_size
        rows.append({"task": "build_report", "ours_s": t_rep, "baseline_s": t_floor, "ratio": t_floor / t_rep,
                     "note": f"{len(result.plots)} figures, report.html {size / 1e6:.2f} MB"})
    print(f"layout: {args.snps} SNPs, K = K0 = {args.models} (made in {t_make:.1f} s)")
    print(f"{'task':<28}{'ours s':>9}{'baseline s':>12}{'base/ours':>11}  note")
    for r in rows:
        print(f"{r['task']:<28}{r['ours_s']:>9.2f}{r['baseline_s']:>12.2f}{r['ratio']:>11.2f}  {r['note']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"snps": args.snps, "models": args.models, "rows": rows,
                                   "machine": platform.platform(), "versions": versions()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
