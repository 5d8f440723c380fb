"""Chromosome names and order, clumping and P-value text (annpal.genome): one definition each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from annpal.genome import (
    chromosome_rank,
    chromosome_sort_key,
    clump,
    format_neg_log10_p,
    format_p,
    is_autosome,
    normalise_chromosome,
    normalise_chromosomes,
    sorted_chromosomes,
)


@pytest.mark.parametrize(("raw", "expected"), [
    ("1", "1"), (1, "1"), ("chr1", "1"), ("CHR22", "22"), ("CHR7", "7"), ("01", "1"), (" chr22 ", "22"),
    ("23", "X"), ("x", "X"), ("chrX", "X"), ("24", "Y"), ("25", "XY"), ("26", "MT"), ("M", "MT"),
    ("chrM", "MT"), ("MT", "MT"), ("0", "0"), ("scaffold_7", "scaffold_7"),
])
def test_normalise_chromosome__names(raw, expected):
    assert normalise_chromosome(raw) == expected


def test_normalise_chromosomes__vectorised_matches_scalar():
    raw = ["chr1", "1", "23", "X", "chrM", "contig"] * 3
    assert normalise_chromosomes(pd.Series(raw)).tolist() == [normalise_chromosome(c) for c in raw]
    assert normalise_chromosomes(np.array(raw)).tolist() == [normalise_chromosome(c) for c in raw]


def test_chromosome_sort_key__one_genomic_order():
    # 1-22 numerically, X Y XY MT, other names alphabetically, 0 (unplaced) last.
    names = ["X", "10", "2", "MT", "chr1", "Y", "contig", "0", "22", "XY", "GL000192.1"]
    assert sorted(names, key=chromosome_sort_key) == [
        "chr1", "2", "10", "22", "X", "Y", "XY", "MT", "GL000192.1", "contig", "0"]


def test_chromosome_rank__dense_and_agrees_with_key():
    names = ["X", "10", "2", "chr2", "0", "contig", "23"]
    assert chromosome_rank(names).tolist() == [2, 1, 0, 0, 4, 3, 2]
    assert chromosome_rank([]).tolist() == []
    assert sorted_chromosomes(names) == ["2", "10", "X", "contig", "0"]


def test_is_autosome__spellings():
    assert is_autosome(["1", "chr22", "23", "X", "0", "contig", "01"]).tolist() == [
        True, True, False, False, False, False, True]


def test_clump__gap_rule():
    # Hand-made: gaps of 99 999 bp join, a gap of exactly 100 000 bp splits ("closer than 100 kb").
    chrom = ["1", "1", "1", "1", "2", "1"]
    bp = [50_000, 100, 149_999, 249_999, 100, 400_000]
    # sorted chr1: 100, 50 000, 149 999 | 249 999 | 400 000 ; chr2: 100
    assert clump(chrom, bp, max_gap_bp=100_000).tolist() == [0, 0, 0, 1, 3, 2]


def test_clump__gap_equal_to_max_splits():
    assert clump(["1", "1", "1"], [0, 100_000, 199_999], max_gap_bp=100_000).tolist() == [0, 1, 1]


def test_clump__single_linkage_spans_beyond_gap():
    assert clump(["3"] * 4, [0, 90_000, 180_000, 270_000], max_gap_bp=100_000).tolist() == [0, 0, 0, 0]


def test_clump__chromosome_boundary_and_spellings():
    ids = clump(["chr1", "1", "2", "chr2", "23", "X"], [1000, 2000, 1000, 2000, 5, 10], max_gap_bp=100_000)
    assert ids.tolist() == [0, 0, 1, 1, 2, 2]


def test_clump__empty_and_length_mismatch():
    assert clump([], [], max_gap_bp=10).tolist() == []
    with pytest.raises(ValueError, match="same length"):
        clump(["1"], [1, 2], max_gap_bp=10)


@pytest.mark.parametrize(("p", "bound", "text"), [
    (0.0123, None, "0.0123"), (0.0, 3.33e-5, "< 3.33e-05"), (0.0, None, "< bound"), (np.nan, None, "NA"),
    (None, None, "NA"), (2.5e-8, 1e-9, "2.5e-08"), (0.00123456, 1e-8, "0.001235"),
    (0.0, 1 / (100 * 290522), "< 3.442e-08"),
])
def test_format_p__cases(p, bound, text):
    assert format_p(p, bound=bound) == text


@pytest.mark.parametrize(("nlp", "text"), [
    (2.0, "0.01"), (512.30103, "5e-513"), (330.0, "1e-330"), (float("nan"), "NA"),
    (300.0 + 1e-9, "1e-300"),  # mantissa 9.99999… rounds up to the next power of ten
])
def test_format_neg_log10_p__never_zero(nlp, text):
    assert format_neg_log10_p(nlp) == text


def test_format_neg_log10_p__agrees_with_format_p_where_a_double_holds_p():
    for p in (0.5, 1.234567e-5, 3e-120):
        assert format_neg_log10_p(-np.log10(p)) == format_p(p)
