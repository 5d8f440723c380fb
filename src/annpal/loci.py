"""PAL SNPs grouped into loci, lead SNPs and positional gene mapping (docs/method.md §6).

A locus is a run of PAL SNPs on one chromosome in which each SNP lies *closer than* ``max_gap_bp``
(100 kb) to the previous one (single linkage on sorted positions, so a locus can span more than
100 kb). Its lead SNP has the smallest AMAS P-value, ties (for example several P-values of 0) broken
by the largest AMAS and then the smallest position. Genes are mapped positionally: a gene is listed
for a locus when it overlaps ``[start − window, end + window]`` (paper: genes within ±100 kb of the
detected SNPs of a PAL).

The readers at the bottom take the results layout ``R`` (:class:`annpal.results.Layout`:
``R/pal/<method>/scores.tsv`` or ``pal.tsv``, ``R/pvalues/<method>/pvalues.tsv``).
"""

from __future__ import annotations

import gzip
import logging
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from annpal.errors import InputError
from annpal.genome import clump, format_p, normalise_chromosome
from annpal.results import (
    LOCI,
    PAL,
    PVALUES,
    SCORES,
    Layout,
    read,
    read_optional,
    threshold_value,
    thresholds_of,
)

log = logging.getLogger(__name__)

#: Column order of ``loci.tsv`` (declared in :mod:`annpal.results`).
LOCI_COLUMNS = LOCI.names
#: Columns of the per-SNP PAL table the locus functions take.
PAL_SNP_COLUMNS = ["threshold", "index", "SNP", "CHR", "BP", "amas", "p_value", "p_bound", "p_text"]
#: ``genes`` value when no gene annotation was given / when it was given but no gene is near.
NO_GENE_FILE, NO_GENE_NEAR = "NA", "."

def call_loci(pal: pd.DataFrame, *, max_gap_bp: int = 100_000) -> pd.DataFrame:
    """Group the PAL SNPs of one method and threshold into loci and pick their lead SNPs.

    Parameters
    ----------
    pal
        One row per PAL SNP with columns ``SNP CHR BP amas`` and optionally ``p_value p_bound p_text``
        (missing P-values sort after every present one, so the lead is then the largest AMAS).
    max_gap_bp
        See :func:`annpal.genome.clump`.

    Returns
    -------
    pandas.DataFrame
        Columns ``locus chr start end n_snps lead_snp lead_bp lead_p lead_p_text lead_amas snps``; one
        row per locus in genomic order, ``locus`` numbered from 1, ``snps`` comma-separated by position.
    """
    cols = ["locus", "chr", "start", "end", "n_snps", "lead_snp", "lead_bp", "lead_p", "lead_p_text",
            "lead_amas", "snps"]
    if len(pal) == 0:
        return pd.DataFrame(columns=cols)
    df = pal.reset_index(drop=True).copy()
    for col in ("p_value", "p_bound"):
        if col not in df:
            df[col] = np.nan
    df["p_value"] = pd.to_numeric(df["p_value"], errors="coerce")
    df["_locus"] = clump(df["CHR"].to_numpy(), df["BP"].to_numpy(), max_gap_bp=max_gap_bp)
    rows = []
    for locus_id, group in df.groupby("_locus", sort=True):
        g = group.sort_values("BP", kind="stable")
        # Lead: smallest P (missing last), then largest AMAS, then smallest position.
        p_key = g["p_value"].fillna(np.inf).to_numpy()
        lead_pos = np.lexsort((g["BP"].to_numpy(), -g["amas"].to_numpy(dtype=float), p_key))[0]
        lead = g.iloc[lead_pos]
        p = float(lead["p_value"])
        text = lead.get("p_text") if "p_text" in g else None
        if not isinstance(text, str) or not text or text == "nan":
            text = format_p(p, bound=float(lead["p_bound"]) if pd.notna(lead["p_bound"]) else None)
        rows.append({
            "locus": int(locus_id) + 1,
            "chr": str(lead["CHR"]),
            "start": int(g["BP"].min()),
            "end": int(g["BP"].max()),
            "n_snps": int(len(g)),
            "lead_snp": str(lead["SNP"]),
            "lead_bp": int(lead["BP"]),
            "lead_p": p,
            "lead_p_text": text,
            "lead_amas": float(lead["amas"]),
            "snps": ",".join(g["SNP"].astype(str)),
        })
    return pd.DataFrame(rows, columns=cols)


# ----------------------------------------------------------------------------------------------------
# Genes


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt")
    return open(path)


def _is_gtf(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".gtf", ".gff", ".gff3")):
        return True
    if name.endswith(".bed"):
        return False
    with _open_text(path) as fh:
        for line in fh:
            if line.startswith(("#", "track", "browser")) or not line.strip():
                continue
            return len(line.rstrip("\n").split("\t")) >= 9
    return False


_GTF_ATTR = re.compile(r'(\w+)[ =]"?([^";]*)"?')


def read_genes(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a gene annotation: BED (``chrom start end name``) or GTF/GFF (feature ``gene``).

    BED starts are 0-based (half-open) and converted to 1-based inclusive; GTF coordinates are already
    1-based inclusive. GTF names come from ``gene_name`` (else ``gene_id``; GFF3 ``Name``/``ID``). The
    format is chosen by the extension (``.bed``, ``.gtf``, ``.gff``, optionally ``.gz``), else by the
    column count of the first data line.

    Returns
    -------
    pandas.DataFrame
        ``chrom start end name`` with ``chrom`` normalised by :func:`annpal.genome.normalise_chromosome`.

    Raises
    ------
    InputError
        The file is malformed or holds no genes.
    """
    p = Path(path)
    gtf = _is_gtf(p)
    records: list[tuple[str, int, int, str]] = []
    with _open_text(p) as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.startswith(("#", "track", "browser")) or not line.strip():
                continue
            f = line.rstrip("\n").split("\t")
            try:
                if gtf:
                    if len(f) < 9:
                        raise ValueError("fewer than 9 columns")
                    if f[2] != "gene":
                        continue
                    attrs = dict(_GTF_ATTR.findall(f[8]))
                    name = attrs.get("gene_name") or attrs.get("Name") or attrs.get("gene_id") or attrs.get("ID")
                    records.append((normalise_chromosome(f[0]), int(f[3]), int(f[4]), name or "."))
                else:
                    if len(f) < 4:
                        f = line.split()
                    if len(f) < 4:
                        raise ValueError("fewer than 4 columns (chrom start end name)")
                    records.append((normalise_chromosome(f[0]), int(f[1]) + 1, int(f[2]), f[3]))
            except ValueError as exc:
                kind = "GTF" if gtf else "BED"
                raise InputError(
                    f"{p}:{lineno}: not a valid {kind} line ({exc}); give a BED with chrom start end name "
                    "or a GTF with gene features"
                ) from None
    if not records:
        raise InputError(f"{p}: no genes found (BED rows or GTF 'gene' features); check --genes")
    return pd.DataFrame(records, columns=["chrom", "start", "end", "name"])


def map_genes(loci: pd.DataFrame, genes: pd.DataFrame, *, window_bp: int = 100_000) -> list[str]:
    """Genes overlapping each locus ± ``window_bp`` (positional mapping, docs/method.md §6).

    Parameters
    ----------
    loci
        Columns ``chr start end``.
    genes
        From :func:`read_genes` (1-based inclusive coordinates).
    window_bp
        Flank added to both sides of the locus.

    Returns
    -------
    list of str
        Per locus the unique gene names sorted by gene start, comma-separated, or ``"."`` when none.
    """
    by_chrom = {c: g.sort_values(["start", "end", "name"]) for c, g in genes.groupby("chrom")}
    out = []
    for chrom, start, end in zip(loci["chr"], loci["start"], loci["end"], strict=True):
        g = by_chrom.get(normalise_chromosome(chrom))
        if g is None:
            out.append(NO_GENE_NEAR)
            continue
        lo, hi = int(start) - window_bp, int(end) + window_bp
        hit = g[(g["end"] >= lo) & (g["start"] <= hi)]
        names = list(dict.fromkeys(hit["name"].astype(str)))
        out.append(",".join(names) if names else NO_GENE_NEAR)
    return out


# ----------------------------------------------------------------------------------------------------
# Results layout readers


def pal_snps(results: str | os.PathLike[str], method: str, *, scores: pd.DataFrame | None = None
             ) -> tuple[pd.DataFrame, list[str]]:
    """The PAL SNPs of one method, every threshold, joined with their AMAS P-values.

    ``scores`` is the method's scores.tsv when the caller has read it already.

    PAL membership and AMAS come from ``scores.tsv`` (``pal_<θ>``, ``amas_<θ>``; it lists every
    threshold even when one has no PAL SNP), else from ``pal.tsv``. P-values are joined from
    ``R/pvalues/<method>/pvalues.tsv`` on (threshold, SNP index) when that file exists.

    Returns
    -------
    (pandas.DataFrame, list of str)
        Rows with :data:`PAL_SNP_COLUMNS`, and the threshold labels in file order.
    """
    layout = Layout(results)
    scores_path = layout.path(SCORES, method=method)
    frames = []
    if scores is not None or scores_path.is_file():
        if scores is None:
            scores = read(SCORES, scores_path)
        thresholds = thresholds_of(scores)
        for th in thresholds:
            sub = scores.loc[scores[f"pal_{th}"].to_numpy(bool), ["index", "SNP", "CHR", "BP", f"amas_{th}"]]
            sub = sub.rename(columns={f"amas_{th}": "amas"})
            sub.insert(0, "threshold", th)
            frames.append(sub)
    else:
        pal = read(PAL, layout.path(PAL, method=method))
        thresholds = list(dict.fromkeys(pal["threshold"]))
        frames.append(pal[["threshold", "index", "SNP", "CHR", "BP", "amas"]])
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PAL_SNP_COLUMNS[:6])
    df["p_value"], df["p_bound"], df["p_text"] = np.nan, np.nan, None
    pv = read_optional(PVALUES, layout.path(PVALUES, method=method)) if len(df) else None
    if pv is not None:
        pv_map = {(threshold_value(t), int(i)): (pval, bound, text) for t, i, pval, bound, text in zip(
            pv["threshold"], pv["index"], pv["p_value"], pv["p_bound"], pv["p_text"], strict=True)}
        got = [pv_map.get((threshold_value(t), int(i)), (np.nan, np.nan, None))
               for t, i in zip(df["threshold"], df["index"], strict=True)]
        df["p_value"] = [g[0] for g in got]
        df["p_bound"] = [g[1] for g in got]
        df["p_text"] = [g[2] if isinstance(g[2], str) else None for g in got]
    df["index"] = df["index"].astype(np.int64)
    df["BP"] = df["BP"].astype(np.int64)
    return df[PAL_SNP_COLUMNS].reset_index(drop=True), [str(t) for t in thresholds]


def loci_table(results: str | os.PathLike[str], *, methods: Iterable[str] | None = None,
               max_gap_bp: int = 100_000, genes: pd.DataFrame | None = None,
               gene_window_bp: int = 100_000) -> pd.DataFrame:
    """``loci.tsv`` for every method and threshold of a results folder (docs/method.md §6).

    Parameters
    ----------
    results
        The results layout ``R``.
    methods
        Methods to include (default: every one under ``R/pal``).
    max_gap_bp
        Locus gap (see :func:`annpal.genome.clump`).
    genes, gene_window_bp
        Optional gene table (:func:`read_genes`) and flank for :func:`map_genes`; without genes the
        ``genes`` column is ``NA``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LOCI_COLUMNS`.
    """
    parts = []
    for method in (Layout(results).methods() if methods is None else list(methods)):
        snps, thresholds = pal_snps(results, method)
        loci = method_loci(snps, thresholds, method=method, max_gap_bp=max_gap_bp, genes=genes,
                           gene_window_bp=gene_window_bp)
        if len(loci):
            parts.append(loci)
    if not parts:
        return pd.DataFrame(columns=LOCI_COLUMNS)
    return pd.concat(parts, ignore_index=True)[LOCI_COLUMNS]


def method_loci(snps: pd.DataFrame, thresholds: Sequence[str], *, method: str, max_gap_bp: int = 100_000,
                genes: pd.DataFrame | None = None, gene_window_bp: int = 100_000) -> pd.DataFrame:
    """Loci of one method at every threshold (rows of ``loci.tsv``), from :func:`pal_snps` output."""
    parts = []
    for th in thresholds:
        loci = call_loci(snps[snps["threshold"] == th], max_gap_bp=max_gap_bp)
        if loci.empty:
            continue
        loci.insert(0, "threshold", th)
        loci.insert(0, "method", method)
        loci["genes"] = map_genes(loci, genes, window_bp=gene_window_bp) if genes is not None else NO_GENE_FILE
        parts.append(loci)
    if not parts:
        return pd.DataFrame(columns=LOCI_COLUMNS)
    return pd.concat(parts, ignore_index=True)[LOCI_COLUMNS]
