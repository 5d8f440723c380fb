"""The annpal HTML report: one self-contained page summarising a results layout ``R``.

:func:`build_report` reads the results layout (``docs/dev/interfaces.md``; every part except
``prepared/`` optional, absent parts noted on the page), draws the figures (:mod:`annpal.report.plots`,
PNG + SVG under ``plots/``) and writes ``report.html`` (:mod:`annpal.report.html`).

Privacy rule (docs/architecture.md): only counts and per-SNP aggregate scores are shown. ``samples.tsv`` is read
for its ``label`` and ``split`` columns only, never its IDs; the simulated phenotype file and the
genotype matrix are never read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

import annpal
from annpal.deliverables import SUMSTATS_NAME
from annpal.errors import InputError
from annpal.gwas import lambda_gc
from annpal.loci import loci_table
from annpal.null import TAIL_DISTRIBUTIONS
from annpal.report import plots as P
from annpal.report.html import Section, bullet_list, esc, figure, key_value_table, render_page, table
from annpal.results import (
    ANNOTATE_RECORD,
    EVALUATION,
    EXCLUDED,
    GWAS,
    GWAS_RECORD,
    HISTORY,
    LOCI,
    MAS_MATRIX,
    MODELS,
    NULL_FIT,
    NULL_FIT_RECORD,
    PARAMS,
    QC,
    SAMPLES,
    SCORES,
    TRAIN_RECORD,
    TRUTH,
    VARIANTS,
    Artifact,
    Layout,
    read,
    threshold_value,
    thresholds_of,
)

log = logging.getLogger(__name__)

__all__ = ["ReportResult", "build_report", "LOW_VAL_AUC", "LAMBDA_WARN", "TINY_HIDDEN"]

#: A real model whose final validation AUC is below this gets a warning.
LOW_VAL_AUC = 0.6
#: Quantitative trait: a real model whose final validation R² is at or below this (no better than
#: predicting the mean) gets a warning.
LOW_VAL_R2 = 0.0
#: λGC above this gets a warning (inflation / population structure).
LAMBDA_WARN = 1.1
#: Hidden layer sizes below this get a warning (docs/method.md §2: "warning when tiny").
TINY_HIDDEN = 2
#: The null distribution of the method (annpal.null's spelling).
HALF_NORMAL = TAIL_DISTRIBUTIONS[0]


@dataclass
class ReportResult:
    """What :func:`build_report` wrote and found."""

    html: Path
    plots: list[P.Plot] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Context:
    results: Layout
    plot_dir: Path
    plots: list[P.Plot] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: ``binary`` or ``quantitative`` (prepared/qc.json): AUC or R², cases or samples
    trait_type: str = "binary"

    @property
    def quantitative(self) -> bool:
        return self.trait_type == "quantitative"

    def add(self, plot: P.Plot) -> str:
        self.plots.append(plot)
        return figure(plot)


def _read(ctx: _Context, artifact: Artifact, path: Path, **kwargs: Any) -> Any | None:
    """An optional part of the layout: None when absent; unreadable parts are skipped with a note."""
    if not path.is_file():
        return None
    try:
        return read(artifact, path, **kwargs)
    except InputError as exc:
        ctx.notes.append(f"{exc}; skipped")
        return None


def _flatten(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Scalar leaves of nested dicts as ``a.b.c`` keys; lists shown by length unless short and scalar."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}{k}." if not isinstance(v, dict) or v else f"{prefix}{k}")
        return
    key = prefix.rstrip(".")
    if isinstance(obj, list):
        if len(obj) <= 8 and all(isinstance(v, (str, int, float, bool)) or v is None for v in obj):
            yield key, ", ".join(str(v) for v in obj)
        else:
            yield key, f"list of {len(obj)}"
    else:
        yield key, obj


# ----------------------------------------------------------------------------------------------------
# Sections


def _overview(ctx: _Context) -> Section:
    lay = ctx.results
    rows: list[tuple[str, Any]] = []
    # Only label and split: sample IDs are never loaded (privacy rule).
    s = _read(ctx, SAMPLES, lay.path(SAMPLES), columns=["label", "split"])
    if s is not None and ctx.quantitative:
        rows += [("samples", len(s)), ("trait", "quantitative"), ("trait mean", float(s["label"].mean())),
                 ("trait SD", float(s["label"].std()))]
        rows += [(f"{split} split (samples)", int((s["split"] == split).sum())) for split in ("train", "val")]
    elif s is not None:
        rows += [("samples", len(s)), ("cases", int((s["label"] == 1).sum())),
                 ("controls", int((s["label"] == 0).sum()))]
        for split in ("train", "val"):
            sub = s[s["split"] == split]
            rows.append((f"{split} split (cases / controls)",
                         f"{int((sub['label'] == 1).sum())} / {int((sub['label'] == 0).sum())}"))
    else:
        ctx.notes.append("prepared/samples.tsv absent: sample counts not shown")
    v = _read(ctx, VARIANTS, lay.path(VARIANTS), columns=["CHR"])
    if v is not None:
        rows += [("SNPs", len(v)), ("chromosomes", v["CHR"].nunique())]
    else:
        ctx.notes.append("prepared/variants.tsv absent: SNP counts not shown")
    body = key_value_table(rows, headers=("input", "count"))
    qc = _read(ctx, QC, lay.path(QC))
    if qc:
        # Provenance keys are shown in their own section (versions) or are not results (command line).
        shown = {k: v for k, v in qc.items() if k not in ("versions", "command")}
        body += "<h3>Quality control (qc.json)</h3>" + key_value_table(_flatten(shown), headers=("item", "value"))
    elif qc is None:
        ctx.notes.append("prepared/qc.json absent: QC removals not shown")
    t = _read(ctx, TRUTH, lay.path(TRUTH))
    if t is not None:
        counts = t["role"].value_counts().sort_index()
        body += ("<h3>Simulated phenotype</h3>"
                 + key_value_table([("causal SNPs", len(t))] + [(f"role {k}", int(n)) for k, n in counts.items()],
                                   headers=("truth", "count")))
    return Section("overview", "Inputs and counts", body)


def _loci_section(ctx: _Context) -> Section:
    loci = _read(ctx, LOCI, ctx.results.path(LOCI))
    if loci is not None:
        source = "annotate/loci.tsv"
    elif ctx.results.methods():
        loci = loci_table(ctx.results.root)
        source = "computed from pal/ and pvalues/ (no annotate/loci.tsv; genes not mapped)"
        ctx.notes.append("annotate/ absent: loci computed for the report without gene mapping")
    else:
        ctx.notes.append("pal/ absent: no loci")
        return Section("loci", "Loci", "<p>No PAL results found.</p>")
    body = [f'<p class="muted">Source: {esc(source)}. PAL SNPs on one chromosome closer than the locus gap '
            "form one locus; the lead SNP has the smallest AMAS P-value (then the largest AMAS). Click a "
            "column header to sort.</p>"]
    if loci.empty:
        body.append("<p>No locus at any threshold.</p>")
    shown = ["locus", "chr", "start", "end", "n_snps", "lead_snp", "lead_bp", "lead_p_text", "lead_amas",
             "genes", "snps", "lead_p"]
    for (method, th), group in loci.groupby(["method", "threshold"], sort=False):
        frame = group[[c for c in shown if c in group]].rename(columns={"lead_p_text": "lead P", "lead_p": "_lead_p_value"})
        body.append(f"<h3>{esc(str(method).upper())}, θ = {esc(th)}: {len(group)} loci</h3>")
        body.append(table(frame, table_id=f"loci-{method}-{th}", sortable=True, css_class="loci",
                          sort_keys={"lead P": "_lead_p_value"}, cell_class={"snps": "snps", "genes": ""}))
    return Section("loci", "Loci", "\n".join(body))


def _methods_section(ctx: _Context) -> Section | None:
    methods = ctx.results.methods()
    mas_dir = ctx.results.root / "mas"
    mas_methods = sorted({d.name.rsplit("_", 1)[0] for d in mas_dir.iterdir() if d.is_dir()}) if mas_dir.is_dir() else []
    every = sorted(set(methods) | set(mas_methods))
    if not every:
        ctx.notes.append("pal/ and mas/ absent: no per-method results")
        return None
    body = []
    for method in every:
        body.append(f"<h3>{esc(method.upper())}</h3>")
        scores = _read(ctx, SCORES, ctx.results.path(SCORES, method=method))
        if scores is not None:
            ths = thresholds_of(scores)
            rows = []
            for th in ths:
                n_pal, n_common = int(scores[f"pal_{th}"].sum()), int(scores[f"pal_common_{th}"].sum())
                rows.append({"threshold θ": th, "T = percentile(mean MAS, θ)": float(np.percentile(
                    scores["mas_mean"].to_numpy(float), threshold_value(th))), "PAL SNPs": n_pal,
                    "PAL-common SNPs": n_common})
                if n_pal == 0:
                    ctx.warnings.append(f"{method}: no PAL SNP at θ = {th}")
            body.append(table(pd.DataFrame(rows)))
            body.append(ctx.add(P.plot_mas_manhattan(scores, method=method, thresholds=ths,
                                                     out_prefix=ctx.plot_dir / f"manhattan_mas_{method}")))
        else:
            ctx.notes.append(f"pal/{method}/scores.tsv absent: no Manhattan plot for {method}")
        body.append(_null_fit(ctx, method))
        matrix = _read(ctx, MAS_MATRIX, ctx.results.path(MAS_MATRIX, method=method, kind="real"))
        if matrix is not None:
            seeds = _seeds(ctx, ctx.results.path(MODELS, method=method, kind="real"), matrix.shape[0])
            body.append(ctx.add(P.plot_mas_correlation(matrix, seeds=seeds, method=method,
                                                       out_prefix=ctx.plot_dir / f"mas_correlation_{method}")))
        else:
            ctx.notes.append(f"mas/{method}_real/mas_matrix.npy absent: no MAS correlation plot for {method}")
        for kind in ("real", "null"):
            dead = _degenerate_seeds(ctx, ctx.results.path(MODELS, method=method, kind=kind))
            if dead:
                ctx.warnings.append(f"{method}: {kind} model(s) with seed {', '.join(map(str, dead))} are "
                                    "degenerate (dead network: every attribution zero, MAS uniform); "
                                    "consider a lower learning rate or more data")
            excluded = _read(ctx, EXCLUDED, ctx.results.path(EXCLUDED, method=method, kind=kind))
            if excluded is not None and len(excluded):
                ctx.warnings.append(f"{method}: {kind} model(s) with seed {', '.join(map(str, excluded['seed']))} "
                                    "collapsed and were left out of the MAS matrix (--collapsed_models exclude; "
                                    "docs/training.md)")
    return Section("methods", "PAL and P-values by method", "\n".join(body))


def _degenerate_seeds(ctx: _Context, models_tsv: Path) -> list[Any]:
    models = _read(ctx, MODELS, models_tsv)
    return [] if models is None else models.loc[models["degenerate"], "seed"].tolist()


def _seeds(ctx: _Context, models_tsv: Path, k: int) -> list[Any]:
    models = _read(ctx, MODELS, models_tsv)
    if models is not None and len(models) == k:
        return models["seed"].tolist()
    return list(range(1, k + 1))


def _null_fit(ctx: _Context, method: str) -> str:
    fit = _read(ctx, NULL_FIT_RECORD, ctx.results.path(NULL_FIT_RECORD, method=method))
    if fit is None:
        ctx.notes.append(f"pvalues/{method}/null_fit.json absent: no null fit for {method}")
        return ""
    best = fit["best"]
    if fit.get("warning"):
        ctx.warnings.append(f"{method}: {fit['warning']}")
    elif "warning" not in fit and best != HALF_NORMAL:
        # PVALUES decides (with its AIC tolerance) and writes "warning"; judge here only if it did not.
        ctx.warnings.append(f"{method}: the half-normal is not the best-supported null distribution (best: {best}); "
                            "AMAS P-values may not be calibrated")
    _null_pool_flags(ctx, method, fit)
    parts = []
    fits = _read(ctx, NULL_FIT, ctx.results.path(NULL_FIT, method=method))
    if fits is not None:
        parts.append("<p class=\"muted\">Null distribution fits to the upper tail (AIC/BIC; lower is better).</p>"
                     + table(fits))
    sigma = fit["sigma"]
    if sigma is None or not np.isfinite(float(sigma)):
        return "".join(parts)
    parts.append(ctx.add(P.plot_null_fit(method=method, out_prefix=ctx.plot_dir / f"null_fit_{method}",
                                         sigma=float(sigma), tail_fraction=float(fit["tail_fraction"]), best=best,
                                         **_null_fit_data(ctx, method, fit))))
    return "".join(parts)


def _null_pool_flags(ctx: _Context, method: str, fit: dict[str, Any]) -> None:
    """Warnings and notes on how PVALUES built the null: dead models left out, σ's fit, inexact draws."""
    dead = fit.get("degenerate_null_models") or []
    if dead:
        who = ", ".join(str(d["seed"]) if d.get("seed") is not None else f"row {d.get('row')}" for d in dead)
        ctx.warnings.append(f"{method}: {len(dead)} degenerate null model(s) (seed {who}; dead network, flat MAS) "
                            f"left out of the null pool; σ is fitted to the other {fit.get('n_null_models_used')}")
    if fit.get("halfnorm_loc") == "free":
        ctx.notes.append(f"{method}: null σ from the authors' free-loc half-normal fit (--halfnorm_loc free): "
                         f"{fit.get('sigma_free', float('nan')):.4g} (loc 0: {fit.get('sigma_zero', float('nan')):.4g})")
    inexact = {t: v.get("n_inexact_draws", 0) for t, v in (fit.get("thresholds") or {}).items()}
    if any(inexact.values()):
        ctx.warnings.append(f"{method}: null draws kept the observed counts despite ties at the cut "
                            f"({', '.join(f'θ {t}: {n}' for t, n in inexact.items() if n)}); re-run PVALUES with the "
                            "prepared dataset (--dataset) for exact recounts")


def _null_fit_data(ctx: _Context, method: str, fit: dict[str, Any]) -> dict[str, Any]:
    """The histogram and QQ arrays PVALUES stored (so the figure shows exactly what it fitted), else the
    null MAS matrix to recompute them from."""
    hist, qq = fit.get("histogram") or {}, fit.get("qq") or {}
    kwargs: dict[str, Any] = {}
    if hist.get("edges") and hist.get("density"):
        kwargs["hist"] = (np.asarray(hist["edges"], float), np.asarray(hist["density"], float))
    if qq.get("expected") and qq.get("observed") and len(qq["expected"]) == len(qq["observed"]):
        kwargs["qq"] = (np.asarray(qq["expected"], float), np.asarray(qq["observed"], float))
    if len(kwargs) < 2:
        null_mas = _read(ctx, MAS_MATRIX, ctx.results.path(MAS_MATRIX, method=method, kind="null"))
        if null_mas is not None:
            return {"null_mas": null_mas}
    return kwargs


def _lr_section(ctx: _Context) -> Section | None:
    gwas = _read(ctx, GWAS, ctx.results.path(GWAS))
    if gwas is None:
        ctx.notes.append("gwas/ absent: no linear comparator results")
        return None
    meta = _read(ctx, GWAS_RECORD, ctx.results.path(GWAS_RECORD)) or {}
    lam = meta.get("lambda_gc")
    if lam is None:
        lam = lambda_gc(gwas.loc[gwas["status"] == "ok", "z"].to_numpy(float))
    lam = float(lam)
    if np.isfinite(lam) and lam > LAMBDA_WARN:
        ctx.warnings.append(f"LR comparator: λGC = {lam:.3f} > {LAMBDA_WARN} (inflation; check population "
                            "structure or the number of PCs)")
    # −log10 P stays exact where P underflows a double; P itself is only used for the QQ plot (clipped)
    nlp = gwas["neg_log10_p"]
    p = 10.0 ** -nlp
    bonf = 0.05 / max(int(nlp.notna().sum()), 1)
    rows = [("SNPs tested", len(gwas)), ("λGC", lam), ("Bonferroni threshold", bonf),
            ("SNPs below Bonferroni", int((nlp > -np.log10(bonf)).sum())), ("PCs", meta.get("n_pcs", "NA"))]
    rows += [(f"status {k}", int(n)) for k, n in gwas["status"].value_counts().sort_index().items()]
    body = [key_value_table(rows, headers=("item", "value"))]
    top = gwas.nlargest(10, "neg_log10_p")[["SNP", "CHR", "BP", "beta", "se", "p_value"]]
    body.append("<h3>Top 10 SNPs</h3>" + table(top, table_id="lr-top", sortable=True))
    body.append('<div class="grid">')
    body.append(ctx.add(P.plot_lr_manhattan(gwas, lambda_value=lam, out_prefix=ctx.plot_dir / "manhattan_lr",
                                            quantitative=ctx.quantitative)))
    body.append(ctx.add(P.plot_lr_qq(p.to_numpy(float), lambda_value=lam, out_prefix=ctx.plot_dir / "qq_lr")))
    body.append("</div>")
    regression = "linear regression" if ctx.quantitative else "logistic regression"
    return Section("lr", f"Linear comparator ({regression})", "\n".join(body))


def _training_section(ctx: _Context) -> Section | None:
    histories: dict[str, pd.DataFrame] = {}
    tiny: dict[str, list[int]] = {}
    rows = []
    for name in ctx.results.models():
        h = _read(ctx, HISTORY, ctx.results.path(HISTORY, model=name))
        if h is None:
            continue
        if h.empty:
            ctx.notes.append(f"train/{name}/history.tsv empty; skipped")
            continue
        histories[name] = h
        kind = "null" if name.startswith("null") else "real"
        last = h.iloc[-1]
        quality, column, low = ("R²", "val_r2", LOW_VAL_R2) if ctx.quantitative else ("AUC", "val_auc", LOW_VAL_AUC)
        rows.append({"model": name, "kind": kind, "epochs": int(last["epoch"]),
                     "final train loss": float(last["train_loss"]), "final val loss": float(last["val_loss"]),
                     f"final val {quality}": float(last[column]), f"best val {quality}": float(h[column].max())})
        if kind == "real" and (float(last[column]) <= low if ctx.quantitative else float(last[column]) < low):
            ctx.warnings.append(f"{name}: low validation {quality} ({float(last[column]):.3f} "
                                f"{'≤' if ctx.quantitative else '<'} {low}); the model may not have learnt the trait")
        info = _read(ctx, TRAIN_RECORD, ctx.results.path(TRAIN_RECORD, model=name)) or {}
        rows[-1].update({"kept epoch": info.get("kept_epoch"), "collapsed": bool(info.get("collapsed"))})
        if not ctx.quantitative:  # a quantitative trait has no cases to balance
            rows[-1]["case share trained on"] = (info.get("balance") or {}).get("after", {}).get("case_share")
        if info.get("training_collapsed"):
            ctx.warnings.append(f"{name}: the network collapsed to a constant output from epoch "
                                f"{info.get('collapse_epoch')} (kept epoch {info.get('kept_epoch')}, "
                                f"{'collapsed' if info.get('collapsed') else 'not collapsed'}); see docs/training.md")
        sizes = [int(x) for x in info.get("hidden_sizes", [])]
        if sizes and min(sizes) < TINY_HIDDEN:
            tiny[name] = sizes
        ctx.warnings += [f"{name}: {w}" for w in info.get("warnings", []) if w]
    if tiny:
        sizes = sorted({tuple(v) for v in tiny.values()})
        ctx.warnings.append(f"tiny hidden layer sizes (H1, H2 = {', '.join(str(list(s)) for s in sizes)}) in "
                            f"{len(tiny)} model(s): {', '.join(sorted(tiny))}; lower the divisors or set the sizes "
                            "explicitly for small SNP panels")
    if not histories:
        ctx.notes.append("train/ absent: no training curves")
        return None
    body = table(pd.DataFrame(rows), table_id="training", sortable=True)
    body += ctx.add(P.plot_training(histories, out_prefix=ctx.plot_dir / "training", quantitative=ctx.quantitative))
    return Section("training", "Training", body)


def _evaluation_section(ctx: _Context) -> Section | None:
    ev = _read(ctx, EVALUATION, ctx.results.path(EVALUATION))
    if ev is None:
        return None
    body = table(ev, table_id="evaluation", sortable=True)
    if {"precision", "recall", "method", "threshold"} <= set(ev.columns) and len(ev):
        # bars for the PAL sets as called (no P threshold); lines against the P threshold (Fig. 2)
        plain = ev[ev["p_threshold"].isna() & ev["threshold"].notna()] if "p_threshold" in ev else ev
        if len(plain):
            body += ctx.add(P.plot_precision_recall(plain, out_prefix=ctx.plot_dir / "precision_recall"))
        if "p_threshold" in ev and ev["p_threshold"].notna().any():
            body += ctx.add(P.plot_p_threshold_panels(ev, out_prefix=ctx.plot_dir / "p_threshold_panels"))
    return Section("evaluation", "Evaluation on the simulated phenotype", body)


def _deliverables_section(ctx: _Context) -> Section | None:
    adir = ctx.results.folder("annotate")
    if not adir.is_dir():
        return None
    info = _read(ctx, ANNOTATE_RECORD, ctx.results.path(ANNOTATE_RECORD)) or {}
    rows = []
    if info.get("build"):
        rows.append(("genome build (LDtrait file names, GWAS-SSF metadata)", info["build"]))
    if ctx.results.path(LOCI).is_file():
        rows.append(("loci table", LOCI.filename))
    ld = sorted(p.name for p in (adir / "ldtrait").glob("*.txt")) if (adir / "ldtrait").is_dir() else []
    rows.append(("LDtrait query files (≤ 50 variants each)", ", ".join(ld) if ld else "none"))
    fuma = sorted(p.name for p in adir.glob("fuma_leads*.tsv"))
    rows.append(("FUMA lead SNP files", ", ".join(fuma) if fuma else "none"))
    for name in (SUMSTATS_NAME, f"{SUMSTATS_NAME}-meta.yaml"):
        if (adir / name).is_file():
            rows.append(("GWAS-SSF " + ("metadata" if name.endswith("yaml") else "summary statistics"), name))
    for note in info.get("notes", []) or []:
        ctx.notes.append(f"annotate: {note}")
    return Section("deliverables", "Deliverables", key_value_table(rows, headers=("file", "name")))


def _provenance_sections(ctx: _Context) -> list[Section]:
    out = []
    params = _read(ctx, PARAMS, ctx.results.path(PARAMS))
    if params is not None:
        out.append(Section("parameters", "Parameters", key_value_table(_flatten(params), headers=("parameter", "value"))))
    else:
        ctx.notes.append("pipeline/params.json absent: parameters not shown")
    vpath = ctx.results.folder("pipeline") / "versions.yml"
    if vpath.is_file():
        try:
            data = yaml.safe_load(vpath.read_text())
        except yaml.YAMLError:
            data = None
        if isinstance(data, dict):
            rows = []
            for process, tools in data.items():
                if isinstance(tools, dict):
                    rows += [{"process": process, "tool": k, "version": str(v)} for k, v in tools.items()]
                else:
                    rows.append({"process": "", "tool": process, "version": str(tools)})
            body = table(pd.DataFrame(rows, columns=["process", "tool", "version"]), table_id="versions", sortable=True)
        else:
            body = f"<pre>{esc(vpath.read_text())}</pre>"
        out.append(Section("versions", "Versions", body))
    else:
        ctx.notes.append("pipeline/versions.yml absent: versions not shown")
    return out


def build_report(results: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                 title: str = "annpal report", plot_dir: str | os.PathLike[str] | None = None,
                 html_path: str | os.PathLike[str] | None = None) -> ReportResult:
    """Write ``report.html`` and the figures for a results layout.

    Parameters
    ----------
    results
        The results layout ``R`` (``prepared/`` expected; everything else optional).
    out_dir
        Destination folder: ``out_dir/report.html`` and ``out_dir/plots/*.png|svg``.
    title
        Page title.
    plot_dir, html_path
        Override where the figures and the page go (the CLI writes them to temporary names first).

    Returns
    -------
    ReportResult

    Raises
    ------
    InputError
        ``results`` is not a folder or holds none of the expected parts.
    """
    base = Path(results)
    if not base.is_dir():
        raise InputError(f"{base}: not a folder; point --results to the pipeline's results layout")
    known = ("prepared", "pal", "mas", "pvalues", "gwas", "train", "annotate", "pipeline", "evaluation")
    if not any((base / k).exists() for k in known):
        raise InputError(f"{base}: none of {', '.join(known)} found; point --results to the results layout")
    out = Path(out_dir)
    ctx = _Context(results=Layout(base), plot_dir=Path(plot_dir) if plot_dir else out / "plots")
    qc = _read(ctx, QC, ctx.results.path(QC)) or {}
    ctx.trait_type = str(qc.get("phenotype", {}).get("trait_type", "binary"))
    ctx.plot_dir.mkdir(parents=True, exist_ok=True)
    if not (base / "prepared").is_dir():
        ctx.notes.append("prepared/ absent: input counts not shown")
    sections: list[Section | None] = [_overview(ctx), None, _loci_section(ctx), _methods_section(ctx),
                                      _lr_section(ctx), _training_section(ctx), _evaluation_section(ctx),
                                      _deliverables_section(ctx)]
    sections += _provenance_sections(ctx)
    warn_body = bullet_list(ctx.warnings, css_class="warnings") if ctx.warnings else '<p class="ok">No warnings.</p>'
    sections[1] = Section("warnings", f"Warnings ({len(ctx.warnings)})", warn_body)
    if ctx.notes:
        sections.append(Section("notes", "Notes on missing parts", bullet_list(ctx.notes, css_class="notes")))
    page = render_page(title=title, subtitle=f"annpal {annpal.__version__} · results: {base.name}",
                       sections=[s for s in sections if s is not None], generator=f"annpal {annpal.__version__}")
    target = Path(html_path) if html_path else out / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    for w in ctx.warnings:
        log.warning(w)
    return ReportResult(html=target, plots=ctx.plots, warnings=ctx.warnings, notes=ctx.notes)
