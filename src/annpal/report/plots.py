"""Figures of the report (matplotlib, Agg; each saved as PNG and SVG).

Every function takes plain tables/arrays and an output prefix and returns a :class:`Plot`. Figures are
built with :class:`matplotlib.figure.Figure` directly (no pyplot state machine), so nothing global is
touched and no GUI backend is ever chosen. Genome-wide scatter layers are rasterised inside the SVG so a
290 000-point Manhattan plot stays a small file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from annpal import evaluate
from annpal.genome import normalise_chromosomes, sorted_chromosomes
from annpal.gwas import lambda_gc
from annpal.results import as_bool

#: Two alternating chromosome colours, then highlight colours for PAL / PAL-common / thresholds.
CHROM_COLOURS = ("#4c72b0", "#9fb5d5")
THRESHOLD_COLOURS = ("#c44e52", "#dd8452", "#8172b3", "#937860")
PAL_COMMON_COLOUR = "#2ca02c"
DPI = 110


@dataclass(frozen=True)
class Plot:
    """One saved figure: short name, title and caption for the report, and its two files."""

    name: str
    title: str
    caption: str
    png: Path
    svg: Path


def _new_figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def save_figure(fig: Figure, out_prefix: str | os.PathLike[str], *, name: str, title: str,
                caption: str) -> Plot:
    """Save ``fig`` as ``<prefix>.png`` and ``<prefix>.svg`` (SVG without a date, so runs are stable)."""
    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    png, svg = prefix.with_suffix(".png"), prefix.with_suffix(".svg")
    fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None})
    fig.savefig(svg, format="svg", metadata={"Date": None})
    return Plot(name=name, title=title, caption=caption, png=png, svg=svg)


def cumulative_positions(chrom: Sequence[object], bp: Sequence[int], *, gap: float = 0.02
                         ) -> tuple[np.ndarray, np.ndarray, list[str], list[float]]:
    """x coordinate of each SNP along the genome (chromosomes in genomic order, end to end).

    Returns
    -------
    (x, chrom_rank, labels, centres)
        x per SNP, the chromosome rank per SNP (for alternating colours), the chromosome labels in
        order and their tick positions.
    """
    names = normalise_chromosomes(chrom)
    pos = np.asarray(bp, dtype=float)
    order = sorted_chromosomes(names)
    spans = {c: (pos[names == c].min(), pos[names == c].max()) for c in order}
    total = sum(hi - lo + 1 for lo, hi in spans.values()) or 1.0
    pad = gap * total / max(len(order), 1)
    x = np.empty(len(pos))
    rank = np.empty(len(pos), dtype=np.int64)
    centres, offset = [], 0.0
    for k, c in enumerate(order):
        lo, hi = spans[c]
        mask = names == c
        x[mask] = offset + pos[mask] - lo
        rank[mask] = k
        centres.append(offset + (hi - lo) / 2)
        offset += hi - lo + 1 + pad
    return x, rank, order, centres


def _scatter_chromosomes(ax, x: np.ndarray, y: np.ndarray, rank: np.ndarray) -> None:
    # One call per colour (not a per-point colour list): fast for 290 000 points.
    for parity, colour in enumerate(CHROM_COLOURS):
        mask = rank % 2 == parity
        ax.scatter(x[mask], y[mask], s=4, color=colour, linewidths=0, rasterized=True)


def _genome_axis(ax, labels: list[str], centres: list[float]) -> None:
    ax.set_xticks(centres)
    ax.set_xticklabels(labels, fontsize=8 if len(labels) > 12 else 9)
    ax.set_xlabel("chromosome")
    ax.margins(x=0.01)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def plot_mas_manhattan(scores: pd.DataFrame, *, method: str, thresholds: Sequence[str],
                       out_prefix: str | os.PathLike[str]) -> Plot:
    """Manhattan plot of the mean MAS over real models with θ lines, PAL and PAL-common marked (§4).

    The horizontal line of each θ is ``T = percentile(mas_mean, θ)``, the cut AMAS must exceed.
    """
    x, rank, labels, centres = cumulative_positions(scores["CHR"].tolist(), scores["BP"].to_numpy())
    y = scores["mas_mean"].to_numpy(float)
    fig, (ax,) = _new_figure(11, 4.2)
    _scatter_chromosomes(ax, x, y, rank)
    # Strictest last so its markers sit on top.
    ordered = sorted(thresholds, key=lambda t: float(t))
    for k, th in enumerate(ordered):
        colour = THRESHOLD_COLOURS[k % len(THRESHOLD_COLOURS)]
        ax.axhline(np.percentile(y, float(th)), color=colour, lw=0.9, ls="--", label=f"T at θ = {th}")
        col = f"pal_{th}"
        if col in scores:
            mask = as_bool(scores[col])
            ax.scatter(x[mask], y[mask], s=22, facecolors="none", edgecolors=colour, linewidths=1.1,
                       label=f"PAL θ = {th} ({int(mask.sum())})")
    common = np.zeros(len(scores), bool)
    for th in ordered:
        if f"pal_common_{th}" in scores:
            common |= as_bool(scores[f"pal_common_{th}"])
    if common.any():
        ax.scatter(x[common], y[common], s=40, marker="D", facecolors="none", edgecolors=PAL_COMMON_COLOUR,
                   linewidths=1.0, label=f"PAL-common ({int(common.sum())})")
    _genome_axis(ax, labels, centres)
    ax.set_ylabel("mean MAS (real models)")
    ax.set_title(f"{method.upper()}: mean attribution score")
    # Outside the axes: the top right corner is where the strongest signals of the last chromosome sit.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
    return save_figure(fig, out_prefix, name=f"manhattan_mas_{method}", title=f"{method.upper()} Manhattan (mean MAS)",
                       caption="Mean MAS per SNP along the genome. Dashed lines: percentile thresholds T; open "
                               "circles: PAL at each θ; diamonds: PAL-common (detected by every model).")


def plot_lr_manhattan(gwas: pd.DataFrame, *, lambda_value: float | None,
                      out_prefix: str | os.PathLike[str], quantitative: bool = False) -> Plot:
    """Manhattan plot of the comparator (−log10 P; logistic regression, or linear regression for a
    quantitative trait), Bonferroni line at 0.05/M (§7)."""
    # −log10 P from gwas.tsv's own column: exact where P underflows a double (the strongest signals)
    nlp = pd.to_numeric(gwas["neg_log10_p"], errors="coerce").to_numpy(float)
    ok = np.isfinite(nlp)
    x, rank, labels, centres = cumulative_positions(gwas["CHR"].tolist(), gwas["BP"].to_numpy())
    fig, (ax,) = _new_figure(11, 4.2)
    _scatter_chromosomes(ax, x[ok], nlp[ok], rank[ok])
    bonf = 0.05 / max(int(ok.sum()), 1)
    ax.axhline(-np.log10(bonf), color=THRESHOLD_COLOURS[0], lw=0.9, ls="--", label=f"Bonferroni 0.05/M = {bonf:.2g}")
    _genome_axis(ax, labels, centres)
    ax.set_ylabel("−log10 P (LR)")
    lam = f", λGC = {lambda_value:.3f}" if lambda_value is not None and np.isfinite(lambda_value) else ""
    ax.set_title(f"{'Linear' if quantitative else 'Logistic'} regression comparator{lam}")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
    test = "t-test P-values of the per-SNP linear" if quantitative else "Wald P-values of the per-SNP logistic"
    return save_figure(fig, out_prefix, name="manhattan_lr", title="LR comparator Manhattan",
                       caption=f"{test} regression (genotype + PCs); dashed line: Bonferroni threshold.")


def plot_lr_qq(p_values: np.ndarray, *, lambda_value: float | None, out_prefix: str | os.PathLike[str]) -> Plot:
    """QQ plot of the comparator's P-values against the uniform, with λGC in the title."""
    p = np.sort(np.asarray(p_values, dtype=float)[np.isfinite(p_values)])
    p = np.clip(p, np.finfo(float).tiny, 1.0)
    n = p.size
    expected = (np.arange(1, n + 1) - 0.5) / max(n, 1)
    fig, (ax,) = _new_figure(4.8, 4.6)
    ax.scatter(-np.log10(expected), -np.log10(p), s=5, color=CHROM_COLOURS[0], linewidths=0, rasterized=True)
    top = float(max(-np.log10(expected).max(initial=1), -np.log10(p).max(initial=1)))
    ax.plot([0, top], [0, top], color="grey", lw=0.8)
    if n > 10:
        # 95 % pointwise band of uniform order statistics (Beta(i, n − i + 1)).
        i = np.arange(1, n + 1)
        ax.fill_between(-np.log10(expected), -np.log10(stats.beta.ppf(0.025, i, n - i + 1)),
                        -np.log10(stats.beta.ppf(0.975, i, n - i + 1)), color="grey", alpha=0.2, lw=0)
    ax.set_xlabel("expected −log10 P")
    ax.set_ylabel("observed −log10 P")
    lam = lambda_value if lambda_value is not None else lambda_gc(stats.norm.isf(p / 2))
    ax.set_title(f"LR QQ plot, λGC = {lam:.3f}" if np.isfinite(lam) else "LR QQ plot")
    return save_figure(fig, out_prefix, name="qq_lr", title="LR comparator QQ plot",
                       caption="Observed against expected P-values under the null, with a 95 % band; λGC is "
                               "the genomic inflation factor.")


def tail_qq(null_mas: np.ndarray, *, sigma: float, tail_fraction: float = 0.1, n_points: int = 2000
            ) -> tuple[np.ndarray, np.ndarray]:
    """Observed upper-tail quantiles of pooled null MAS against the fitted half-normal's (§5.1).

    The theoretical quantile of plotting position q in the top ``tail_fraction`` is the half-normal
    quantile at ``1 − f + f·q`` (the tail of the fitted distribution, not a tail refit).
    """
    x = np.asarray(null_mas, dtype=float).ravel()
    x = x[np.isfinite(x)]
    q = (np.arange(1, n_points + 1) - 0.5) / n_points
    observed = np.quantile(x, 1.0 - tail_fraction + tail_fraction * q)
    theoretical = stats.halfnorm.ppf(1.0 - tail_fraction + tail_fraction * q, scale=sigma)
    return theoretical, observed


def plot_null_fit(*, method: str, out_prefix: str | os.PathLike[str], sigma: float,
                  null_mas: np.ndarray | None = None, hist: tuple[np.ndarray, np.ndarray] | None = None,
                  qq: tuple[np.ndarray, np.ndarray] | None = None, tail_fraction: float = 0.1,
                  best: str | None = None) -> Plot:
    """Null MAS histogram with the fitted half-normal pdf, and the tail QQ plot (§5.1).

    Either the pooled null MAS values are given (preferred; histogram and QQ computed here) or the
    precomputed ``hist`` = (edges, density) and ``qq`` = (theoretical, observed) arrays from
    ``null_fit.json``.
    """
    fig, (ax1, ax2) = _new_figure(10, 4.0, ncols=2)
    if null_mas is not None:
        values = np.asarray(null_mas, dtype=float).ravel()
        values = values[np.isfinite(values)]
        density, edges = np.histogram(values, bins=80, density=True)
        qq = tail_qq(values, sigma=sigma, tail_fraction=tail_fraction)
    elif hist is not None:
        edges, density = (np.asarray(a, dtype=float) for a in hist)
        if len(density) == len(edges):  # bin centres were stored instead of edges
            width = np.diff(edges).mean() if len(edges) > 1 else 1.0
            edges = np.append(edges - width / 2, edges[-1] + width / 2)
    else:
        edges = density = None
    if edges is not None:
        ax1.stairs(density, edges, fill=True, color=CHROM_COLOURS[1], label="null MAS")
        grid = np.linspace(0, edges[-1], 400)
        ax1.plot(grid, stats.halfnorm.pdf(grid, scale=sigma), color=THRESHOLD_COLOURS[0], lw=1.4,
                 label=f"half-normal σ = {sigma:.3g}")
        ax1.legend(fontsize=8, frameon=False)
    else:
        ax1.text(0.5, 0.5, "no null MAS data", ha="center", va="center", transform=ax1.transAxes)
    ax1.set_xlabel("MAS (null models)")
    ax1.set_ylabel("density")
    ax1.set_title(f"{method.upper()}: null MAS and fitted half-normal")
    if qq is not None:
        theo, obs = (np.asarray(a, dtype=float) for a in qq)
        ax2.scatter(theo, obs, s=6, color=CHROM_COLOURS[0], linewidths=0, rasterized=True)
        lo, hi = float(min(theo.min(), obs.min())), float(max(theo.max(), obs.max()))
        ax2.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
    else:
        ax2.text(0.5, 0.5, "no tail QQ data", ha="center", va="center", transform=ax2.transAxes)
    ax2.set_xlabel("half-normal quantile")
    ax2.set_ylabel("observed null MAS quantile")
    ax2.set_title(f"upper tail QQ (best fit: {best})" if best else "upper tail QQ")
    return save_figure(fig, out_prefix, name=f"null_fit_{method}", title=f"{method.upper()} null fit",
                       caption="Left: pooled MAS of the null models with the fitted half-normal density. Right: "
                               "quantiles of the upper tail against the fitted half-normal; points above the "
                               "line mean a heavier tail than the fit (P-values then not calibrated).")


def plot_training(histories: Mapping[str, pd.DataFrame], *, out_prefix: str | os.PathLike[str],
                  quantitative: bool = False) -> Plot:
    """Training/validation loss and validation AUC (R² for a quantitative trait) per epoch of every real
    and null model (§2)."""
    column, quality, loss, chance = (("val_r2", "R²", "MSE", 0.0) if quantitative else ("val_auc", "AUC", "BCE", 0.5))
    fig, (ax1, ax2) = _new_figure(11, 4.0, ncols=2)
    real_cmap, null_colour = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                              "#17becf", "#bcbd22", "#7f7f7f"), "#9a9a9a"
    k_real = 0
    for model_id in sorted(histories):
        h = histories[model_id]
        null = model_id.startswith("null")
        colour = null_colour if null else real_cmap[k_real % len(real_cmap)]
        k_real += 0 if null else 1
        alpha = 0.6 if null else 0.95
        ax1.plot(h["epoch"], h["train_loss"], color=colour, lw=1.0, alpha=alpha, label=f"{model_id} train")
        ax1.plot(h["epoch"], h["val_loss"], color=colour, lw=1.0, ls="--", alpha=alpha)
        ax2.plot(h["epoch"], h[column], color=colour, lw=1.0, alpha=alpha, label=model_id)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel(f"{loss} loss (solid: train, dashed: validation)")
    ax1.set_title("loss")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel(f"validation {quality}")
    ax2.axhline(chance, color="grey", lw=0.7, ls=":")
    ax2.set_title(f"validation {quality} (grey: null models)")
    if len(histories) <= 12:
        ax2.legend(fontsize=7, frameon=False, ncol=2)
    return save_figure(fig, out_prefix, name="training", title="Training curves",
                       caption=f"Loss and validation {quality} per epoch; real models in colour, null models "
                               "(permuted labels) in grey.")


def plot_mas_correlation(mas_matrix: np.ndarray, *, seeds: Sequence[object], method: str,
                         out_prefix: str | os.PathLike[str]) -> Plot:
    """Heatmap of the K × K Pearson correlation of MAS vectors across seeds (real models)."""
    m = np.asarray(mas_matrix, dtype=float)
    corr = np.corrcoef(m) if m.shape[0] > 1 else np.ones((1, 1))
    k = corr.shape[0]
    fig, (ax,) = _new_figure(1.2 + 0.45 * max(k, 4), 0.9 + 0.45 * max(k, 4))
    image = ax.imshow(corr, vmin=min(0.0, float(np.nanmin(corr))), vmax=1.0, cmap="viridis")
    ticks = [str(s) for s in seeds] if len(seeds) == k else [str(i + 1) for i in range(k)]
    ax.set_xticks(range(k), ticks, fontsize=8, rotation=90 if k > 8 else 0)
    ax.set_yticks(range(k), ticks, fontsize=8)
    ax.set_xlabel("seed")
    ax.set_ylabel("seed")
    if k <= 12:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if corr[i, j] < 0.6 else "black")
    fig.colorbar(image, ax=ax, shrink=0.8, label="Pearson r")
    ax.set_title(f"{method.upper()}: MAS correlation across seeds", fontsize=10)
    return save_figure(fig, out_prefix, name=f"mas_correlation_{method}", title=f"{method.upper()} MAS correlation",
                       caption="Pearson correlation between the MAS vectors of the real models (rows of the "
                               "MAS matrix); low values mean the seeds attribute importance differently.")


def plot_precision_recall(evaluation: pd.DataFrame, *, out_prefix: str | os.PathLike[str]) -> Plot:
    """Precision and recall per method and threshold on simulated data (§9)."""
    labels = [f"{m} {t}" for m, t in zip(evaluation["method"], evaluation["threshold"], strict=True)]
    prec = pd.to_numeric(evaluation["precision"], errors="coerce").to_numpy(float)
    rec = pd.to_numeric(evaluation["recall"], errors="coerce").to_numpy(float)
    fig, (ax,) = _new_figure(max(6.0, 0.45 * len(labels) + 2), 4.2)
    xs = np.arange(len(labels))
    ax.bar(xs - 0.2, np.nan_to_num(prec), width=0.4, color=CHROM_COLOURS[0], label="precision")
    ax.bar(xs + 0.2, np.nan_to_num(rec), width=0.4, color=THRESHOLD_COLOURS[1], label="recall")
    ax.set_xticks(xs, labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction")
    ax.set_title("Simulation: precision and recall")
    ax.legend(fontsize=8, frameon=False)
    return save_figure(fig, out_prefix, name="precision_recall", title="Precision and recall",
                       caption="Precision (true-positive blocks / blocks) and recall (causal loci hit / causal "
                               "loci) per method and threshold on the simulated phenotype.")


def plot_p_threshold_panels(evaluation: pd.DataFrame, *, out_prefix: str | os.PathLike[str],
                            title: str = "Simulation: detections against the P threshold",
                            name: str = "p_threshold_panels") -> Plot:
    """The paper's Fig. 2 for one scenario: precision (a) and recall (b) of each method line (LR,
    IG_strict, IG_relaxed, ...) against the P threshold, from the ``evaluation.tsv`` rows with a
    ``p_threshold``. A method with no detection at a threshold has no precision there (a gap)."""
    rows = evaluation[evaluation["p_threshold"].notna()].copy()
    labels = sorted(rows["p_threshold"].astype(str).unique(), key=lambda t: -float(t))
    xs = {t: i for i, t in enumerate(labels)}
    fig, axes = _new_figure(9.0, 3.6, ncols=2)
    series = list(dict.fromkeys(zip(rows["method"].astype(str), rows["threshold"], strict=True)))
    colours = ["#222222", *THRESHOLD_COLOURS, *CHROM_COLOURS, PAL_COMMON_COLOUR, "#8c8c8c", "#17becf"]
    for k, (method, theta) in enumerate(series):
        same = (rows["method"].astype(str) == method).to_numpy() & (
            rows["threshold"].isna().to_numpy() if pd.isna(theta) else (rows["threshold"] == theta).to_numpy())
        sub = rows[same].assign(x=lambda d: d["p_threshold"].astype(str).map(xs)).sort_values("x")
        style = {"color": colours[k % len(colours)], "marker": "o", "ms": 4, "lw": 1.4,
                 "ls": "-" if pd.notna(theta) else "--", "label": evaluate.series_label(method, theta)}
        for ax, col in zip(axes, ("precision", "recall"), strict=True):
            ax.plot(sub["x"], pd.to_numeric(sub[col], errors="coerce"), **style)
    for ax, col, tag in zip(axes, ("precision", "recall"), ("a", "b"), strict=True):
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel("P-value threshold")
        ax.set_ylabel(col)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(f"({tag}) {col}", fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, out_prefix, name=name, title="Precision and recall against the P threshold",
                       caption="As the paper's Fig. 2: precision (TP blocks / blocks) and recall (causal loci "
                               "hit / causal loci) of the logistic regression (LR, dashed) and of the PAL "
                               "SNPs with AMAS P ≤ threshold (strict θ = 99.99, relaxed θ = 99.95). A missing "
                               "point is a threshold with no detection (precision undefined).")


def plot_null_calibration(p_values: Mapping[str, tuple[np.ndarray, np.ndarray, float, int]], *,
                          out_prefix: str | os.PathLike[str]) -> Plot:
    """Null run: (a) SNPs with AMAS P ≤ t against t beside the M·t of a calibrated test; (b) the PAL
    SNPs' P-values relative to the run's bound 1/(B·M).

    ``p_values`` maps a line label to ``(P-values of every SNP tested, P-values of the PAL SNPs, bound,
    M)``; a P of 0 means "P < bound" and is drawn at the bound (it counts for every t ≥ bound).
    """
    fig, axes = _new_figure(9.0, 3.6, ncols=2)
    bounds = [b for _, _, b, _ in p_values.values()]
    grid = np.logspace(np.log10(min(bounds) if bounds else 1e-7), 0, 60)
    colours = [*THRESHOLD_COLOURS, *CHROM_COLOURS, PAL_COMMON_COLOUR]

    def shown(p: np.ndarray, bound: float) -> np.ndarray:
        p = np.asarray(p, float)
        return np.sort(np.where(p <= 0, bound, p))

    for k, (label, (tested, pal, bound, _)) in enumerate(p_values.items()):
        colour = colours[k % len(colours)]
        counts = np.searchsorted(shown(tested, bound), grid, side="right")
        axes[0].step(grid, np.maximum(counts, 0.5), where="post", color=colour, lw=1.3, label=label)
        pal_p = shown(pal, bound)
        axes[1].plot(pal_p, np.arange(1, pal_p.size + 1), color=colour, lw=1.3, marker="o", ms=3,
                     label=f"{label}: {pal_p.size} PAL, {int(np.sum(np.asarray(pal) <= 0))} at the bound")
        axes[1].axvline(bound, color=colour, lw=0.8, ls=":")
    if p_values:
        n_snps = max(m for _, _, _, m in p_values.values())
        axes[0].plot(grid, grid * n_snps, color="#222222", ls="--", lw=1.0, label="calibrated: M·t")
        axes[1].plot(grid, grid * n_snps, color="#222222", ls="--", lw=1.0, label="M·t")
    axes[0].set(xscale="log", yscale="log", xlabel="P threshold t", ylabel="SNPs with P ≤ t (all tested)")
    axes[0].set_title("(a) P ≤ t against M·t", fontsize=10, loc="left")
    axes[1].set(xscale="log", yscale="log", xlabel="AMAS P of the PAL SNPs (dotted: bound 1/(B·M))",
                ylabel="PAL SNPs with P ≤ x")
    axes[1].set_title("(b) PAL P-values against their bound", fontsize=10, loc="left")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    return save_figure(fig, out_prefix, name="null_calibration", title="Null calibration of the AMAS P-values",
                       caption="Permuted phenotype: every SNP is null, so a calibrated P-value has about M·t "
                               "SNPs at P ≤ t. Points at the bound are P-values written as '< bound'.")
