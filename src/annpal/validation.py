"""The simulation study (the paper's Fig. 2, scaled down): summaries across runs of ``-profile validation``.

A *scenario* is one results folder of the pipeline run with ``--simulate`` (λ = 1, λ = 3); the *null
run* is the same run with ``--sim_permute`` (the phenotype shuffled, so nothing is associated). This
module reads those folders and computes what docs/validation.md reports:

* :func:`headline_table`: precision and recall of each method line (``LR``, ``IG_strict``, ...) at each
  P threshold, from ``evaluation/evaluation.tsv``;
* :func:`training_table`: validation AUC of every network, from ``train/<id>/history.tsv``;
* :func:`null_calibration`: how many SNPs reach AMAS P ≤ t in the null run against the M·t a calibrated
  test gives, with a one-sided Poisson test each way (:func:`calibration_verdict`), and where the PAL
  P-values lie relative to the run's bound 1/(B·M);
* :func:`trace_times`: wall time and task time per step, from Nextflow's trace file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from annpal import evaluate
from annpal.errors import InputError
from annpal.results import EVALUATION, HISTORY, NULL_FIT_RECORD, read

#: P thresholds of the null-calibration table (the issue's 1e-3 and 1e-5, and the paper's 1.7e-7).
CALIBRATION_LEVELS = (("1e-3", 1e-3), ("1e-4", 1e-4), ("1e-5", 1e-5), ("1.7e-7", 1.7e-7))
#: One-sided level of the Poisson tests behind a calibration verdict, shared by the levels tested.
VERDICT_ALPHA = 0.05


def read_evaluation(results: str | Path) -> pd.DataFrame:
    """``evaluation/evaluation.tsv`` of one results folder, with a ``series`` column (``IG_strict``)."""
    path = Path(results) / "evaluation" / "evaluation.tsv"
    if not path.is_file():
        raise InputError(f"{path}: not found; give a results folder of a finished --simulate run")
    table = read(EVALUATION, path)
    if "p_threshold" not in table:
        raise InputError(f"{path}: no p_threshold column; re-run EVALUATE with this version (annpal-evaluate)")
    table["series"] = [evaluate.series_label(m, t) for m, t in zip(table["method"], table["threshold"], strict=True)]
    return table


def headline_table(evaluations: Mapping[str, pd.DataFrame], *, p_thresholds: Sequence[str] | None = None
                   ) -> pd.DataFrame:
    """Precision, recall and block counts per scenario, method line and P threshold (Fig. 2's numbers).

    Parameters
    ----------
    evaluations
        ``{scenario: read_evaluation(...)}``.
    p_thresholds
        Keep only these P thresholds (labels as written); all by default.

    Returns
    -------
    pandas.DataFrame
        ``scenario series p_threshold n_blocks tp fp precision recall``, rows with a P threshold only,
        LR first, then the PAL lines in file order.
    """
    frames = []
    for scenario, table in evaluations.items():
        rows = table[table["p_threshold"].notna()]
        if p_thresholds is not None:
            rows = rows[rows["p_threshold"].isin(list(p_thresholds))]
        rows = rows.assign(scenario=scenario, lr_first=rows["method"] != "lr")
        frames.append(rows.sort_values(["lr_first"], kind="stable"))
    if not frames:
        return pd.DataFrame(columns=["scenario", "series", "p_threshold", "n_blocks", "tp", "fp", "precision",
                                     "recall"])
    out = pd.concat(frames, ignore_index=True)
    return out[["scenario", "series", "p_threshold", "n_blocks", "tp", "fp", "precision", "recall"]]


def training_table(results: str | Path) -> pd.DataFrame:
    """One row per network: ``model kind epochs final_val_auc best_val_auc best_epoch final_val_loss``."""
    rows = []
    for history_path in sorted((Path(results) / "train").glob("*/history.tsv")):
        history = read(HISTORY, history_path, columns=["epoch", "val_loss", "val_auc"])
        if history.empty:
            continue
        auc = pd.to_numeric(history["val_auc"], errors="coerce")
        best = int(auc.fillna(-1).to_numpy().argmax())
        model = history_path.parent.name
        rows.append({"model": model, "kind": "null" if model.startswith("null") else "real",
                     "epochs": int(history["epoch"].iloc[-1]), "final_val_auc": float(auc.iloc[-1]),
                     "best_val_auc": float(auc.iloc[best]), "best_epoch": int(history["epoch"].iloc[best]),
                     "final_val_loss": float(history["val_loss"].iloc[-1])})
    return pd.DataFrame(rows, columns=["model", "kind", "epochs", "final_val_auc", "best_val_auc", "best_epoch",
                                       "final_val_loss"])


def calibration_verdict(observed: Sequence[int], expected: Sequence[float], *, alpha: float = VERDICT_ALPHA
                        ) -> tuple[str, list[float], list[float]]:
    """Conservative, calibrated or anti-conservative, from counts of P ≤ t against their expectation.

    Under a calibrated test the number of SNPs with P ≤ t is about Poisson(M·t). With L levels, a level
    with ``P(X ≥ observed) < alpha / L`` has too many small P-values (anti-conservative there), one with
    ``P(X ≤ observed) < alpha / L`` too few (conservative); the Bonferroni split keeps the chance of a
    false alarm over all levels at most ``alpha``. Any anti-conservative level makes the verdict
    ``anti-conservative``; otherwise any conservative level makes it ``conservative``; otherwise
    ``calibrated``.

    Returns
    -------
    (str, list of float, list of float)
        The verdict, and per level the upper-tail and lower-tail Poisson probabilities.
    """
    upper = [float(stats.poisson.sf(o - 1, e)) for o, e in zip(observed, expected, strict=True)]
    lower = [float(stats.poisson.cdf(o, e)) for o, e in zip(observed, expected, strict=True)]
    level = alpha / max(len(upper), 1)
    if any(u < level for u in upper):
        return "anti-conservative", upper, lower
    if any(lo < level for lo in lower):
        return "conservative", upper, lower
    return "calibrated", upper, lower


def _pal_rows(results: Path, method: str) -> pd.DataFrame:
    pal = evaluate.read_pal(results / "pal" / method / "pal.tsv")
    return pal.assign(theta=pd.to_numeric(pal["threshold"]), index=pal["index"].astype(np.int64))


def _method_calibration(results: Path, method: str, levels: Sequence[tuple[str, float]]) -> list[dict]:
    """Rows of :func:`null_calibration` for one method: one per θ of its PAL table."""
    pdir = results / "pvalues" / method
    pvalues = evaluate.read_pvalues(pdir / "pvalues.tsv").assign(theta=lambda d: pd.to_numeric(d["threshold"]))
    info = read(NULL_FIT_RECORD, pdir)
    n_snps, bound = int(info["n_snps"]), float(info["p_bound"])
    pal = _pal_rows(results, method)
    rows = []
    # every θ of either table: a null run may call no PAL at a θ, and its all-SNP P-values still count
    for theta in sorted(set(pal["theta"]) | set(pvalues["theta"]), reverse=True):
        every = pvalues[pvalues["theta"] == theta]
        on_pal = every.merge(pal.loc[pal["theta"] == theta, ["index"]], on="index")
        p, b = on_pal["p_value"].to_numpy(float), on_pal["p_bound"].to_numpy(float)
        all_snps = len(every) == n_snps  # annpal-pvalues --all-snps: the whole P-value distribution
        row = {"method": method, "threshold": f"{theta:g}", "n_snps": n_snps, "p_bound": bound,
               "n_pal": len(on_pal), "pal_at_bound": int((p == 0).sum()),
               "pal_p_median": float(np.median(np.where(p == 0, b, p))) if len(p) else math.nan,
               "counted_over": "all SNPs" if all_snps else "PAL SNPs"}
        observed, expected = [], []
        for label, t in levels:
            source = every if all_snps else on_pal
            observed.append(int(evaluate.p_at_most(source["p_value"], source["p_bound"], t).sum()))
            expected.append(n_snps * t)
            row[f"pal_p_le_{label}"] = int(evaluate.p_at_most(p, b, t).sum())
            row[f"n_p_le_{label}"], row[f"expected_{label}"] = observed[-1], n_snps * t
        resolvable = [(o, e) for (o, e), (_, t) in zip(zip(observed, expected, strict=True), levels, strict=True)
                      if t >= bound]
        row["verdict"] = calibration_verdict(*zip(*resolvable, strict=True))[0] if resolvable else "unresolved"
        rows.append(row)
    return rows


def null_calibration(results: str | Path, *, levels: Sequence[tuple[str, float]] = CALIBRATION_LEVELS
                     ) -> pd.DataFrame:
    """AMAS P-values of a null run (``--sim_permute``) against their nominal level, per method and θ.

    For each level t: the number of SNPs with P ≤ t (all SNPs when the run wrote ``--all-snps``
    P-values, else the PAL SNPs, a lower bound that equals the all-SNP count once t is small enough
    that only PAL SNPs reach it) against the ``M·t`` a calibrated test gives, and the PAL SNPs alone
    (``pal_p_le_<t>``). A P written as 0 ("P < bound") counts for every t ≥ bound
    (:func:`annpal.evaluate.p_at_most`); levels below the bound are not used for the verdict.

    Returns
    -------
    pandas.DataFrame
        One row per method and θ with ``n_snps p_bound n_pal pal_at_bound pal_p_median`` and, per
        level, ``pal_p_le_<t> n_p_le_<t> expected_<t>``, then ``verdict``.
    """
    results = Path(results)
    methods = sorted(d.name for d in (results / "pvalues").glob("*") if (d / "pvalues.tsv").is_file())
    if not methods:
        raise InputError(f"{results}/pvalues: no pvalues.tsv; give the results folder of a finished null run")
    return pd.DataFrame([row for m in methods for row in _method_calibration(results, m, levels)])


def lr_null_counts(results: str | Path, *, levels: Sequence[tuple[str, float]] = CALIBRATION_LEVELS) -> dict:
    """The logistic regression in the null run: SNPs with P ≤ t against M·t (a familiar reference)."""
    gwas = evaluate.read_gwas(Path(results) / "gwas" / "gwas.tsv")
    nlp = pd.to_numeric(gwas["neg_log10_p"], errors="coerce").to_numpy(float)
    ok = (gwas["status"].astype(str) == "ok").to_numpy() & np.isfinite(nlp)
    n = int(ok.sum())
    observed = [int((nlp[ok] >= -math.log10(t)).sum()) for _, t in levels]
    expected = [n * t for _, t in levels]
    verdict = calibration_verdict(observed, expected)[0]
    return {"n_snps": n, **{f"n_p_le_{lab}": o for (lab, _), o in zip(levels, observed, strict=True)},
            **{f"expected_{lab}": e for (lab, _), e in zip(levels, expected, strict=True)}, "verdict": verdict}


_DURATION = re.compile(r"(?P<value>[0-9.]+)(?P<unit>ms|s|m|h|d)")
_SECONDS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: object) -> float:
    """Nextflow's human-readable duration (``1h 2m 3s``, ``850ms``, ``-``) in seconds (NaN if none)."""
    parts = _DURATION.findall(str(text))
    return sum(float(v) * _SECONDS[u] for v, u in parts) if parts else math.nan


def trace_times(results: str | Path) -> tuple[float, pd.DataFrame]:
    """Wall time of a run (first submit to last completion, from its newest trace file) and task time
    per step: ``process n_tasks realtime_s`` (cached tasks count with the time of their first run)."""
    traces = sorted((Path(results) / "pipeline_info").glob("execution_trace_*.txt"))
    if not traces:
        return math.nan, pd.DataFrame(columns=["process", "n_tasks", "realtime_s"])
    trace = pd.read_csv(traces[-1], sep="\t")  # Nextflow's own trace: not an artifact
    trace["process"] = trace["process"].astype(str).str.split(":").str[-1]
    trace["realtime_s"] = trace["realtime"].map(parse_duration)
    start = pd.to_datetime(trace["submit"], errors="coerce")
    end = start + pd.to_timedelta(trace["duration"].map(parse_duration), unit="s")
    wall = float((end.max() - start.min()).total_seconds()) if start.notna().any() else math.nan
    steps = trace.groupby("process", sort=False).agg(n_tasks=("process", "size"), realtime_s=("realtime_s", "sum"))
    return wall, steps.reset_index()


def markdown_table(table: pd.DataFrame, *, floats: str = "{:.3g}") -> str:
    """A GitHub markdown table (NaN as ``–``) for docs/validation.md."""
    def cell(v: object) -> str:
        if isinstance(v, float):
            return "–" if math.isnan(v) else floats.format(v)
        return str(v)
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"
