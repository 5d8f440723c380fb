"""Files for tools outside annpal: LDtrait queries, FUMA lead SNPs, GWAS-SSF summary statistics (docs/method.md §6).

``annotate_results`` turns a results layout ``R`` into the ANNOTATE outputs::

    N/loci.tsv                                  annpal.loci.LOCI_COLUMNS, every method and threshold
    N/ldtrait/<method>_<θ>_<build>[_partK].txt  one variant per line, ≤ 50 per file (LDtrait's limit)
    N/fuma_leads_<method>_<θ>.tsv               rsID chr pos (FUMA "pre-defined lead SNPs")
    N/sumstats.tsv, N/sumstats.tsv-meta.yaml    GWAS-SSF data file of the LR comparator + metadata
    N/annotate.json                             what was written and what was skipped, and why

Choices made here (documented for users in the report and docs/output.md):

* LDtrait variants are the bim ID where it is an rsID (``rs\\d+``), else ``chrN:pos`` (LDlink accepts
  both); every PAL SNP of the threshold is queried, sorted by chromosome and position.
* GWAS-SSF columns: the mandatory ones in the specification's order (``chromosome base_pair_location
  effect_allele other_allele beta standard_error effect_allele_frequency p_value``), then ``rsid`` and
  ``n``, then per method ``mas_<m>`` (mean MAS over the real models), ``amas_<m>`` and ``amas_p_<m>``.
  AMAS and its P-value are taken at the *strictest* threshold (largest θ) of the method; the θ used is
  recorded in the metadata's ``author_notes``. An AMAS P of 0 (no null draw exceeded the observed
  value) is written as its upper bound 1/(B·M) because a data file has no room for "< bound" and 0
  would overstate the evidence. The effect allele is A1 (the counted allele, genotype = A1 count − 1),
  so ``beta`` and ``effect_allele_frequency`` refer to A1. Chromosomes are GWAS-SSF integers (X = 23,
  Y = 24, MT = 25; PLINK's XY is written 23). Missing values are ``#NA``.
* Without ``R/gwas`` no summary statistics are written (the file would have no mandatory columns);
  ``annotate.json`` says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

import annpal
from annpal.errors import InputError
from annpal.genome import chromosome_rank, normalise_chromosome
from annpal.loci import LOCI_COLUMNS, method_loci, pal_snps, read_genes
from annpal.results import (
    GWAS,
    GWAS_RECORD,
    LOCI,
    PVALUES,
    SAMPLES,
    SCORES,
    Layout,
    read,
    read_optional,
    threshold_value,
    thresholds_of,
    write,
)

log = logging.getLogger(__name__)

#: LDtrait accepts at most 50 variants per query.
LDTRAIT_MAX_VARIANTS = 50
#: GWAS-SSF mandatory columns, in the specification's order (beta flavour), then the optional ones we add.
SSF_MANDATORY = ["chromosome", "base_pair_location", "effect_allele", "other_allele", "beta",
                 "standard_error", "effect_allele_frequency", "p_value"]
SSF_OPTIONAL = ["rsid", "n"]
SSF_NA = "#NA"
SUMSTATS_NAME = "sumstats.tsv"
FUMA_COLUMNS = ["rsID", "chr", "pos"]
_RSID = re.compile(r"rs\d+")
_SSF_CHROM = {"X": 23, "Y": 24, "XY": 23, "MT": 25}


def is_rsid(snp: object) -> bool:
    """True when a variant ID is a dbSNP rsID (``rs`` followed by digits only)."""
    return bool(_RSID.fullmatch(str(snp).strip()))


def query_id(snp: object, chrom: object, bp: int) -> str:
    """LDlink query form of a variant: its rsID, else ``chrN:pos``."""
    return str(snp).strip() if is_rsid(snp) else f"chr{normalise_chromosome(chrom)}:{int(bp)}"


def chunk(items: Sequence[str], size: int = LDTRAIT_MAX_VARIANTS) -> list[list[str]]:
    """Split ``items`` into consecutive lists of at most ``size`` (LDtrait's per-query limit)."""
    if size < 1:
        raise ValueError("size must be >= 1")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def ldtrait_sets(pal: pd.DataFrame, *, method: str, build: str,
                 max_per_file: int = LDTRAIT_MAX_VARIANTS) -> dict[str, list[str]]:
    """LDtrait query files for the PAL SNPs of one method: ``{file name: variants}``.

    Parameters
    ----------
    pal
        Output of :func:`annpal.loci.pal_snps` (``threshold SNP CHR BP`` …).
    method, build
        Go into the file names ``<method>_<θ>_<build>[_partK].txt`` (``_partK`` only when split).
    max_per_file
        Variants per file.
    """
    out: dict[str, list[str]] = {}
    for th, g in pal.groupby("threshold", sort=False):
        g = g.assign(_k=chromosome_rank(g["CHR"])).sort_values(["_k", "BP"], kind="stable")
        ids = list(dict.fromkeys(query_id(s, c, b) for s, c, b in zip(g["SNP"], g["CHR"], g["BP"], strict=True)))
        parts = chunk(ids, max_per_file)
        for k, part in enumerate(parts, start=1):
            suffix = f"_part{k}" if len(parts) > 1 else ""
            out[f"{method}_{th}_{build}{suffix}.txt"] = part
    return out


def fuma_leads(loci: pd.DataFrame) -> pd.DataFrame:
    """FUMA "pre-defined lead SNPs" table (``rsID chr pos``) from the loci of one method and threshold.

    FUMA matches lead SNPs by rsID; a lead whose bim ID is not an rsID is written as its ID and a
    warning is logged by the caller.
    """
    return pd.DataFrame({"rsID": loci["lead_snp"].astype(str).to_numpy(),
                         "chr": loci["chr"].astype(str).to_numpy(),
                         "pos": loci["lead_bp"].astype(np.int64).to_numpy()}, columns=FUMA_COLUMNS)


def ssf_chromosome(name: object) -> int | str:
    """GWAS-SSF chromosome code: 1-22, X = 23, Y = 24, MT = 25 (PLINK XY → 23)."""
    c = normalise_chromosome(name)
    if c.isdigit():
        return int(c)
    return _SSF_CHROM.get(c, c)


def method_columns(results: str | os.PathLike[str], method: str, *, scores: pd.DataFrame | None = None
                   ) -> tuple[pd.DataFrame, str]:
    """Per-SNP ``mas``, ``amas`` and ``amas_p`` of one method at its strictest threshold.

    ``scores`` is the method's scores.tsv when already read (else it is read here).

    Returns
    -------
    (pandas.DataFrame, str)
        Frame indexed by SNP ``index`` with columns ``mas amas amas_p``, and the θ label used.
    """
    layout = Layout(results)
    if scores is None:
        scores = read(SCORES, layout.path(SCORES, method=method))
    th = max(thresholds_of(scores), key=threshold_value)
    frame = pd.DataFrame({"mas": scores["mas_mean"].to_numpy(float),
                          "amas": scores[f"amas_{th}"].to_numpy(float),
                          "amas_p": np.nan}, index=scores["index"].astype(np.int64).to_numpy())
    pv = read_optional(PVALUES, layout.path(PVALUES, method=method))
    if pv is not None:
        pv = pv.loc[np.array([threshold_value(t) == threshold_value(th) for t in pv["threshold"]], dtype=bool)]
        p = pv["p_value"].to_numpy(float)
        bound = pv["p_bound"].to_numpy(float)
        # A P of 0 is written as its bound: a data file cannot say "< bound" and 0 would overstate.
        p = np.where((p <= 0) & np.isfinite(bound), bound, p)
        idx = pv["index"].astype(np.int64).to_numpy()
        keep = np.isin(idx, frame.index.to_numpy())
        frame.loc[idx[keep], "amas_p"] = p[keep]
    return frame, th


def build_sumstats(gwas: pd.DataFrame, methods: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """GWAS-SSF style table of the LR comparator with MAS, AMAS and AMAS P columns per method.

    Parameters
    ----------
    gwas
        ``gwas.tsv`` as read by ``annpal.results.read(GWAS, ...)``.
    methods
        ``{method: frame}`` from :func:`method_columns` (indexed by SNP index).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SSF_MANDATORY` + :data:`SSF_OPTIONAL` + ``mas_<m> amas_<m> amas_p_<m>`` per
        method (sorted by name); rows sorted by chromosome and position; missing values as NaN/None.
    """
    out = pd.DataFrame({
        "chromosome": gwas["CHR"].astype(str).map({c: ssf_chromosome(c) for c in gwas["CHR"].astype(str).unique()}
                                                  ).to_numpy(),
        "base_pair_location": gwas["BP"].astype(np.int64).to_numpy(),
        "effect_allele": gwas["A1"].astype(str).to_numpy(),
        "other_allele": gwas["A2"].astype(str).to_numpy(),
        "beta": pd.to_numeric(gwas["beta"], errors="coerce").to_numpy(),
        "standard_error": pd.to_numeric(gwas["se"], errors="coerce").to_numpy(),
        "effect_allele_frequency": pd.to_numeric(gwas["af"], errors="coerce").to_numpy(),
        # gwas.tsv's text, never 0 (P below 1e-308 is written from its logarithm)
        "p_value": gwas["p_value"].astype(str).where(~gwas["p_value"].astype(str).isin(["NA", "nan", ""])
                                                      ).to_numpy(dtype=object),
        "rsid": gwas["SNP"].astype(str).str.strip().where(gwas["SNP"].astype(str).str.strip().str.fullmatch(_RSID.pattern)
                                                           ).to_numpy(dtype=object),
        "n": pd.array(pd.to_numeric(gwas["n"], errors="coerce").round(), dtype="Int64"),
    })
    index = gwas["index"].astype(np.int64).to_numpy()
    for method in sorted(methods):
        frame = methods[method]
        for col in ("mas", "amas", "amas_p"):
            out[f"{col}_{method}"] = frame[col].reindex(index).to_numpy()
    order = np.lexsort((out["base_pair_location"].to_numpy(), chromosome_rank(gwas["CHR"])))
    return out.iloc[order].reset_index(drop=True)


def _format_floats(values: np.ndarray) -> list[str]:
    # Python's own float formatting over a list is ~2x faster than pandas' float_format path, which
    # dominated the writing of a 290 000-row file.
    return [SSF_NA if v != v else f"{v:.6g}" for v in values.astype(float).tolist()]


def write_ssf(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """Write a GWAS-SSF data file: tab-separated, ``#NA`` for missing, floats to 6 significant digits."""
    text = pd.DataFrame({c: _format_floats(table[c].to_numpy()) if pd.api.types.is_float_dtype(table[c])
                         else table[c] for c in table.columns})
    text.to_csv(path, sep="\t", index=False, na_rep=SSF_NA)


def md5sum(path: str | os.PathLike[str]) -> str:
    """Hex MD5 of a file (GWAS-SSF ``data_file_md5sum``)."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ssf_metadata(*, data_file: str | os.PathLike[str], build: str, sample_size: int,
                 case_count: int | None, control_count: int | None, n_pcs: int | None,
                 amas_thresholds: dict[str, str], is_sorted: bool = True) -> dict[str, Any]:
    """GWAS-SSF metadata (``<data file>-meta.yaml``) for the summary statistics.

    Field names follow the GWAS-SSF v1.0 metadata schema (``genome_assembly``, ``coordinate_system``,
    ``samples[].sample_size`` …, ``data_file_name``, ``file_type``, ``data_file_md5sum``,
    ``is_harmonised``, ``is_sorted``). No date is written so identical inputs give identical files.
    """
    path = Path(data_file)
    sample: dict[str, Any] = {"sample_size": int(sample_size), "case_control_study": True}
    if case_count is not None:
        sample["case_count"] = int(case_count)
    if control_count is not None:
        sample["control_count"] = int(control_count)
    notes = ("Logistic regression of case status on A1 allele count (effect allele = A1) with an "
             "intercept" + (f" and {n_pcs} genotype principal components" if n_pcs else "")
             + "; extra columns mas_<m> (mean MAS over real models), amas_<m> and amas_p_<m> (AMAS and "
             "its null P-value; a P of 0 is written as its upper bound 1/(B*M)) at threshold "
             + ", ".join(f"{m}: {t}" for m, t in sorted(amas_thresholds.items())) + ".")
    meta: dict[str, Any] = {
        "genome_assembly": build,
        "coordinate_system": "1-based",
        "samples": [sample],
        "data_file_name": path.name,
        "file_type": "GWAS-SSF v1.0",
        "data_file_md5sum": md5sum(path),
        "is_harmonised": False,
        "is_sorted": bool(is_sorted),
        "analysis_software": f"annpal {annpal.__version__} (batched IRLS logistic regression, annpal.gwas)",
        "author_notes": notes,
    }
    if n_pcs:
        meta["adjusted_covariates"] = [f"PC{i}" for i in range(1, int(n_pcs) + 1)]
    return meta


def write_yaml(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write ``data`` as block-style YAML with keys in insertion order."""
    Path(path).write_text("---\n" + yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def _sample_counts(layout: Layout) -> tuple[int | None, int | None, int | None]:
    samples = read_optional(SAMPLES, layout.path(SAMPLES), columns=["label"])
    if samples is None:
        return None, None, None
    label = samples["label"]
    return int(len(label)), int((label == 1).sum()), int((label == 0).sum())


def _write_method_files(out: Path, method: str, snps: pd.DataFrame, thresholds: list[str], loci: pd.DataFrame,
                        *, build: str, max_per_file: int) -> tuple[list[str], list[str], dict[str, Any]]:
    """LDtrait query files and FUMA lead tables of one method; returns their names and a summary."""
    ldtrait_files, fuma_files = [], []
    for name, ids in ldtrait_sets(snps, method=method, build=build, max_per_file=max_per_file).items():
        (out / "ldtrait" / name).write_text("\n".join(ids) + "\n")
        ldtrait_files.append(f"ldtrait/{name}")
    for th in thresholds:
        sub = loci[(loci["method"] == method) & (loci["threshold"] == th)]
        name = f"fuma_leads_{method}_{th}.tsv"
        leads = fuma_leads(sub)
        n_other = int((~leads["rsID"].map(is_rsid)).sum())
        if n_other:
            log.warning("%s: %d lead SNP(s) without an rsID; FUMA matches lead SNPs by rsID", name, n_other)
        leads.to_csv(out / name, sep="\t", index=False)
        fuma_files.append(name)
    summary = {
        "thresholds": thresholds,
        "n_pal": {th: int((snps["threshold"] == th).sum()) for th in thresholds},
        "n_loci": {th: int(((loci["method"] == method) & (loci["threshold"] == th)).sum()) for th in thresholds},
    }
    return ldtrait_files, fuma_files, summary


def _write_sumstats(out: Path, layout: Layout, methods: list[str], scores: dict[str, pd.DataFrame], *,
                    build: str, notes: list[str]) -> dict[str, Any] | None:
    """GWAS-SSF data file and metadata from ``R/gwas`` (None, with a note, when there is no gwas.tsv)."""
    gwas = read_optional(GWAS, layout.path(GWAS))
    if gwas is None:
        notes.append("no gwas/gwas.tsv: GWAS-SSF summary statistics not written (they need the LR comparator)")
        return None
    cols, used = {}, {}
    for method in methods:
        if method in scores:
            cols[method], used[method] = method_columns(layout.root, method, scores=scores[method])
        else:
            notes.append(f"{method}: no scores.tsv; its MAS/AMAS columns are left out of {SUMSTATS_NAME}")
    table = build_sumstats(gwas, cols)
    data_path = out / SUMSTATS_NAME
    write_ssf(data_path, table)
    n_total, n_case, n_control = _sample_counts(layout)
    sample_size = n_total if n_total is not None else int(gwas["n"].max()) if len(gwas) else 0
    record = read_optional(GWAS_RECORD, layout.path(GWAS_RECORD)) or {}
    meta = ssf_metadata(data_file=data_path, build=build, sample_size=sample_size, case_count=n_case,
                        control_count=n_control, n_pcs=record.get("n_pcs"), amas_thresholds=used)
    write_yaml(out / f"{SUMSTATS_NAME}-meta.yaml", meta)
    return {"file": SUMSTATS_NAME, "metadata": f"{SUMSTATS_NAME}-meta.yaml", "n_variants": int(len(table)),
            "amas_threshold": used}


def annotate_results(results: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                     genes: str | os.PathLike[str] | None = None, build: str = "GRCh37",
                     locus_kb: float = 100.0, gene_window_kb: float = 100.0,
                     max_per_file: int = LDTRAIT_MAX_VARIANTS) -> dict[str, Any]:
    """Write every ANNOTATE deliverable of a results layout into ``out_dir`` (docs/method.md §6).

    Parameters
    ----------
    results
        The results layout ``R`` (``R/pal`` required; ``R/pvalues``, ``R/gwas``, ``R/prepared`` used
        when present).
    out_dir
        Existing, empty folder (the caller publishes it atomically).
    genes
        Optional gene BED or GTF for positional mapping.
    build
        Genome build, written in the LDtrait file names and the GWAS-SSF metadata.
    locus_kb, gene_window_kb
        Locus gap and gene flank in kb.
    max_per_file
        LDtrait variants per file.

    Returns
    -------
    dict
        The summary also written to ``annotate.json``.

    Raises
    ------
    InputError
        No method under ``R/pal``, or a malformed input table.
    """
    layout, out = Layout(results), Path(out_dir)
    methods = layout.methods()
    if not methods:
        raise InputError(f"{layout.root / 'pal'}: no <method>/scores.tsv or pal.tsv found; point --results to a "
                         "results folder with CALL_PAL outputs under pal/<method>/")
    gene_table = read_genes(genes) if genes is not None else None
    max_gap_bp, window_bp = int(round(locus_kb * 1000)), int(round(gene_window_kb * 1000))
    notes: list[str] = []
    # Each scores.tsv is read once (290 000 rows at paper scale) and shared by every deliverable.
    scores = {m: read(SCORES, layout.path(SCORES, method=m)) for m in methods
              if layout.path(SCORES, method=m).is_file()}
    snps_of = {m: pal_snps(layout.root, m, scores=scores.get(m)) for m in methods}
    parts = [method_loci(snps_of[m][0], snps_of[m][1], method=m, max_gap_bp=max_gap_bp, genes=gene_table,
                         gene_window_bp=window_bp) for m in methods]
    parts = [p for p in parts if len(p)]
    loci = pd.concat(parts, ignore_index=True)[LOCI_COLUMNS] if parts else pd.DataFrame(columns=LOCI_COLUMNS)
    write(LOCI, out, loci)
    (out / "ldtrait").mkdir()
    ldtrait_files: list[str] = []
    fuma_files: list[str] = []
    per_method: dict[str, Any] = {}
    for method in methods:
        if not layout.path(PVALUES, method=method).is_file():
            notes.append(f"{method}: no pvalues/{method}/pvalues.tsv; lead SNPs chosen by AMAS only")
        files = _write_method_files(out, method, *snps_of[method], loci, build=build, max_per_file=max_per_file)
        ldtrait_files += files[0]
        fuma_files += files[1]
        per_method[method] = files[2]
    sumstats = _write_sumstats(out, layout, methods, scores, build=build, notes=notes)
    for note in notes:
        log.info(note)
    summary = {
        "build": build, "locus_kb": locus_kb, "gene_window_kb": gene_window_kb,
        "genes": Path(genes).name if genes is not None else None,
        "ldtrait_max_per_file": max_per_file, "methods": per_method, "n_loci": int(len(loci)),
        "ldtrait_files": ldtrait_files, "fuma_files": fuma_files, "sumstats": sumstats, "notes": notes,
        "annpal": annpal.__version__,
    }
    (out / "annotate.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
