"""annpal.pal: PAL, counts and AMAS against the authors' 4_get_pal.py loops (docs/method.md §4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from authors_reference import authors_pal
from conftest import make_genotypes

from annpal.ld import banded_abs_r
from annpal.pal import (
    amas_from_counts,
    call_pal,
    detect,
    detected_union,
    ld_counts,
    pal_table,
    parse_thresholds,
    score_table,
)


def make_mas(n_models: int, n_snps: int, *, seed: int, hot: tuple[int, ...], edge: int = 21) -> np.ndarray:
    """MAS-like rows: shared signal at ``hot`` SNPs (and their neighbours), model noise, quiet edges so
    no detected SNP sits within ``edge`` of either end (the authors' wrap bug stays silent)."""
    rng = np.random.default_rng(seed)
    base = rng.exponential(1.0, n_snps)
    for h in hot:
        base[h] += 30.0
    mas = base[None, :] * rng.lognormal(0, 0.6, (n_models, n_snps))
    mas[:, :edge] *= 1e-3
    mas[:, -edge:] *= 1e-3
    return mas / mas.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def one_chrom():
    g = make_genotypes(300, 600, seed=11, ld_block=8)
    mas = make_mas(6, 600, seed=1, hot=(100, 103, 250, 251, 400, 520))
    return g, mas


@pytest.mark.parametrize("theta", [99.0, 99.5, 99.9])
def test_call_pal__matches_authors_one_chromosome(one_chrom, theta: float) -> None:
    g, mas = one_chrom
    band = banded_abs_r(g, chromosomes=np.ones(600), window=20, dtype=np.float64)
    (res,) = call_pal(mas, band=band, thresholds=[("x", theta)], ld_r=0.5)
    counts, amas, pal, common = authors_pal(g.astype(int), mas, theta)
    assert min(counts) >= 0  # edges quiet: no negative (wrapped) index was appended
    np.testing.assert_array_equal(res.counts, [counts[i] for i in range(600)])
    np.testing.assert_array_equal(res.amas, amas)  # bit-identical
    np.testing.assert_array_equal(np.flatnonzero(res.pal), pal)
    np.testing.assert_array_equal(np.flatnonzero(res.pal_common), common)
    assert res.counts.max() > 1  # some SNPs are shared between models


def test_call_pal__several_chromosomes_match_fixed_authors_loop() -> None:
    g = make_genotypes(300, 300, seed=4, ld_block=10)
    chrom = np.repeat(["1", "2", "3"], 100)
    # Make the last SNPs of chr1 copies of the first SNPs of chr2 so a crossing window would count.
    g[:, 95:100] = g[:, 100:105]
    mas = make_mas(5, 300, seed=2, hot=(97, 205))
    band = banded_abs_r(g, chromosomes=chrom, window=20, dtype=np.float64)
    (res,) = call_pal(mas, band=band, thresholds=[("99", 99.0)])
    counts, amas, pal, common = authors_pal(g.astype(int), mas, 99.0, chrom=chrom)
    np.testing.assert_array_equal(res.counts, [counts[i] for i in range(300)])
    np.testing.assert_array_equal(res.amas, amas)
    np.testing.assert_array_equal(np.flatnonzero(res.pal), pal)
    # Without the fix the authors' loop credits SNPs across the chr1/chr2 boundary.
    crossing, _, _, _ = authors_pal(g.astype(int), mas, 99.0)
    assert any(crossing[i] > 0 and res.counts[i] == 0 for i in range(100, 118))
    for det in (detect(row, theta=99.0) for row in mas):
        for i in det:
            lo, hi = np.searchsorted(chrom, chrom[i], "left"), np.searchsorted(chrom, chrom[i], "right")
            assert lo <= i < hi


def test_detect__strict_greater_than_linear_percentile() -> None:
    row = np.arange(10, dtype=float)  # percentile 80 = 7.2 → 8, 9
    np.testing.assert_array_equal(detect(row, theta=80), [8, 9])
    np.testing.assert_array_equal(detect(np.ones(10), theta=50), [])  # ties at the cut: nothing


def test_ld_counts__hand_example() -> None:
    band = np.zeros((6, 2))  # w = 1: columns offsets -1, +1
    band[2, 1] = 0.9  # r(2, 3)
    band[4, 0] = 0.4  # r(4, 3) below the cut
    counts = ld_counts([np.array([2]), np.array([2, 4]), np.array([5])], band=band, ld_r=0.5)
    np.testing.assert_array_equal(counts, [0, 0, 2, 2, 1, 1])


def test_amas_from_counts__hand_example() -> None:
    mu = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    counts = np.array([0, 2, 0, 1, 2])
    amas, t, weight = amas_from_counts(mu, counts, theta=50, n_models=2)  # T = 3
    assert t == 3.0
    np.testing.assert_array_equal(amas, [1.0, 2.0, 3.0, 2.0, 5.0])
    np.testing.assert_array_equal(weight, [1, 1, 1, 0.5, 1])


def test_call_pal__two_thresholds_and_union(one_chrom) -> None:
    g, mas = one_chrom
    rows = detected_union(mas, thetas=[99.9, 99.0])
    band = banded_abs_r(g, chromosomes=np.ones(600), snps=rows)
    strict, relaxed = call_pal(mas, band=band, thresholds=[("99.9", 99.9), ("99", 99.0)])
    assert strict.label == "99.9" and relaxed.label == "99"
    assert strict.pal.sum() <= relaxed.pal.sum()
    np.testing.assert_array_equal(strict.n_detected, [1] * 6)
    np.testing.assert_array_equal(relaxed.n_detected, [6] * 6)
    with pytest.raises(ValueError, match="not computed"):
        call_pal(mas, band=banded_abs_r(g, chromosomes=np.ones(600), snps=rows[:1]), thresholds=[("99", 99.0)])


@pytest.mark.parametrize(("text", "expected"), [
    ("99.99,99.95", [("99.99", 99.99), ("99.95", 99.95)]),
    (" 99.9 ", [("99.9", 99.9)]),
    ("50", [("50", 50.0)]),
])
def test_parse_thresholds__ok(text: str, expected) -> None:
    assert parse_thresholds(text) == expected


@pytest.mark.parametrize("text", ["", "99.99,", "abc", "100", "0", "-1", "99.9,99.90"])
def test_parse_thresholds__bad(text: str) -> None:
    with pytest.raises(ValueError):
        parse_thresholds(text)


def test_score_table__columns_and_pal_table(one_chrom) -> None:
    g, mas = one_chrom
    band = banded_abs_r(g, chromosomes=np.ones(600))
    results = call_pal(mas, band=band, thresholds=parse_thresholds("99.9,99.0"))
    variants = pd.DataFrame({"CHR": "1", "BP": np.arange(600) * 100, "SNP": [f"rs{i}" for i in range(600)]})
    mu = mas.mean(axis=0)
    scores = score_table(variants, mu, results)
    assert list(scores.columns[:5]) == ["index", "CHR", "BP", "SNP", "mas_mean"]
    for lab in ("99.9", "99.0"):
        for p in ("count", "weight", "amas", "pal", "pal_common"):
            assert f"{p}_{lab}" in scores.columns
    pal = pal_table(variants, mu, results)
    assert list(pal.columns) == ["threshold", "SNP", "CHR", "BP", "index", "mas_mean", "count", "amas", "pal_common"]
    assert len(pal) == sum(int(r.pal.sum()) for r in results)
    first = pal[pal.threshold == "99.9"]
    assert first["amas"].is_monotonic_decreasing
