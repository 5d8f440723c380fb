"""Evaluation of detections against the simulation truth (docs/method.md §9).

Definitions (the paper's Results, "Simulations"; the ±50 kb window is a reconstructed value and a
parameter):

* **Detected SNPs** of a method at a threshold: the PAL SNPs (``pal.tsv`` rows of that θ) for IG/SM/PM,
  or the SNPs with P ≤ t and status ``ok`` for the linear comparator (LR: logistic regression, or
  linear regression for a quantitative trait; the rule is the same). With the AMAS P-values
  of a method (``pvalues.tsv``), also the PAL SNPs of θ with AMAS P ≤ t, as in the paper's Fig. 2. An
  AMAS P of 0 means "P < bound" (``p_bound`` = 1/(B·M), the smallest P a run can resolve): it counts as
  ≤ t for every t ≥ bound and, being unknown below the bound, not for smaller t.
* **Blocks**: detected SNPs sorted by position on each chromosome; consecutive SNPs closer than
  ``block_bp`` (strictly) join one block (single linkage, so a block can be longer than ``block_bp``).
* A block is a **true positive** when any of its SNPs lies within ±``window_bp`` (inclusive) of a causal
  SNP on the same chromosome, else a **false positive**. Precision = TP / blocks (NaN without blocks).
* **Causal loci**: every distinct causal SNP of the truth table is one locus — dominant, recessive and
  each member of a two- or three-way interaction alike (an interaction pair therefore counts as two
  loci). A locus is **hit** when any detected SNP lies within ±``window_bp`` of it. Recall = loci hit /
  loci. Causal SNPs closer to each other than the window are still separate loci: one detected block
  may hit several.

Chromosome names are compared after :func:`annpal.genome.normalise_chromosome` (``chr1`` = ``1``,
``23`` = ``X``); blocks are :func:`annpal.genome.clump` groups.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from annpal.genome import clump, normalise_chromosomes
from annpal.results import EVALUATION, GWAS, PAL, PVALUES, TRUTH, as_bool, read

#: Columns read from each input (declared, with their dtypes, in :mod:`annpal.results`).
PAL_COLUMNS = ["threshold", "SNP", "CHR", "BP", "index", "pal_common"]
GWAS_COLUMNS = ["index", "CHR", "BP", "SNP", "neg_log10_p", "status"]
PVALUE_COLUMNS = ["threshold", "index", "p_value", "p_bound"]
#: ``threshold`` is θ (NA for LR), ``p_threshold`` the P threshold (NA for unthresholded PAL rows).
EVALUATION_COLUMNS = EVALUATION.names


#: The paper's names for the two PAL thresholds (IG_strict, IG_relaxed in its Fig. 2).
THETA_NAMES = {99.99: "strict", 99.95: "relaxed"}


def series_label(method: str, threshold: object = None) -> str:
    """Name of one method line of a Fig. 2-style panel: ``LR``, ``IG_strict`` (θ 99.99), ``SM θ=99.9``."""
    try:
        theta = float(threshold)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        theta = math.nan
    if math.isnan(theta):
        return method.upper()
    name = THETA_NAMES.get(theta)
    return f"{method.upper()}_{name}" if name else f"{method.upper()} θ={threshold}"


@dataclass(frozen=True)
class Evaluation:
    """Counts for one method at one threshold (docs/method.md §9)."""

    n_detected: int
    n_blocks: int
    tp: int
    fp: int
    precision: float
    recall: float
    n_causal_loci: int
    n_causal_hit: int


def _nearest_distance(chrom: np.ndarray, bp: np.ndarray, ref_chrom: np.ndarray, ref_bp: np.ndarray) -> np.ndarray:
    """Distance (bp) from each (chrom, bp) to the nearest reference position on its chromosome (inf if none)."""
    out = np.full(bp.size, np.inf)
    for c in np.unique(chrom):
        ref = np.sort(ref_bp[ref_chrom == c])
        if ref.size == 0:
            continue
        sel = np.flatnonzero(chrom == c)
        x = bp[sel]
        pos = np.searchsorted(ref, x)
        left = np.abs(x - ref[np.clip(pos - 1, 0, ref.size - 1)])
        right = np.abs(ref[np.clip(pos, 0, ref.size - 1)] - x)
        out[sel] = np.minimum(left, right)
    return out


def evaluate_detections(det_chrom: Sequence | np.ndarray, det_bp: Sequence | np.ndarray,
                        causal_chrom: Sequence | np.ndarray, causal_bp: Sequence | np.ndarray, *,
                        window_bp: float = 50_000, block_bp: float = 100_000) -> Evaluation:
    """Blocks, TP/FP, precision and recall of one set of detected SNPs (docs/method.md §9).

    Parameters
    ----------
    det_chrom, det_bp
        Chromosome and position of the detected SNPs.
    causal_chrom, causal_bp
        Chromosome and position of the causal loci (one entry per distinct causal SNP).
    window_bp
        A detected SNP within this distance (inclusive) of a causal SNP is near it.
    block_bp
        Detected SNPs closer than this (strictly) on one chromosome join a block.

    Returns
    -------
    Evaluation
        ``precision`` is NaN when nothing is detected, ``recall`` NaN without causal loci.
    """
    dc, db = normalise_chromosomes(det_chrom), np.asarray(det_bp, dtype=np.int64)
    cc, cb = normalise_chromosomes(causal_chrom), np.asarray(causal_bp, dtype=np.int64)
    blocks = clump(dc, db, max_gap_bp=block_bp)
    n_blocks = int(blocks.max() + 1) if blocks.size else 0
    near = _nearest_distance(dc, db, cc, cb) <= window_bp
    tp_blocks = np.zeros(n_blocks, dtype=bool)
    np.logical_or.at(tp_blocks, blocks, near)
    tp = int(tp_blocks.sum())
    hit = _nearest_distance(cc, cb, dc, db) <= window_bp
    n_loci = int(cb.size)
    return Evaluation(
        n_detected=int(db.size), n_blocks=n_blocks, tp=tp, fp=n_blocks - tp,
        precision=tp / n_blocks if n_blocks else math.nan,
        recall=int(hit.sum()) / n_loci if n_loci else math.nan,
        n_causal_loci=n_loci, n_causal_hit=int(hit.sum()),
    )


# ----------------------------------------------------------------------------------------------
# Files


def read_truth(path: str | Path) -> pd.DataFrame:
    """The truth table (``SNP CHR BP role partners weight``, from annpal-simulate) as causal loci.

    Returns one row per distinct causal SNP (duplicates by SNP ID dropped) with normalised ``CHR``.
    """
    truth = read(TRUTH, path)
    truth = truth.assign(CHR=normalise_chromosomes(truth["CHR"]))
    return truth.drop_duplicates(subset=["SNP"]).reset_index(drop=True)


def read_pal(path: str | Path) -> pd.DataFrame:
    """PAL SNPs (``pal.tsv`` from annpal-call-pal); ``threshold`` kept as text (``99.99``)."""
    return read(PAL, path, columns=PAL_COLUMNS)


def read_gwas(path: str | Path) -> pd.DataFrame:
    """Linear comparator results (``gwas.tsv`` from annpal-gwas: logistic or linear regression)."""
    return read(GWAS, path, columns=GWAS_COLUMNS)


def parse_p_thresholds(text: str) -> list[tuple[str, float]]:
    """``"1e-3,1.7e-7"`` → ``[("1e-3", 0.001), ("1.7e-7", 1.7e-07)]``; labels kept as written."""
    out = []
    for part in text.split(","):
        label = part.strip()
        try:
            value = float(label)
        except ValueError:
            raise ValueError(f"P threshold {label!r} is not a number; give e.g. 1e-3,1e-5") from None
        if not 0 < value < 1:
            raise ValueError(f"P threshold {label!r} must lie in (0, 1)")
        out.append((label, value))
    if not out:
        raise ValueError("no P threshold given")
    return out


def read_pvalues(path: str | Path) -> pd.DataFrame:
    """AMAS P-values of one method (``pvalues.tsv`` from annpal-pvalues); ``threshold`` kept as text."""
    return read(PVALUES, path, columns=PVALUE_COLUMNS)


def p_at_most(p_value: np.ndarray, p_bound: np.ndarray, t: float) -> np.ndarray:
    """AMAS P ≤ ``t``, where ``p_value == 0`` stands for "P < ``p_bound``".

    A resolved P (> 0) passes when P ≤ t. "P < bound" passes for every t ≥ bound (then P < bound ≤ t);
    below the bound the P-value is unknown and the SNP does not pass, so a threshold finer than the run
    can resolve never credits a method with detections it cannot show.
    """
    p = np.asarray(p_value, dtype=float)
    bound = np.asarray(p_bound, dtype=float)
    return np.where(p > 0, p <= t, bound <= t)


def _pal_p_values(pal: pd.DataFrame, pvalues: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(p_value, p_bound)`` of each PAL row, joined on (θ as a number, SNP index); NaN when absent."""
    key = {(float(t), int(i)): (p, b) for t, i, p, b in zip(
        pvalues["threshold"], pvalues["index"], pvalues["p_value"], pvalues["p_bound"], strict=True)}
    got = [key.get((float(t), int(i)), (math.nan, math.nan)) for t, i in zip(pal["threshold"], pal["index"],
                                                                             strict=True)]
    return np.array([g[0] for g in got], dtype=float), np.array([g[1] for g in got], dtype=float)


def evaluate_pal(pal: pd.DataFrame, truth: pd.DataFrame, *, method: str, thresholds: Sequence[str] = (),
                 common: bool = False, pvalues: pd.DataFrame | None = None,
                 p_thresholds: Sequence[tuple[str, float]] = (), window_bp: float = 50_000,
                 block_bp: float = 100_000) -> list[dict]:
    """Rows of ``evaluation.tsv`` for one PAL table: one per θ (``thresholds`` first, in that order, so a
    θ without PAL SNPs still gets its row, then any other θ found in the file), ``p_threshold`` NA.

    With ``pvalues`` (the method's ``pvalues.tsv``) also one row per θ and P threshold ``t`` from the PAL
    SNPs of θ with AMAS P ≤ t (:func:`p_at_most`); a PAL SNP without a P-value never passes.
    With ``common=True`` every row is repeated as ``<method>-common`` from the PAL-common SNPs.
    """
    labels = list(dict.fromkeys([str(t) for t in thresholds] + pal["threshold"].astype(str).tolist()))
    flags = pd.Series(as_bool(pal["pal_common"]))
    variants = [(method, np.ones(len(pal), dtype=bool))]
    if common:
        variants.append((f"{method}-common", flags.to_numpy()))
    levels: list[tuple[str | None, np.ndarray]] = [(None, np.ones(len(pal), dtype=bool))]
    if pvalues is not None:
        p, bound = _pal_p_values(pal, pvalues)
        levels += [(label, p_at_most(p, bound, t)) for label, t in p_thresholds]
    rows = []
    for name, mask in variants:
        for label in labels:
            theta = mask & (pal["threshold"].astype(str) == label).to_numpy()
            for p_label, passes in levels:
                sel = theta & passes
                ev = evaluate_detections(pal["CHR"][sel], pal["BP"][sel], truth["CHR"], truth["BP"],
                                         window_bp=window_bp, block_bp=block_bp)
                rows.append({"method": name, "threshold": label, "p_threshold": p_label, **asdict(ev)})
    return rows


def evaluate_gwas(gwas: pd.DataFrame, truth: pd.DataFrame, *, thresholds: Sequence[tuple[str, float]],
                  method: str = "lr", window_bp: float = 50_000, block_bp: float = 100_000) -> list[dict]:
    """Rows of ``evaluation.tsv`` for the linear comparator: detected = status ``ok`` and P ≤ t
    (``threshold`` None, ``p_threshold`` the label of t).

    The comparison uses ``neg_log10_p ≥ −log10 t`` so P-values below double precision still count.
    """
    nlp = pd.to_numeric(gwas["neg_log10_p"], errors="coerce").to_numpy(dtype=float)
    ok = (gwas["status"].astype(str) == "ok").to_numpy() & np.isfinite(nlp)
    rows = []
    for label, t in thresholds:
        sel = ok & (nlp >= -math.log10(t))
        ev = evaluate_detections(gwas["CHR"][sel], gwas["BP"][sel], truth["CHR"], truth["BP"],
                                 window_bp=window_bp, block_bp=block_bp)
        rows.append({"method": method, "threshold": None, "p_threshold": label, **asdict(ev)})
    return rows
