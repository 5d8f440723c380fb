"""The annpal HTML report: one self-contained page summarising a results layout ``R``.

:func:`build_report` reads the results layout (``docs/dev/interfaces.md``; every part except
``prepared/`` optional, absent parts noted on the page), draws the figures (:mod:`annpal.report.plots`,
PNG + SVG under ``plots/``) and writes ``report.html`` (:mod:`annpal.report.html`).

Privacy rule (DESIGN.md): only counts and per-SNP aggregate scores are shown. ``samples.tsv`` is read
for its ``label`` and ``split`` columns only, never its IDs; the simulated phenotype file and the
genotype matrix are never read.
"""

from __future__ import annotations

import json
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
from annpal.errors import InputError
from annpal.gwas import lambda_gc
from annpal.loci import find_methods, loci_table, read_scores, score_thresholds, threshold_value
from annpal.report import plots as P
from annpal.report.html import Section, bullet_list, esc, figure, key_value_table, render_page, table
from annpal.results import as_bool

log = logging.getLogger(__name__)

__all__ = ["ReportResult", "build_report", "LOW_VAL_AUC", "LAMBDA_WARN", "TINY_HIDDEN"]

#: A real model whose final validation AUC is below this gets a warning.
LOW_VAL_AUC = 0.6
#: λGC above this gets a warning (inflation / population structure).
LAMBDA_WARN = 1.1
#: Hidden layer sizes below this get a warning (METHOD.md §2: "warning when tiny").
TINY_HIDDEN = 2
_HALF_NORMAL_NAMES = {"halfnormal", "half-normal", "half_normal", "halfnorm"}


@dataclass
class ReportResult:
    """What :func:`build_report` wrote and found."""

    html: Path
    plots: list[P.Plot] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Context:
    results: Path
    plot_dir: Path
    plots: list[P.Plot] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, plot: P.Plot) -> str:
        self.plots.append(plot)
        return figure(plot)


def _read_json(path: Path, ctx: _Context) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        ctx.notes.append(f"{path.relative_to(ctx.results)}: unreadable JSON ({exc}); skipped")
        return None
    return data if isinstance(data, dict) else {"value": data}


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


def _find_keys(obj: Any, names: set[str]) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in names:
                yield k, v
            yield from _find_keys(v, names)
    elif isinstance(obj, list):
        for v in obj:
            yield from _find_keys(v, names)


# ----------------------------------------------------------------------------------------------------
# Sections


def _overview(ctx: _Context) -> Section:
    prepared = ctx.results / "prepared"
    rows: list[tuple[str, Any]] = []
    samples = prepared / "samples.tsv"
    if samples.is_file():
        # Only label and split: sample IDs are never loaded (privacy rule).
        header = pd.read_csv(samples, sep="\t", nrows=0).columns
        s = pd.read_csv(samples, sep="\t", usecols=[c for c in ("label", "split") if c in header])
        rows.append(("samples", len(s)))
        if "label" in s:
            rows += [("cases", int((s["label"] == 1).sum())), ("controls", int((s["label"] == 0).sum()))]
        if "split" in s and "label" in s:
            for split in ("train", "val"):
                sub = s[s["split"] == split]
                rows.append((f"{split} split (cases / controls)",
                             f"{int((sub['label'] == 1).sum())} / {int((sub['label'] == 0).sum())}"))
    else:
        ctx.notes.append("prepared/samples.tsv absent: sample counts not shown")
    variants = prepared / "variants.tsv"
    if variants.is_file():
        v = pd.read_csv(variants, sep="\t", usecols=["CHR"], dtype={"CHR": str})
        rows += [("SNPs", len(v)), ("chromosomes", v["CHR"].nunique())]
    else:
        ctx.notes.append("prepared/variants.tsv absent: SNP counts not shown")
    body = key_value_table(rows, headers=("input", "count"))
    qc = _read_json(prepared / "qc.json", ctx)
    if qc:
        # Provenance keys are shown in their own section (versions) or are not results (command line).
        shown = {k: v for k, v in qc.items() if k not in ("versions", "command")}
        body += "<h3>Quality control (qc.json)</h3>" + key_value_table(_flatten(shown), headers=("item", "value"))
    elif qc is None:
        ctx.notes.append("prepared/qc.json absent: QC removals not shown")
    truth = ctx.results / "simulation" / "truth.tsv"
    if truth.is_file():
        t = pd.read_csv(truth, sep="\t")
        counts = t["role"].value_counts().sort_index() if "role" in t else pd.Series(dtype=int)
        body += ("<h3>Simulated phenotype</h3>"
                 + key_value_table([("causal SNPs", len(t))] + [(f"role {k}", int(n)) for k, n in counts.items()],
                                   headers=("truth", "count")))
    return Section("overview", "Inputs and counts", body)


def _loci_section(ctx: _Context) -> Section:
    path = ctx.results / "annotate" / "loci.tsv"
    if path.is_file():
        loci = pd.read_csv(path, sep="\t", dtype={"threshold": str, "chr": str, "lead_p_text": str,
                                                   "genes": str, "snps": str}, keep_default_na=False,
                           na_values={"lead_p": ["NA"], "lead_amas": ["NA"]})
        source = "annotate/loci.tsv"
    elif find_methods(ctx.results):
        loci = loci_table(ctx.results)
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
    methods = find_methods(ctx.results)
    mas_dir = ctx.results / "mas"
    mas_methods = sorted({d.name.rsplit("_", 1)[0] for d in mas_dir.iterdir() if d.is_dir()}) if mas_dir.is_dir() else []
    every = sorted(set(methods) | set(mas_methods))
    if not every:
        ctx.notes.append("pal/ and mas/ absent: no per-method results")
        return None
    body = []
    for method in every:
        body.append(f"<h3>{esc(method.upper())}</h3>")
        scores_path = ctx.results / "pal" / method / "scores.tsv"
        if scores_path.is_file():
            scores = read_scores(scores_path)
            ths = score_thresholds(scores)
            rows = []
            for th in ths:
                n_pal = int(as_bool(scores[f"pal_{th}"]).sum()) if f"pal_{th}" in scores else 0
                n_common = int(as_bool(scores[f"pal_common_{th}"]).sum()) if f"pal_common_{th}" in scores else 0
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
        real = mas_dir / f"{method}_real" / "mas_matrix.npy"
        if real.is_file():
            matrix = np.load(real)
            seeds = _seeds(mas_dir / f"{method}_real" / "models.tsv", matrix.shape[0])
            body.append(ctx.add(P.plot_mas_correlation(matrix, seeds=seeds, method=method,
                                                       out_prefix=ctx.plot_dir / f"mas_correlation_{method}")))
        else:
            ctx.notes.append(f"mas/{method}_real/mas_matrix.npy absent: no MAS correlation plot for {method}")
        for kind in ("real", "null"):
            dead = _degenerate_seeds(mas_dir / f"{method}_{kind}" / "models.tsv")
            if dead:
                ctx.warnings.append(f"{method}: {kind} model(s) with seed {', '.join(map(str, dead))} are "
                                    "degenerate (dead network: every attribution zero, MAS uniform); "
                                    "consider a lower learning rate or more data")
    return Section("methods", "PAL and P-values by method", "\n".join(body))


def _degenerate_seeds(models_tsv: Path) -> list[Any]:
    if not models_tsv.is_file():
        return []
    models = pd.read_csv(models_tsv, sep="\t")
    if "degenerate" not in models or "seed" not in models:
        return []
    return models.loc[models["degenerate"] == 1, "seed"].tolist()


def _seeds(models_tsv: Path, k: int) -> list[Any]:
    if models_tsv.is_file():
        models = pd.read_csv(models_tsv, sep="\t")
        if "seed" in models and len(models) == k:
            return models["seed"].tolist()
    return list(range(1, k + 1))


def _array(fit: dict[str, Any], names: set[str]) -> np.ndarray | None:
    for _, value in _find_keys(fit, names):
        if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
            return np.asarray(value, dtype=float)
    return None


def _null_fit(ctx: _Context, method: str) -> str:
    pdir = ctx.results / "pvalues" / method
    fit = _read_json(pdir / "null_fit.json", ctx)
    if fit is None:
        ctx.notes.append(f"pvalues/{method}/null_fit.json absent: no null fit for {method}")
        return ""
    best = fit.get("best")
    warning = fit.get("warning")
    if warning:
        ctx.warnings.append(f"{method}: {warning}")
    elif "warning" not in fit and best and str(best).lower() not in _HALF_NORMAL_NAMES:
        # PVALUES decides (with its AIC tolerance) and writes "warning"; judge here only if it did not.
        ctx.warnings.append(f"{method}: the half-normal is not the best-supported null distribution (best: {best}); "
                            "AMAS P-values may not be calibrated")
    parts = []
    fit_tsv = pdir / "null_fit.tsv"
    if fit_tsv.is_file():
        parts.append("<p class=\"muted\">Null distribution fits to the upper tail (AIC/BIC; lower is better).</p>"
                     + table(pd.read_csv(fit_tsv, sep="\t")))
    sigma = fit.get("sigma")
    if sigma is None or not np.isfinite(float(sigma)):
        return "".join(parts)
    null_path = ctx.results / "mas" / f"{method}_null" / "mas_matrix.npy"
    tail = float(fit.get("tail_fraction", 0.1) or 0.1)
    # Prefer the arrays PVALUES stored (histogram.edges/density, qq.expected/observed), so the figure
    # shows exactly what it fitted; recompute from the null MAS matrix when they are absent.
    kwargs: dict[str, Any] = {}
    edges = _array(fit, {"edges", "hist_edges", "bin_edges"})
    dens = _array(fit, {"density", "hist_density"})
    theo = _array(fit, {"expected", "theoretical", "qq_expected", "qq_theoretical"})
    obs = _array(fit, {"observed", "qq_observed"})
    if edges is not None and dens is not None and theo is not None and obs is not None and len(theo) == len(obs):
        kwargs["hist"], kwargs["qq"] = (edges, dens), (theo, obs)
    elif null_path.is_file():
        kwargs["null_mas"] = np.load(null_path)
    else:
        if edges is not None and dens is not None:
            kwargs["hist"] = (edges, dens)
        if theo is not None and obs is not None and len(theo) == len(obs):
            kwargs["qq"] = (theo, obs)
    parts.append(ctx.add(P.plot_null_fit(method=method, out_prefix=ctx.plot_dir / f"null_fit_{method}",
                                         sigma=float(sigma), tail_fraction=tail, best=best, **kwargs)))
    return "".join(parts)


def _lr_section(ctx: _Context) -> Section | None:
    gdir = ctx.results / "gwas"
    if not (gdir / "gwas.tsv").is_file():
        ctx.notes.append("gwas/ absent: no linear comparator results")
        return None
    gwas = pd.read_csv(gdir / "gwas.tsv", sep="\t", dtype={"CHR": str, "SNP": str})
    meta = _read_json(gdir / "gwas.json", ctx) or {}
    lam = meta.get("lambda_gc")
    if lam is None and {"z", "status"} <= set(gwas.columns):
        lam = lambda_gc(pd.to_numeric(gwas["z"], errors="coerce")[gwas["status"] == "ok"].to_numpy(float))
    lam = float(lam) if lam is not None else float("nan")
    if np.isfinite(lam) and lam > LAMBDA_WARN:
        ctx.warnings.append(f"LR comparator: λGC = {lam:.3f} > {LAMBDA_WARN} (inflation; check population "
                            "structure or the number of PCs)")
    p = pd.to_numeric(gwas["p_value"], errors="coerce")
    bonf = 0.05 / max(int(p.notna().sum()), 1)
    rows = [("SNPs tested", len(gwas)), ("λGC", lam), ("Bonferroni threshold", bonf),
            ("SNPs below Bonferroni", int((p < bonf).sum())), ("PCs", meta.get("n_pcs", "NA"))]
    if "status" in gwas:
        rows += [(f"status {k}", int(n)) for k, n in gwas["status"].value_counts().sort_index().items()]
    body = [key_value_table(rows, headers=("item", "value"))]
    top = gwas.assign(_p=p).nsmallest(10, "_p")[["SNP", "CHR", "BP", "beta", "se", "p_value"]]
    body.append("<h3>Top 10 SNPs</h3>" + table(top, table_id="lr-top", sortable=True))
    body.append('<div class="grid">')
    body.append(ctx.add(P.plot_lr_manhattan(gwas, lambda_value=lam, out_prefix=ctx.plot_dir / "manhattan_lr")))
    body.append(ctx.add(P.plot_lr_qq(p.to_numpy(float), lambda_value=lam, out_prefix=ctx.plot_dir / "qq_lr")))
    body.append("</div>")
    return Section("lr", "Linear comparator (logistic regression)", "\n".join(body))


def _training_section(ctx: _Context) -> Section | None:
    tdir = ctx.results / "train"
    histories: dict[str, pd.DataFrame] = {}
    tiny: dict[str, list[int]] = {}
    rows = []
    for d in sorted(tdir.iterdir()) if tdir.is_dir() else []:
        if not (d / "history.tsv").is_file():
            continue
        h = pd.read_csv(d / "history.tsv", sep="\t")
        if h.empty or not {"epoch", "train_loss", "val_loss", "val_auc"} <= set(h.columns):
            ctx.notes.append(f"train/{d.name}/history.tsv empty or malformed; skipped")
            continue
        histories[d.name] = h
        kind = "null" if d.name.startswith("null") else "real"
        last = h.iloc[-1]
        rows.append({"model": d.name, "kind": kind, "epochs": int(last["epoch"]),
                     "final train loss": float(last["train_loss"]), "final val loss": float(last["val_loss"]),
                     "final val AUC": float(last["val_auc"]), "best val AUC": float(h["val_auc"].max())})
        if kind == "real" and float(last["val_auc"]) < LOW_VAL_AUC:
            ctx.warnings.append(f"{d.name}: low validation AUC ({float(last['val_auc']):.3f} < {LOW_VAL_AUC}); "
                                "the model may not have learnt the trait")
        info = _read_json(d / "train.json", ctx) or {}
        sizes = [int(v) for k, v in _find_keys(info, {"h1", "h2", "H1", "H2"}) if isinstance(v, int)]
        for _, v in _find_keys(info, {"hidden_sizes"}):
            if isinstance(v, list):
                sizes += [int(x) for x in v if isinstance(x, int)]
        if sizes and min(sizes) < TINY_HIDDEN:
            tiny[d.name] = sizes
        for _, v in _find_keys(info, {"warnings"}):
            for w in v if isinstance(v, list) else [v]:
                if w:
                    ctx.warnings.append(f"{d.name}: {w}")
    if tiny:
        sizes = sorted({tuple(v) for v in tiny.values()})
        ctx.warnings.append(f"tiny hidden layer sizes (H1, H2 = {', '.join(str(list(s)) for s in sizes)}) in "
                            f"{len(tiny)} model(s): {', '.join(sorted(tiny))}; lower the divisors or set the sizes "
                            "explicitly for small SNP panels")
    if not histories:
        ctx.notes.append("train/ absent: no training curves")
        return None
    body = table(pd.DataFrame(rows), table_id="training", sortable=True)
    body += ctx.add(P.plot_training(histories, out_prefix=ctx.plot_dir / "training"))
    return Section("training", "Training", body)


def _evaluation_section(ctx: _Context) -> Section | None:
    path = ctx.results / "evaluation" / "evaluation.tsv"
    if not path.is_file():
        return None
    ev = pd.read_csv(path, sep="\t", dtype={"threshold": str, "p_threshold": str, "method": str})
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
    adir = ctx.results / "annotate"
    if not adir.is_dir():
        return None
    info = _read_json(adir / "annotate.json", ctx) or {}
    rows = []
    if info.get("build"):
        rows.append(("genome build (LDtrait file names, GWAS-SSF metadata)", info["build"]))
    if (adir / "loci.tsv").is_file():
        rows.append(("loci table", "loci.tsv"))
    ld = sorted(p.name for p in (adir / "ldtrait").glob("*.txt")) if (adir / "ldtrait").is_dir() else []
    rows.append(("LDtrait query files (≤ 50 variants each)", ", ".join(ld) if ld else "none"))
    fuma = sorted(p.name for p in adir.glob("fuma_leads*.tsv"))
    rows.append(("FUMA lead SNP files", ", ".join(fuma) if fuma else "none"))
    for name in ("sumstats.tsv", "sumstats.tsv-meta.yaml", "sumstats.tsv.yaml"):
        if (adir / name).is_file():
            rows.append(("GWAS-SSF " + ("metadata" if name.endswith("yaml") else "summary statistics"), name))
    for note in info.get("notes", []) or []:
        ctx.notes.append(f"annotate: {note}")
    return Section("deliverables", "Deliverables", key_value_table(rows, headers=("file", "name")))


def _provenance_sections(ctx: _Context) -> list[Section]:
    out = []
    params = _read_json(ctx.results / "pipeline" / "params.json", ctx)
    if params is not None:
        out.append(Section("parameters", "Parameters", key_value_table(_flatten(params), headers=("parameter", "value"))))
    else:
        ctx.notes.append("pipeline/params.json absent: parameters not shown")
    vpath = ctx.results / "pipeline" / "versions.yml"
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
    ctx = _Context(results=base, plot_dir=Path(plot_dir) if plot_dir else out / "plots")
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
