"""Chromosome names and order, locus clumping and P-value text: each defined once, used everywhere.

Every module that compares, sorts or groups chromosomes goes through :func:`normalise_chromosome`
and :func:`chromosome_sort_key`; every module that groups SNPs into loci or detection blocks goes
through :func:`clump`; every P-value shown as text goes through :func:`format_p` /
:func:`format_neg_log10_p` (see docs/method.md §6 and "P-values").

Chromosome order (one key for the whole project):

1. positive integers in numeric order (``1``, ``2``, …, ``22``; more for other species),
2. ``X``, ``Y``, ``XY``, ``MT``,
3. any other name (contigs, scaffolds) alphabetically,
4. ``0`` (PLINK's "unplaced") last.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: PLINK's numeric codes (and ``M``) for the non-autosomes, so ``23`` in a .bim and ``chrX`` in a GTF agree.
PLINK_CHROM_CODES = {"23": "X", "24": "Y", "25": "XY", "26": "MT", "M": "MT"}
#: Non-autosomes in genomic order.
SEX_AND_MITO = ("X", "Y", "XY", "MT")
#: Significant digits of every P-value written as text.
P_DIGITS = 4
#: Below this −log10 P a double holds P itself; above it P is written from its logarithm.
_DOUBLE_NEG_LOG10_LIMIT = 300.0


def normalise_chromosome(name: object) -> str:
    """Chromosome name as annpal writes it: ``1``..``22``, ``X``, ``Y``, ``XY``, ``MT``, else as given.

    A ``chr`` prefix (any case) and surrounding blanks are dropped, leading zeros of numbers are
    dropped (``01`` → ``1``), PLINK codes 23-26 and ``M`` become X, Y, XY, MT, and ``x``/``y``/``mt``
    are upper-cased. Other names (contigs, ``0`` = unplaced) keep their spelling.

    Examples
    --------
    >>> [normalise_chromosome(c) for c in ("chr1", 1, "01", "23", "chrM", "x", "scaffold_7")]
    ['1', '1', '1', 'X', 'MT', 'X', 'scaffold_7']
    """
    text = str(name).strip()
    if text[:3].lower() == "chr":
        text = text[3:]
    if text.isdigit():
        text = str(int(text))
    upper = text.upper()
    if upper in SEX_AND_MITO:
        return upper
    return PLINK_CHROM_CODES.get(upper, text)


def normalise_chromosomes(values: Sequence[object] | np.ndarray | pd.Series) -> np.ndarray:
    """:func:`normalise_chromosome` of every element (computed once per distinct name); object array."""
    text = pd.Series(np.asarray(values, dtype=object)).astype(str)
    mapping = {name: normalise_chromosome(name) for name in pd.unique(text)}
    return text.map(mapping).to_numpy(dtype=object)


def chromosome_sort_key(name: object) -> tuple[int, int, str]:
    """Sort key putting chromosomes in genomic order (module docstring); accepts any spelling.

    Examples
    --------
    >>> sorted(["X", "0", "10", "chr2", "contig", "MT"], key=chromosome_sort_key)
    ['chr2', '10', 'X', 'MT', 'contig', '0']
    """
    c = normalise_chromosome(name)
    if c.isdigit():
        number = int(c)
        return (0, number, "") if number >= 1 else (3, number, "")
    if c in SEX_AND_MITO:
        return 1, SEX_AND_MITO.index(c), ""
    return 2, 0, c


def chromosome_rank(values: Sequence[object] | np.ndarray | pd.Series) -> np.ndarray:
    """Dense rank (0, 1, …) of each element's chromosome in genomic order; int64, input order kept.

    Equal names after :func:`normalise_chromosome` (``chr1`` and ``1``) get equal ranks.
    """
    names = normalise_chromosomes(values).astype(str)
    if names.size == 0:
        return np.zeros(0, dtype=np.int64)
    uniq, inverse = np.unique(names, return_inverse=True)
    rank_of = np.empty(len(uniq), dtype=np.int64)
    rank_of[sorted(range(len(uniq)), key=lambda i: chromosome_sort_key(uniq[i]))] = np.arange(len(uniq))
    return rank_of[inverse.ravel()]


def sorted_chromosomes(values: Sequence[object] | np.ndarray | pd.Series) -> list[str]:
    """The distinct normalised chromosome names of ``values`` in genomic order."""
    return sorted(set(normalise_chromosomes(values).tolist()), key=chromosome_sort_key)


def is_autosome(values: Sequence[object] | np.ndarray | pd.Series) -> np.ndarray:
    """True where the chromosome is one of the human autosomes 1-22 (any spelling)."""
    names = normalise_chromosomes(values)
    numeric = pd.to_numeric(pd.Series(names), errors="coerce").to_numpy(dtype=float)
    return (numeric >= 1) & (numeric <= 22)


def clump(chrom: Sequence[object] | np.ndarray | pd.Series, bp: Sequence[int] | np.ndarray, *,
          max_gap_bp: float) -> np.ndarray:
    """Locus (or detection block) number of each SNP by single linkage on position; input order kept.

    SNPs sorted by chromosome and position join the previous SNP's group when they are on the same
    chromosome and the gap is *strictly* smaller than ``max_gap_bp`` (docs/method.md §6: "closer
    than 100 kb"), so a group can span more than ``max_gap_bp``.

    Parameters
    ----------
    chrom, bp
        Chromosome (any spelling) and base-pair position of each SNP, in any order.
    max_gap_bp
        Smallest gap that starts a new group.

    Returns
    -------
    numpy.ndarray
        int64 group number per input SNP, ``0..n_groups-1`` numbered in genomic order.

    Raises
    ------
    ValueError
        ``chrom`` and ``bp`` differ in length.
    """
    pos = np.asarray(bp, dtype=np.int64).ravel()
    rank = chromosome_rank(chrom)
    if rank.shape != pos.shape:
        raise ValueError("chrom and bp must have the same length")
    n = pos.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(n), pos, rank))
    r, b = rank[order], pos[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (r[1:] != r[:-1]) | ((b[1:] - b[:-1]) >= max_gap_bp)
    out = np.empty(n, dtype=np.int64)
    out[order] = np.cumsum(new) - 1
    return out


def format_neg_log10_p(neg_log10_p: float, *, digits: int = P_DIGITS) -> str:
    """P-value text from its −log10, exact where P underflows a double (``1.234e-512``); ``NA`` if missing."""
    if neg_log10_p is None or not np.isfinite(neg_log10_p):
        return "NA"
    if neg_log10_p < _DOUBLE_NEG_LOG10_LIMIT:
        return f"{10.0 ** -neg_log10_p:.{digits}g}"
    exponent = math.floor(-neg_log10_p)
    mantissa = 10.0 ** (-neg_log10_p - exponent)
    if round(mantissa, digits - 1) >= 10.0:  # rounding would print 10.00
        mantissa, exponent = 1.0, exponent + 1
    return f"{mantissa:.{digits}g}e{exponent:+04d}".replace("e+", "e")


def format_p(p_value: float | None, *, bound: float | None = None, digits: int = P_DIGITS) -> str:
    """P-value text for people and tables: never ``0``.

    A P-value of 0 (no null draw reached the observed value) is written ``< bound`` with the smallest
    non-zero P-value the run could give (docs/method.md §5), or ``< bound`` literally when
    that is unknown; a missing value is ``NA``.

    Examples
    --------
    >>> format_p(0.00123456), format_p(0.0, bound=1 / (100 * 290522)), format_p(float("nan"))
    ('0.001235', '< 3.442e-08', 'NA')
    """
    if p_value is None or not np.isfinite(p_value):
        return "NA"
    if p_value <= 0:
        if bound is not None and np.isfinite(bound) and bound > 0:
            return f"< {bound:.{digits}g}"
        return "< bound"
    return f"{p_value:.{digits}g}"


__all__ = [
    "PLINK_CHROM_CODES", "P_DIGITS", "SEX_AND_MITO", "chromosome_rank", "chromosome_sort_key", "clump",
    "format_neg_log10_p", "format_p", "is_autosome", "normalise_chromosome", "normalise_chromosomes",
    "sorted_chromosomes",
]
