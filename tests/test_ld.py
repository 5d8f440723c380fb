"""annpal.ld: windowed |r| against np.corrcoef, chromosome boundaries, proxy sets (docs/method.md §4 step 2)."""

from __future__ import annotations

import warnings
from decimal import Decimal, getcontext

import numpy as np
import pytest
from conftest import make_genotypes

from annpal.ld import BandRows, band_offsets, banded_abs_r, chromosome_codes, proxy_expand


def corrcoef_band(g: np.ndarray, chrom: np.ndarray, w: int) -> np.ndarray:
    """Plain reference: np.corrcoef for every SNP and offset on the same chromosome; NaN r → 0."""
    m = g.shape[1]
    offs = list(range(-w, 0)) + list(range(1, w + 1))
    ref = np.zeros((m, 2 * w))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(m):
            for c, d in enumerate(offs):
                j = i + d
                if 0 <= j < m and chrom[i] == chrom[j]:
                    r = np.corrcoef(g[:, i], g[:, j])[0, 1]
                    ref[i, c] = 0.0 if np.isnan(r) else abs(r)
    return ref


@pytest.fixture(scope="module")
def geno() -> tuple[np.ndarray, np.ndarray]:
    g = make_genotypes(250, 180, seed=3, ld_block=6)
    chrom = np.array(["1"] * 70 + ["2"] * 50 + ["10"] * 60)
    return g, chrom


def test_band_offsets__order() -> None:
    assert band_offsets(3).tolist() == [-3, -2, -1, 1, 2, 3]
    with pytest.raises(ValueError):
        band_offsets(0)


def test_chromosome_codes__labels_as_strings() -> None:
    codes = chromosome_codes(np.array([1, 1, "1", 2, "X"], dtype=object))
    assert codes[0] == codes[1] == codes[2] and len(set(codes[2:].tolist())) == 3


@pytest.mark.parametrize("w", [1, 5, 20])
def test_banded_abs_r__matches_corrcoef(geno, w: int) -> None:
    g, chrom = geno
    band = banded_abs_r(g, chromosomes=chrom, window=w, dtype=np.float64)
    np.testing.assert_allclose(band, corrcoef_band(g, chrom, w), rtol=0, atol=1e-12)


@pytest.mark.parametrize("block_size", [1, 7, 50, 4096])
def test_banded_abs_r__blocks_float32(geno, block_size: int) -> None:
    g, chrom = geno
    band = banded_abs_r(g, chromosomes=chrom, window=20, block_size=block_size, dtype=np.float32)
    assert band.dtype == np.float32 and band.shape == (180, 40)
    np.testing.assert_allclose(band, corrcoef_band(g, chrom, 20), rtol=0, atol=1e-5)


def test_banded_abs_r__subset_rows_equal_full(geno) -> None:
    g, chrom = geno
    full = banded_abs_r(g, chromosomes=chrom, window=20, dtype=np.float64)
    rows = np.array([0, 3, 69, 70, 119, 120, 179, 100])
    part = banded_abs_r(g, chromosomes=chrom, window=20, snps=rows, dtype=np.float64, block_size=100)
    np.testing.assert_allclose(part[rows], full[rows], rtol=0, atol=1e-12)
    others = np.setdiff1d(np.arange(180), rows)
    assert np.isnan(part[others]).all()


def pair_from_table(a: int, b: int, c: int, d: int) -> tuple[np.ndarray, Decimal]:
    """Two 0/1 SNPs with joint counts (1,1)=a, (1,0)=b, (0,1)=c, (0,0)=d, and their exact r (50 digits)."""
    x = np.repeat([1, 1, 0, 0], [a, b, c, d])
    y = np.repeat([1, 0, 1, 0], [a, b, c, d])
    order = np.random.default_rng(0).permutation(x.size)
    getcontext().prec = 50
    r = Decimal(a * d - b * c) / Decimal((a + b) * (c + d) * (a + c) * (b + d)).sqrt()
    return np.stack([x[order], y[order]], axis=1).astype(np.int8), r


# Joint counts found by an exact integer search: r = 0.5 + 1.7e-10 and r = 0.5 - 3.5e-10.
PAIRS_AT_CUT = [((219, 122, 173, 1327), True), ((240, 74, 278, 1445), False)]


@pytest.mark.parametrize(("table", "above"), PAIRS_AT_CUT)
def test_banded_abs_r__float64_decides_a_pair_at_the_cut(table, above: bool) -> None:
    g, r = pair_from_table(*table)
    assert (r > Decimal("0.5")) == above and abs(r - Decimal("0.5")) < Decimal("1e-9")
    # float32 cannot hold the pair apart from the cut: the nearest float32 to r is 0.5 itself, and
    # float32 centring/summing errs by ~1e-6, so either side can come out.
    assert np.float32(float(r)) == np.float32(0.5)
    authors = abs(np.corrcoef(g[:, 0].astype(int), g[:, 1].astype(int))[0, 1])
    for band in (banded_abs_r(g, chromosomes=np.ones(2), window=1),
                 banded_abs_r(g, chromosomes=np.ones(2), window=1, snps=np.array([0, 1])),
                 BandRows(g, chromosomes=np.ones(2), window=1).ensure(np.array([0, 1]))):
        assert band.dtype == np.float64
        assert (band[0, 1] > 0.5) == (band[1, 0] > 0.5) == (authors > 0.5) == above
        np.testing.assert_array_equal(proxy_expand(np.array([0]), band=band), [0, 1] if above else [0])


def test_band_rows__computes_on_demand_equal_to_full(geno) -> None:
    g, chrom = geno
    full = banded_abs_r(g, chromosomes=chrom, window=20)
    lazy = BandRows(g, chromosomes=chrom, window=20, block_size=50)
    assert np.isnan(lazy.band).all()
    band = lazy.ensure(np.array([69, 0, 3]))
    band = lazy.ensure(np.array([3, 70, 179, 119, 120]))
    rows = np.array([0, 3, 69, 70, 119, 120, 179])
    np.testing.assert_allclose(band[rows], full[rows], rtol=0, atol=1e-12)
    assert np.isnan(np.delete(band, rows, axis=0)).all() and lazy.done.sum() == rows.size
    with pytest.raises(ValueError, match="outside"):
        lazy.ensure(np.array([180]))


def test_banded_abs_r__memmap_input(geno, tmp_path) -> None:
    g, chrom = geno
    np.save(tmp_path / "g.npy", g)
    mm = np.load(tmp_path / "g.npy", mmap_mode="r")
    np.testing.assert_array_equal(banded_abs_r(mm, chromosomes=chrom, block_size=33),
                                  banded_abs_r(g, chromosomes=chrom, block_size=33))


def test_banded_abs_r__no_window_crosses_chromosome() -> None:
    # Identical columns on both sides of every boundary: |r| = 1 across, which must not count.
    rng = np.random.default_rng(0)
    col = rng.integers(-1, 2, size=(100, 1)).astype(np.int8)
    g = np.repeat(col, 30, axis=1)
    chrom = np.repeat(["1", "2", "3"], 10)
    band = banded_abs_r(g, chromosomes=chrom, window=20)
    offs = band_offsets(20)
    for i in range(30):
        for c, d in enumerate(offs):
            j = i + d
            same = 0 <= j < 30 and chrom[j] == chrom[i]
            assert band[i, c] == pytest.approx(1.0 if same else 0.0, abs=1e-6)


def test_banded_abs_r__zero_variance_gives_zero() -> None:
    g = make_genotypes(100, 12, seed=1)
    g[:, 5] = 1  # monomorphic
    band = banded_abs_r(g, chromosomes=np.ones(12), window=3, dtype=np.float64)
    offs = band_offsets(3)
    assert np.all(band[5] == 0)
    for c, d in enumerate(offs):
        if 0 <= 5 - d < 12:
            assert band[5 - d, c] == 0  # the pairs pointing at SNP 5


def test_banded_abs_r__bad_inputs() -> None:
    g = np.zeros((5, 4), dtype=np.int8)
    with pytest.raises(ValueError, match="labels"):
        banded_abs_r(g, chromosomes=np.ones(3))
    with pytest.raises(ValueError, match="outside"):
        banded_abs_r(g, chromosomes=np.ones(4), window=1, snps=np.array([4]))


def authors_expand(df: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """The inner loop of the authors' 4_get_pal.py for one model, verbatim (bugs included)."""
    out = detected.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i2 in range(detected.shape[0]):
            for ix in range(-20, 21):
                if ix == 0:
                    continue
                if detected[i2] + ix >= df.shape[1]:
                    continue
                if abs(np.corrcoef(df[:, detected[i2]], df[:, detected[i2] + ix])[0][1]) > 0.5:
                    out = np.append(out, detected[i2] + ix)
    return np.sort(np.unique(out))


def test_proxy_expand__matches_authors_loop_one_chromosome() -> None:
    g = make_genotypes(300, 200, seed=5, ld_block=8)
    band = banded_abs_r(g, chromosomes=np.ones(200), window=20, dtype=np.float64)
    for det in (np.array([20, 57, 58, 120]), np.array([179]), np.array([30, 100, 150, 170])):
        np.testing.assert_array_equal(proxy_expand(det, band=band, ld_r=0.5), authors_expand(g, det))


def test_proxy_expand__no_wrap_at_genome_start() -> None:
    # Offsets -20 and -3 of SNP 2 are indices -18 and -1, which numpy wraps to SNPs 42 and 59 in the
    # authors' loop: they correlate SNP 2 with the end of the genome and append the negative index.
    g = make_genotypes(200, 60, seed=2, ld_block=1)
    g[:, 59] = g[:, 2]
    g[:, 42] = g[:, 2]
    band = banded_abs_r(g, chromosomes=np.ones(60), window=20, dtype=np.float64)
    ours = proxy_expand(np.array([2]), band=band)
    authors = authors_expand(g, np.array([2]))
    assert {-18, -1} <= set(authors.tolist())
    assert ours.min() >= 0 and not {42, 59} & set(ours.tolist())


def test_proxy_expand__empty_and_uncomputed_rows() -> None:
    band = np.full((10, 4), np.nan, dtype=np.float32)
    assert proxy_expand(np.array([], dtype=np.int64), band=band).size == 0
    with pytest.raises(ValueError, match="not computed"):
        proxy_expand(np.array([3]), band=band)
    with pytest.raises(ValueError, match="ld_r"):
        proxy_expand(np.array([3]), band=np.zeros((10, 4)), ld_r=1.0)
