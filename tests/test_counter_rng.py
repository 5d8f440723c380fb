"""Tests for ``annpal.counter_rng``: the generator is Random123's Philox4x32-10, the draws equal their plain
reference, do not depend on the thread count, and follow the input-dropout law (Bernoulli survival,
geometric gaps, Gaussian noise), also at segment edges."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from scipy import stats

from annpal import counter_rng
from annpal.counter_rng import draw_batch, draw_batch_reference, philox4x32, segment_snps

#: Two-sided p-value below which a statistical test fails: a correct sampler fails one such test about
#: once in 10 000 runs of it (all seeds are fixed, so the suite itself is deterministic).
ALPHA = 1e-4


def grid(n_snps: int, b: int, n_rows: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random int8 genotype matrix (flattened) and ``b`` distinct batch rows."""
    rng = np.random.default_rng(seed)
    n_rows = n_rows or b + 3
    x = rng.integers(0, 3, size=n_rows * n_snps, dtype=np.int8)
    return x, rng.permutation(n_rows)[:b].astype(np.int64)


def zeros(n_snps: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(n_snps * b, np.int8), np.arange(b, dtype=np.int64)


def count_z(n_survivors: int, n_cells: int, p: float) -> float:
    """z score of a survivor count against Binomial(n_cells, 1 − p)."""
    q = 1.0 - p
    return (n_survivors - n_cells * q) / math.sqrt(n_cells * q * p)


def two_sided(z: float) -> float:
    return 2.0 * stats.norm.sf(abs(z))


@pytest.fixture(autouse=True)
def one_thread():
    """One numba thread unless a test asks for more: the draws do not depend on it (tested below), and a
    parallel region on a shared, loaded machine waits for its slowest thread to be scheduled."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


# --- the generator ---------------------------------------------------------------------------------------

#: Random123's known-answer vectors for philox4x32_R(10, counter, key) (its tests/kat_vectors).
KAT_4X32_10 = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter, key, expected", KAT_4X32_10)
def test_philox4x32__random123_known_answers(counter, key, expected):
    np.testing.assert_array_equal(philox4x32(counter, key), np.array(expected, np.uint32))


@pytest.mark.parametrize("counter, key, expected", KAT_4X32_10)
def test_reference_philox__random123_known_answers(counter, key, expected):
    """The numpy reference (two blocks at once) on the same vectors: block index = counter words 0, 1."""
    block = counter[0] + (counter[1] << 32)
    wa, wb = counter_rng._reference_philox(np.array([block, block], np.uint64), counter[2], counter[3],
                                           key[0] + (key[1] << 32))
    assert int(wa[1]) == (expected[0] << 32) | expected[1] and int(wb[1]) == (expected[2] << 32) | expected[3]


def test_compiled_and_numpy_philox__same_blocks_for_any_key():
    rng = np.random.default_rng(3)
    for key in [0, 2**64 - 1, int(rng.integers(0, 2**63))]:
        blocks = rng.integers(0, 2**40, 50, dtype=np.uint64)
        wa, wb = counter_rng._reference_philox(blocks, 12345, 1, key)
        for blk, a, b in zip(blocks, wa, wb, strict=True):
            x = philox4x32((int(blk) & 0xFFFFFFFF, int(blk) >> 32, 12345, 1), (key & 0xFFFFFFFF, key >> 32))
            assert (int(x[0]) << 32 | int(x[1]), int(x[2]) << 32 | int(x[3])) == (int(a), int(b))


def test_log_uniform_and_sincos__within_an_ulp_or_two_of_libm():
    rng = np.random.default_rng(1)
    words = np.concatenate([rng.integers(0, 2**64, 20_000, dtype=np.uint64),
                            np.array([0, 2**64 - 1, 2**11, 2**63, 3 << 11], np.uint64)])
    u = ((words >> np.uint64(11)) + np.uint64(1)) * 2.0**-53
    log_u = np.array([counter_rng._log_uniform(w) for w in words])
    sincos = np.array([counter_rng._sincos_2pi(w) for w in words])
    expected_log = np.array([math.log(v) for v in u])
    np.testing.assert_array_less(np.abs(log_u - expected_log), 3e-16 * np.maximum(np.abs(expected_log), 1e-300)
                                 + 1e-300)
    assert log_u[words == 2**64 - 1][0] == 0.0  # U = 1
    angle = 2.0 * np.pi * u
    np.testing.assert_allclose(sincos[:, 0], np.sin(angle), rtol=0, atol=2e-15)
    np.testing.assert_allclose(sincos[:, 1], np.cos(angle), rtol=0, atol=2e-15)


# --- equal to the reference, deterministic, thread-invariant ---------------------------------------------

@pytest.mark.parametrize("n_snps, b, p, sigma", [
    (100, 4096, 0.99, 0.5),   # 7 segments of 16 SNPs
    (37, 300, 0.9, 1.0),      # one segment of 218 SNPs, cut short
    (5, 1, 0.5, 0.0),         # batch of one
    (1, 1, 0.0, 1.0),         # one cell
    (700, 300, 0.0, 0.3),     # every cell
    (50, 2000, 0.999, 2.0),
])
@pytest.mark.parametrize("key", [0, 7, 2**64 - 1, -5])
def test_draw_batch__equals_reference(n_snps, b, p, sigma, key):
    x, rows = grid(n_snps, b)
    got = draw_batch(key, x, n_snps, rows, p, sigma, 1.0 / (1.0 - p))
    ref = draw_batch_reference(key, x, n_snps, rows, p, sigma, 1.0 / (1.0 - p))
    for a, r in zip(got, ref, strict=True):
        assert a.dtype == r.dtype and a.shape == r.shape
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got[3], ref[3])


def test_draw_batch__same_on_one_and_two_threads():
    x, rows = grid(300, 2048, n_rows=2100)
    numba.set_num_threads(1)
    one = draw_batch(11, x, 300, rows, 0.95, 0.5, 20.0)
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    two = draw_batch(11, x, 300, rows, 0.95, 0.5, 20.0)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


def test_draw_batch__deterministic_in_key():
    x, rows = grid(200, 512)
    first, again = (draw_batch(3, x, 200, rows, 0.9, 1.0, 10.0) for _ in range(2))
    other = draw_batch(4, x, 200, rows, 0.9, 1.0, 10.0)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[0].size != other[0].size or not np.array_equal(first[1], other[1])
    assert not np.array_equal(first[2][:100], other[2][:100])


@pytest.mark.parametrize("capacity", [0, 1, 5])
def test_draw_batch__overflowing_slots_give_the_same_draws(capacity):
    x, rows = grid(100, 4096)
    normal = draw_batch(5, x, 100, rows, 0.99, 0.5, 100.0)
    overflowed = draw_batch(5, x, 100, rows, 0.99, 0.5, 100.0, _capacity=capacity)
    for a, b in zip(normal, overflowed, strict=True):
        np.testing.assert_array_equal(a, b)


# --- the output's form -----------------------------------------------------------------------------------

def test_draw_batch__sorted_cells_values_and_row_pointers():
    n_snps, b = 500, 1024
    x, rows = grid(n_snps, b, n_rows=3000)
    snp, sample, values, crow = draw_batch(9, x, n_snps, rows, 0.9, 0.0, 10.0)
    assert snp.dtype == sample.dtype == np.int32 and values.dtype == np.float32 and crow.dtype == np.int64
    cell = snp.astype(np.int64) * b + sample
    assert np.all(np.diff(cell) > 0) and sample.min() >= 0 and sample.max() < b
    np.testing.assert_array_equal(values, (x[rows[sample] * n_snps + snp] * 10.0).astype(np.float32))
    np.testing.assert_array_equal(crow, np.searchsorted(snp, np.arange(n_snps + 1)))
    assert crow[-1] == snp.size


def test_draw_batch__noise_is_subtracted_then_scaled():
    n_snps, b = 300, 2048
    x, rows = grid(n_snps, b, n_rows=2100)
    snp, sample, values, _ = draw_batch(2, x, n_snps, rows, 0.9, 0.7, 10.0)
    _, _, noise_only, _ = draw_batch(2, np.zeros_like(x), n_snps, rows, 0.9, 0.7, 10.0)
    xi = -noise_only.astype(np.float64) / 10.0  # the same draws: values = (x − ξ)·scale
    np.testing.assert_allclose(values, (x[rows[sample] * n_snps + snp] - xi) * 10.0, rtol=1e-6, atol=1e-5)


def test_draw_batch__p_zero_keeps_every_cell_in_order():
    n_snps, b = 70, 33
    x, rows = grid(n_snps, b)
    snp, sample, values, crow = draw_batch(1, x, n_snps, rows, 0.0, 0.0, 1.0)
    np.testing.assert_array_equal(snp, np.repeat(np.arange(n_snps), b))
    np.testing.assert_array_equal(sample, np.tile(np.arange(b), n_snps))
    np.testing.assert_array_equal(values, x.reshape(-1, n_snps)[rows].T.reshape(-1).astype(np.float32))
    np.testing.assert_array_equal(crow, np.arange(n_snps + 1) * b)


def test_draw_batch__one_cell_survives_half_the_time():
    x, rows = grid(1, 1)
    kept = sum(draw_batch(key, x, 1, rows, 0.5, 0.0, 2.0)[0].size for key in range(2000))
    assert two_sided(count_z(kept, 2000, 0.5)) > ALPHA


def test_draw_batch__no_survivor_and_empty_grids():
    x, rows = grid(40, 8)
    snp, sample, values, crow = draw_batch(3, x, 40, rows, 1.0 - 1e-12, 1.0, 2.0)
    assert snp.size == sample.size == values.size == 0
    np.testing.assert_array_equal(crow, np.zeros(41, np.int64))
    empty = draw_batch(3, x, 40, rows[:0], 0.5, 1.0, 2.0)
    assert empty[0].size == 0 and np.array_equal(empty[3], np.zeros(41, np.int64))


@pytest.mark.parametrize("p, sigma", [(1.0, 0.0), (-0.1, 0.0), (0.5, -1.0)])
def test_draw_batch__rejects_arguments_outside_the_law(p, sigma):
    x, rows = grid(3, 2)
    with pytest.raises(ValueError):
        draw_batch(1, x, 3, rows, p, sigma, 1.0)


# --- the law ---------------------------------------------------------------------------------------------

def total_survivors(p_true: float, n_keys: int, n_snps: int, b: int) -> int:
    x, rows = zeros(n_snps, b)
    return sum(draw_batch(key, x, n_snps, rows, p_true, 0.0, 1.0)[0].size for key in range(n_keys))


def test_survivor_count__binomial_and_the_test_sees_a_one_percent_bias():
    n_keys, n_snps, b = 50, 2000, 1024  # 1e8 cells, 1e6 expected survivors
    n_cells = n_keys * n_snps * b
    assert two_sided(count_z(total_survivors(0.99, n_keys, n_snps, b), n_cells, 0.99)) > ALPHA
    # the same test rejects a survival probability 1 % off (1 − p = 0.0099)
    assert two_sided(count_z(total_survivors(0.9901, n_keys, n_snps, b), n_cells, 0.99)) < ALPHA


def test_survivor_count_per_draw__binomial_distribution():
    n_snps, b, p = 64, 2048, 0.99  # 8 segments; 1 311 expected survivors per draw
    x, rows = zeros(n_snps, b)
    counts = np.array([draw_batch(key, x, n_snps, rows, p, 0.0, 1.0)[0].size for key in range(400)])
    z = (counts - n_snps * b * (1 - p)) / math.sqrt(n_snps * b * p * (1 - p))
    assert stats.kstest(z, "norm").pvalue > ALPHA  # normal approximation of Binomial(131 072, 0.01)


def test_survival__uniform_over_snps_batch_positions_and_segment_offsets():
    n_snps, b, p = 160, 4096, 0.99  # 10 segments of 16 SNPs
    x, rows = zeros(n_snps, b)
    per_snp, per_sample = np.zeros(n_snps), np.zeros(b)
    for key in range(60):
        snp, sample, _, _ = draw_batch(key, x, n_snps, rows, p, 0.0, 1.0)
        per_snp += np.bincount(snp, minlength=n_snps)
        per_sample += np.bincount(sample, minlength=b)
    assert stats.chisquare(per_snp).pvalue > ALPHA
    assert stats.chisquare(per_sample.reshape(-1, 16).sum(1)).pvalue > ALPHA  # 256 bins of 16 positions
    # offset inside the segment (SNP j mod 16): the walk restarts at every segment
    seg = segment_snps(b)
    assert stats.chisquare(per_snp.reshape(-1, seg).sum(0)).pvalue > ALPHA


def test_survival__cells_at_segment_edges_like_interior_cells():
    """The first and last cell of every segment survive with probability 1 − p, like any other: a walk
    that started at the segment's first cell instead of before it, or lost the last cell, fails."""
    n_snps, b, p = 160, 4096, 0.9  # 10 segments of 16 SNPs
    seg_cells = segment_snps(b) * b
    x, rows = zeros(n_snps, b)
    first = last = second = 0
    n_keys = 200
    for key in range(n_keys):
        snp, sample, _, _ = draw_batch(key, x, n_snps, rows, p, 0.0, 1.0)
        offset = (snp.astype(np.int64) * b + sample) % seg_cells
        first += np.count_nonzero(offset == 0)
        second += np.count_nonzero(offset == 1)
        last += np.count_nonzero(offset == seg_cells - 1)
    n_edges = n_keys * n_snps // segment_snps(b)
    for kept in (first, second, last):
        assert two_sided(count_z(kept, n_edges, p)) > ALPHA


def test_gaps__geometric_within_and_across_segments():
    n_snps, b, p = 200, 4096, 0.9
    x, rows = zeros(n_snps, b)
    gaps = []
    for key in range(5):
        snp, sample, _, _ = draw_batch(key, x, n_snps, rows, p, 0.0, 1.0)
        gaps.append(np.diff(snp.astype(np.int64) * b + sample))
    gaps = np.concatenate(gaps)
    k = np.arange(1, 61)
    expected = np.append((1 - p) * p ** (k - 1), p ** 60) * gaps.size  # 1 … 60, then > 60
    observed = np.append(np.bincount(gaps, minlength=61)[1:61], np.count_nonzero(gaps > 60))
    assert stats.chisquare(observed, expected).pvalue > ALPHA


def test_noise__normal_with_sigma_and_independent_of_neighbours():
    n_snps, b, p, sigma = 400, 4096, 0.9, 0.5
    x, rows = zeros(n_snps, b)
    xi = np.concatenate([-draw_batch(key, x, n_snps, rows, p, sigma, 3.0)[2].astype(np.float64) / 3.0
                         for key in range(3)])
    assert xi.size > 400_000
    assert stats.kstest(xi, "norm", args=(0.0, sigma)).pvalue > ALPHA
    # the four normals of a Philox block, and neighbouring blocks, are uncorrelated
    for lag in (1, 2, 3, 4):
        r = np.corrcoef(xi[:-lag], xi[lag:])[0, 1]
        assert two_sided(r * math.sqrt(xi.size)) > ALPHA
    # squared: catches a shared radius within a Box–Muller pair
    r2 = np.corrcoef(xi[:-1:2] ** 2, xi[1::2] ** 2)[0, 1]
    assert two_sided(r2 * math.sqrt(xi.size / 2)) > ALPHA


def test_draw_batch__into_caller_buffers_same_draws():
    n_snps, b = 300, 1024
    x, rows = grid(n_snps, b, n_rows=1100)
    fresh = draw_batch(8, x, n_snps, rows, 0.95, 0.5, 20.0)
    buffers = (np.empty(30_000, np.int32), np.empty(30_000, np.int32), np.empty(30_000, np.float32),
               np.empty(n_snps + 1, np.int64))
    reused = draw_batch(8, x, n_snps, rows, 0.95, 0.5, 20.0, out=buffers)
    for a, r, buf in zip(fresh, reused, buffers, strict=True):
        np.testing.assert_array_equal(a, r)
        assert np.shares_memory(r, buf)
    small = (buffers[0][:10], buffers[1][:10], buffers[2][:10], buffers[3])  # too short: fresh arrays
    again = draw_batch(8, x, n_snps, rows, 0.95, 0.5, 20.0, out=small)
    for a, r in zip(fresh, again, strict=True):
        np.testing.assert_array_equal(a, r)
    assert not np.shares_memory(again[0], buffers[0])
