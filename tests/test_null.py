"""annpal.null: null fits and rank-matched P-values against scipy and the authors' Algorithm 1 (docs/method.md §5)."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from functools import partial

import numpy as np
import pytest
from authors_reference import authors_pal
from conftest import make_genotypes
from scipy import stats
from test_pal import make_mas

from annpal.ld import banded_abs_r
from annpal.null import (
    amas_pvalues,
    count_greater,
    fit_halfnorm,
    fit_halfnorm_both,
    fit_null,
    fit_tail,
    null_amas_draws,
    null_pool,
    rank_match,
    rank_orders,
)
from annpal.pal import call_pal, ld_counts


def test_fit_halfnorm__equals_scipy_floc0() -> None:
    x = stats.halfnorm.rvs(scale=2.5e-6, size=5000, random_state=np.random.default_rng(0))
    _, scale = stats.halfnorm.fit(x, floc=0)
    assert fit_halfnorm(x) == pytest.approx(scale, rel=1e-12)
    assert fit_halfnorm(np.array([3.0, 4.0])) == pytest.approx(math.sqrt(12.5))


@pytest.mark.parametrize("bad", [np.array([]), np.array([1.0, np.nan]), np.array([-1.0, 2.0])])
def test_fit_halfnorm__bad_input(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        fit_halfnorm(bad)
    with pytest.raises(ValueError):
        fit_halfnorm(bad, loc="free")


def test_fit_halfnorm__free_loc_equals_scipy_fit_as_the_authors() -> None:
    # MAS-like null: positive, small, with a floor above 0 (so the free loc matters).
    x = stats.halfnorm.rvs(loc=3e-7, scale=2.5e-4, size=20000, random_state=np.random.default_rng(4))
    loc, scale = stats.halfnorm.fit(x)  # the authors' call in 7_get_amas_pvals.py
    both = fit_halfnorm_both(x)
    assert fit_halfnorm(x, loc="free") == both["sigma_free"] == pytest.approx(scale, rel=1e-12)
    assert both["loc_free"] == loc == x.min()
    assert fit_halfnorm(x) == both["sigma_zero"] == pytest.approx(stats.halfnorm.fit(x, floc=0)[1], rel=1e-12)
    assert both["sigma_free"] < both["sigma_zero"]
    # scipy 1.8 (the authors' pin) fitted by generic numerical MLE; it reaches the same maximum.
    _, numeric = stats.halfnorm.fit(x, superfit=True)
    assert numeric == pytest.approx(scale, rel=1e-3)
    with pytest.raises(ValueError, match="loc"):
        fit_halfnorm(x, loc="min")


def test_fit_null__records_both_sigmas_and_uses_the_chosen_one() -> None:
    x = stats.halfnorm.rvs(loc=1e-3, scale=1.0, size=(4, 3000), random_state=np.random.default_rng(6))
    zero, free = fit_null(x), fit_null(x, halfnorm_loc="free")
    assert zero.sigma == pytest.approx(np.sqrt(np.mean(x**2)))
    assert free.sigma == pytest.approx(stats.halfnorm.fit(x.ravel())[1], rel=1e-12)
    for fit, loc in ((zero, "zero"), (free, "free")):
        info = fit.to_json()
        assert info["halfnorm_loc"] == loc and info["sigma"] == fit.sigma
        assert info["sigma_zero"] == zero.sigma and info["sigma_free"] == free.sigma
        assert info["loc_free"] == x.min()
    assert free.histogram["pdf_y"] != zero.histogram["pdf_y"]
    with pytest.raises(ValueError, match="halfnorm_loc"):
        fit_null(x, halfnorm_loc="both")


def flat_null(k: int = 6, m: int = 400, dead: tuple[int, ...] = (2,)) -> np.ndarray:
    null = stats.halfnorm.rvs(scale=1.0, size=(k, m), random_state=np.random.default_rng(9))
    null /= null.sum(axis=1, keepdims=True)  # MAS rows sum to 1
    null[list(dead)] = 1.0 / m  # dead network: uniform MAS (annpal.attribution.mas)
    return null


def test_null_pool__leaves_out_flat_and_flagged_rows() -> None:
    null = flat_null()
    pool = null_pool(null)
    assert pool.degenerate.tolist() == [2] and pool.kept.tolist() == [0, 1, 3, 4, 5]
    np.testing.assert_array_equal(pool.mas, np.delete(null, 2, axis=0))
    flagged = np.zeros(6, dtype=bool)
    flagged[4] = True  # flagged by annpal-attribute even though its row is not flat
    assert null_pool(null, flagged=flagged).degenerate.tolist() == [2, 4]
    # A flat row has mean square 1/M², a half-normal row of the same mean (π/2)/M²: one in six pulls
    # σ down by 1 - sqrt(5/6 + 2/(6π)) ≈ 3 %, the reason for leaving it out.
    assert fit_halfnorm(null) < 0.98 * fit_halfnorm(pool.mas)


def test_null_pool__half_degenerate_passes_more_refuses() -> None:
    assert null_pool(flat_null(dead=(0, 1, 2))).kept.tolist() == [3, 4, 5]
    with pytest.raises(ValueError, match="4 of 6 null models are degenerate.*more than half"):
        null_pool(flat_null(dead=(0, 1, 2, 5)))


def test_amas_pvalues__free_loc_reproduces_the_authors_script(observed) -> None:
    g, mas, band, _, _ = observed
    null = stats.halfnorm.rvs(loc=2e-5, scale=1.0 / 500, size=(4, 500), random_state=np.random.default_rng(3))
    theta = 99.0
    # The authors: params = halfnorm.fit(MAS_null.flatten()); every draw halfnorm.rvs(scale=params[1]).
    params = stats.halfnorm.fit(null.flatten())
    rng = np.random.default_rng(11)
    draws = np.stack([stats.halfnorm.rvs(scale=params[1], size=mas.shape, random_state=rng) for _ in range(5)])
    _, amas, pal_amas, _ = authors_pal(g.astype(int), mas, theta)
    expected = authors_pvalues(g.astype(int), mas, amas, pal_amas, draws, theta)
    (res,) = call_pal(mas, band=band, thresholds=[("t", theta)])
    fit = fit_null(null, halfnorm_loc="free")
    (pv,) = amas_pvalues(mas, thresholds=[("t", theta)], counts=[res.counts], sigma=fit.sigma, n_draws=5, seed=11)
    np.testing.assert_array_equal(pv.p_value, expected)
    (pv0,) = amas_pvalues(mas, thresholds=[("t", theta)], counts=[res.counts], sigma=fit_null(null).sigma,
                          n_draws=5, seed=11)
    assert pv0.exceed.sum() >= pv.exceed.sum()  # the loc-0 σ is larger: draws exceed at least as often


def test_fit_tail__exceedance_models_match_scipy() -> None:
    x = stats.halfnorm.rvs(scale=1.0, size=20000, random_state=np.random.default_rng(1))
    u, fits = fit_tail(x, tail_fraction=0.1)
    assert u == pytest.approx(np.quantile(x, 0.9))
    y = x[x > u] - u
    by = {f.distribution: f for f in fits}
    assert set(by) == {"halfnorm", "genpareto", "gamma", "expon", "weibull_min", "lognorm"}
    assert by["expon"].params["scale"] == pytest.approx(y.mean())
    assert by["expon"].loglik == pytest.approx(stats.expon.logpdf(y, scale=y.mean()).sum())
    c, _, s = stats.genpareto.fit(y, floc=0)
    assert by["genpareto"].loglik == pytest.approx(stats.genpareto.logpdf(y, c, scale=s).sum())
    for f in fits:
        assert f.aic == pytest.approx(2 * f.n_params - 2 * f.loglik)
        assert f.bic == pytest.approx(f.n_params * math.log(y.size) - 2 * f.loglik)


def test_fit_tail__truncated_halfnorm_recovers_sigma_and_maximises_likelihood() -> None:
    x = stats.halfnorm.rvs(scale=2.0, size=50000, random_state=np.random.default_rng(2))
    u, fits = fit_tail(x, tail_fraction=0.1)
    half = next(f for f in fits if f.distribution == "halfnorm")
    sigma = half.params["scale"]
    assert sigma == pytest.approx(2.0, rel=0.05)
    xt = x[x > u]

    def ll(s: float) -> float:
        return float(np.sum(stats.halfnorm.logpdf(xt, scale=s)) - xt.size * stats.halfnorm.logsf(u, scale=s))

    assert half.loglik == pytest.approx(ll(sigma), rel=1e-12)
    assert ll(sigma) >= max(ll(sigma * 1.001), ll(sigma / 1.001))


def test_fit_null__halfnormal_data_no_warning() -> None:
    x = stats.halfnorm.rvs(scale=3e-6, size=(4, 10000), random_state=np.random.default_rng(3))
    fit = fit_null(x, tail_fraction=0.1)
    assert fit.sigma == pytest.approx(stats.halfnorm.fit(x.ravel(), floc=0)[1])
    assert fit.warning is None and fit.delta_aic <= 2.0
    assert fit.n == 40000 and fit.n_tail == 4000
    qq = fit.qq
    assert len(qq["expected"]) == len(qq["observed"]) == len(qq["level"]) <= 1200
    assert all(abs(r - 1) < 0.1 for r in qq["quantile_ratio"].values())
    assert np.all(np.diff(qq["observed"]) >= 0) and np.all(np.isfinite(qq["expected"]))
    assert len(fit.histogram["edges"]) == len(fit.histogram["density"]) + 1
    assert fit.to_json()["halfnorm_delta_aic"] == fit.delta_aic


def test_fit_null__strict_aic_rule_warns_on_a_near_tie() -> None:
    # Same half-normal sample: the generalised Pareto wins by a hair (ΔAIC ≈ 0.1).
    x = stats.halfnorm.rvs(scale=3e-6, size=(4, 10000), random_state=np.random.default_rng(3))
    fit = fit_null(x, tail_fraction=0.1, aic_tolerance=0.0, aic_per_value=0.0)
    assert fit.best == "genpareto" and 0 < fit.delta_aic < 2
    assert fit.warning is not None and "genpareto" in fit.warning


def test_fit_null__heavy_tail_warns() -> None:
    x = stats.lognorm.rvs(1.0, scale=1e-6, size=20000, random_state=np.random.default_rng(4))
    fit = fit_null(x, tail_fraction=0.1)
    assert fit.best != "halfnorm"
    assert fit.warning is not None and "not the best-supported" in fit.warning and "calibrated" in fit.warning
    assert fit.qq["quantile_ratio"]["0.999"] > 1.5


def test_fit_tail__too_few_values() -> None:
    with pytest.raises(ValueError, match="at least 10"):
        fit_tail(np.arange(20.0), tail_fraction=0.1)
    with pytest.raises(ValueError, match="tail_fraction"):
        fit_tail(np.arange(20.0), tail_fraction=1.0)


def authors_rank_correct(array1: np.ndarray, array2: np.ndarray) -> np.ndarray:
    """The rank-matching block of 7_get_amas_pvals.py, verbatim."""
    out = np.zeros_like(array2)
    for i in range(array1.shape[0]):
        sorted_indices_desc = np.argsort(-array1[i])
        sorted_array2_desc = np.sort(array2[i])[::-1]
        out[i, sorted_indices_desc] = sorted_array2_desc
    return out


def authors_pvalues(df: np.ndarray, mas_main: np.ndarray, amas: np.ndarray, pal_amas: np.ndarray,
                    draws: np.ndarray, thresh: float, chrom: np.ndarray | None = None) -> np.ndarray:
    """The bootstrap loop of 7_get_amas_pvals.py (Algorithm 1) with the draws given, re-implemented plainly."""
    err = []
    for boot in range(draws.shape[0]):
        mas_list = authors_rank_correct(mas_main, draws[boot])
        counts, _, _, _ = authors_pal(df, mas_list, thresh, chrom=chrom)
        mean_mas = np.mean(mas_list, axis=0)
        detected = (mean_mas > np.percentile(mean_mas, thresh)).nonzero()[0]
        amas_boot = mean_mas.copy()
        for i in range(len(detected)):
            amas_boot[detected[i]] = amas_boot[detected[i]] * (counts[detected[i]] / mas_list.shape[0])
        err.append([np.sum(amas_boot > amas[pal_amas[x]]) for x in range(len(pal_amas))])
    return np.sum(np.array(err), axis=0) / (np.array(err).shape[0] * mas_main.shape[1])


@pytest.fixture(scope="module")
def observed():
    g = make_genotypes(200, 500, seed=21, ld_block=8)
    mas = make_mas(5, 500, seed=7, hot=(60, 61, 200, 330, 331, 450))
    band = banded_abs_r(g, chromosomes=np.ones(500), window=20, dtype=np.float64)
    sigma = 1.0 / 500
    draws = stats.halfnorm.rvs(scale=sigma, size=(6, 5, 500), random_state=np.random.default_rng(8))
    return g, mas, band, sigma, draws


@pytest.mark.parametrize("theta", [99.0, 99.6])
def test_amas_pvalues__equal_authors_algorithm1(observed, theta: float) -> None:
    g, mas, band, sigma, draws = observed
    (res,) = call_pal(mas, band=band, thresholds=[("t", theta)])
    _, amas, pal_amas, _ = authors_pal(g.astype(int), mas, theta)
    expected = authors_pvalues(g.astype(int), mas, amas, pal_amas, draws, theta)
    (pv,) = amas_pvalues(mas, thresholds=[("t", theta)], counts=[res.counts], sigma=sigma, draws=draws)
    np.testing.assert_array_equal(pv.index, pal_amas)
    np.testing.assert_array_equal(pv.amas, amas[pal_amas])
    np.testing.assert_array_equal(pv.p_value, expected)  # identical, not just close
    assert pv.n_draws == 6 and pv.n_inexact == 0 and pv.p_bound == 1 / (6 * 500)


def test_amas_pvalues__callable_draws_and_all_snps(observed) -> None:
    g, mas, band, sigma, draws = observed
    thresholds = [("99", 99.0), ("99.6", 99.6)]
    results = call_pal(mas, band=band, thresholds=thresholds)
    counts = [r.counts for r in results]
    from_array = amas_pvalues(mas, thresholds=thresholds, counts=counts, sigma=sigma, draws=draws, all_snps=True)
    from_func = amas_pvalues(mas, thresholds=thresholds, counts=counts, sigma=sigma, n_draws=6,
                             draws=lambda b, shape: draws[b], all_snps=True)
    for a, b, r in zip(from_array, from_func, results, strict=True):
        np.testing.assert_array_equal(a.exceed, b.exceed)
        assert a.index.size == 500
        # All-SNP P-values restricted to the PAL SNPs are the PAL-only ones.
        (pal_only,) = amas_pvalues(mas, thresholds=[(r.label, r.theta)], counts=[r.counts], sigma=sigma, draws=draws)
        np.testing.assert_array_equal(a.p_value[pal_only.index], pal_only.p_value)


@pytest.mark.parametrize("chroms", [1, 3])
def test_null_amas_draws__shortcut_equals_full_recomputation(observed, chroms: int) -> None:
    g, mas, _, sigma, draws = observed
    chrom = np.repeat(np.arange(chroms), -(-500 // chroms))[:500]
    band = banded_abs_r(g, chromosomes=chrom, window=20, dtype=np.float64)
    thresholds = [("99", 99.0), ("99.6", 99.6)]
    counts = [r.counts for r in call_pal(mas, band=band, thresholds=thresholds)]
    fast = list(null_amas_draws(mas, thresholds=thresholds, counts=counts, sigma=sigma, draws=draws))
    for b, per_threshold in fast:
        # Full recomputation: rank-match as the authors, then detection, LD expansion, counts, AMAS.
        full = call_pal(authors_rank_correct(mas, draws[b]), band=band, thresholds=thresholds)
        for (amas_b, exact), r in zip(per_threshold, full, strict=True):
            assert exact
            np.testing.assert_array_equal(amas_b, r.amas)


def test_null_amas_draws__ties_at_cut_recount_or_flag(observed) -> None:
    g, mas, band, sigma, draws = observed
    mas = mas.copy()
    top = np.argsort(-mas[0])[:4]
    mas[0, top] = mas[0, top[0]]  # four-way tie at the top: percentile 99.6 lands on it, nothing detected
    thresholds = [("99.6", 99.6)]
    counts = [r.counts for r in call_pal(mas, band=band, thresholds=thresholds)]
    recount = partial(ld_counts, band=band, ld_r=0.5)
    for b, ((amas_b, exact),) in null_amas_draws(mas, thresholds=thresholds, counts=counts, sigma=sigma,
                                                 draws=draws, recount=recount):
        (full,) = call_pal(authors_rank_correct(mas, draws[b]), band=band, thresholds=thresholds)
        assert exact
        np.testing.assert_array_equal(amas_b, full.amas)
    (pv,) = amas_pvalues(mas, thresholds=thresholds, counts=counts, sigma=sigma, draws=draws)
    assert pv.n_inexact == 6
    # Every draw detects the first n positions of the observed order: one recount serves them all.
    calls = []
    (exact,) = amas_pvalues(mas, thresholds=thresholds, counts=counts, sigma=sigma, draws=draws,
                            recount=lambda det: calls.append(1) or recount(det))
    assert exact.n_inexact == 0 and len(calls) == 1


def test_amas_pvalues__default_draws_are_seeded_halfnorm(observed) -> None:
    _, mas, band, sigma, _ = observed
    (r,) = call_pal(mas, band=band, thresholds=[("99", 99.0)])
    rng = np.random.default_rng(5)
    injected = np.stack([stats.halfnorm.rvs(scale=sigma, size=mas.shape, random_state=rng) for _ in range(4)])
    (a,) = amas_pvalues(mas, thresholds=[("99", 99.0)], counts=[r.counts], sigma=sigma, n_draws=4, seed=5)
    (b,) = amas_pvalues(mas, thresholds=[("99", 99.0)], counts=[r.counts], sigma=sigma, draws=injected)
    np.testing.assert_array_equal(a.exceed, b.exceed)
    (c,) = amas_pvalues(mas, thresholds=[("99", 99.0)], counts=[r.counts], sigma=sigma, n_draws=4, seed=5)
    np.testing.assert_array_equal(a.exceed, c.exceed)


def test_amas_pvalues__bad_draws(observed) -> None:
    _, mas, band, sigma, draws = observed
    kw = {"thresholds": [("99", 99.0)], "counts": [np.zeros(500, dtype=int)], "sigma": sigma}
    with pytest.raises(ValueError, match="shape"):
        amas_pvalues(mas, draws=draws[:, :, :10], **kw)
    with pytest.raises(ValueError, match="shape"):
        amas_pvalues(mas, n_draws=2, draws=lambda b, shape: np.ones((2, 2)), **kw)
    with pytest.raises(ValueError, match="sigma"):
        amas_pvalues(mas, **{**kw, "sigma": 0.0})


def test_rank_match__ranks_follow_observed() -> None:
    rng = np.random.default_rng(0)
    mas = rng.random((3, 50))
    draw = rng.random((3, 50))
    matched = rank_match(draw, rank_orders(mas))
    np.testing.assert_array_equal(matched, authors_rank_correct(mas, draw))
    for k in range(3):
        np.testing.assert_array_equal(np.argsort(matched[k]), np.argsort(mas[k]))
        np.testing.assert_array_equal(np.sort(matched[k]), np.sort(draw[k]))


def test_count_greater__matches_loop() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 20, 300).astype(float)  # many ties
    queries = np.array([-1.0, 0.0, 5.0, 5.5, 19.0, 30.0, 5.0])
    np.testing.assert_array_equal(count_greater(values, queries), [np.sum(values > q) for q in queries])
    assert count_greater(values, np.array([])).size == 0


def test_authors_reference__sanity() -> None:
    # The reference itself: Counter-based counts equal a direct count on a toy case.
    c = Counter([1, 2, 2, 3, 3, 3])
    assert [c[i] for i in range(5)] == [0, 1, 2, 3, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        authors_rank_correct(np.ones((1, 3)), np.arange(3.0)[None, :])
