"""Null distribution of MAS and rank-matched P-values for AMAS (docs/method.md §5; paper Algorithm 1).

* :func:`fit_halfnorm` — half-normal on the pooled null MAS. ``loc="zero"`` (default, the paper's
  text): MLE with loc 0, ``σ = sqrt(mean x²)``. ``loc="free"`` (the authors' ``7_get_amas_pvals.py``):
  ``halfnorm.fit(x)`` with a free loc, whose MLE is ``loc = min(x)``, ``σ = sqrt(mean (x − min x)²)``;
  the authors then *sample* ``halfnorm.rvs(scale=σ)`` with loc 0, and so does :func:`amas_pvalues`
  with either σ. :func:`fit_halfnorm_both` gives both.
* :func:`null_pool` — drops degenerate null models (every attribution zero: a flat MAS row) from the
  pool before the fit; refuses when more than half of them are degenerate.
* :func:`fit_null` — the half-normal fit plus a comparison of six families on the upper tail (top
  ``tail_fraction``), AIC/BIC, a warning when the half-normal is clearly not the best supported, QQ and
  histogram data for the report.
* :func:`amas_pvalues` — Algorithm 1: ``B`` half-normal ``K × M`` draws, each row reordered so its ranks
  match the observed MAS row, AMAS recomputed, ``p_i = Σ_b #{j : AMAS^(b)_j > AMAS_i} / (B·M)``.

How the tail fits are made comparable
-------------------------------------
Let ``u`` be the ``1 − tail_fraction`` quantile of the pooled null MAS and ``x_t = {x : x > u}``. Every
model is a density on ``(u, ∞)`` fitted by maximum likelihood to the same ``x_t``, so log-likelihoods,
AIC (``2k − 2ℓ``) and BIC (``k ln n_t − 2ℓ``) compare directly; ``k`` counts the free parameters (``u``
is fixed and shared, not counted):

* half-normal, gamma, Weibull, log-normal: the family with loc 0 *left-truncated at u*, density
  ``f(x) / S(u)``. A truncated fit is what makes the comparison fair to the half-normal: the exceedances
  of a half-normal over ``u`` are not themselves half-normal (they decay almost exponentially), so
  fitting a half-normal to ``x − u`` would wrongly reject a perfect half-normal null.
* generalised Pareto and exponential: the peaks-over-threshold models, fitted to the exceedances
  ``x − u`` (loc fixed at ``u``; the exponential is memoryless, so this is also its truncated form).

The shortcut of Algorithm 1
---------------------------
Rank matching keeps each row's order, so the set of entries above the row's percentile is the set of
the top ``n`` positions of the observed row, where ``n`` is the number of values above the percentile.
Whenever ``n`` is the same for the draw and the observed row (always, unless the observed MAS has ties at
the cut), the detected sets, their LD expansion and the counts ``c`` are the observed ones; only ``μ``
and ``T`` change. :func:`amas_pvalues` checks ``n`` for every row, threshold and draw, and recounts
through ``recount`` (or flags the draw as inexact) when it differs. The detected set of a matched row
is always the first ``n`` positions of the observed order, so a recount depends on the vector of
``n`` alone and is made once per distinct vector.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

from annpal.pal import amas_from_counts, detect

log = logging.getLogger(__name__)

__all__ = [
    "TAIL_DISTRIBUTIONS",
    "HALFNORM_LOCS",
    "TailFit",
    "NullFit",
    "NullPool",
    "null_pool",
    "fit_halfnorm_both",
    "PvalueResult",
    "fit_halfnorm",
    "fit_tail",
    "fit_null",
    "rank_orders",
    "rank_match",
    "count_greater",
    "null_amas_draws",
    "amas_pvalues",
]

TAIL_DISTRIBUTIONS = ("halfnorm", "genpareto", "gamma", "expon", "weibull_min", "lognorm")


HALFNORM_LOCS = ("zero", "free")


def _null_values(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError("null MAS must be a non-empty array of finite values")
    if np.any(x < 0):
        raise ValueError("null MAS must be non-negative (attribution scores are absolute values)")
    return x


def fit_halfnorm_both(x: np.ndarray) -> dict[str, float]:
    """Both half-normal MLEs of the pooled null MAS (§5 step 1).

    Returns ``{"sigma_zero", "sigma_free", "loc_free"}``: loc fixed at 0, ``σ = sqrt(mean x²)``
    (``scipy.stats.halfnorm.fit(x, floc=0)``); and loc free, ``loc = min(x)``,
    ``σ = sqrt(mean (x − loc)²)``, the closed form that ``scipy.stats.halfnorm.fit(x)`` returns (scipy
    ≥ 1.12; the authors' scipy 1.8 reached the same maximum numerically, within ~1e-4 relative).
    """
    x = _null_values(x)
    loc = float(np.min(x))
    return {"sigma_zero": float(np.sqrt(np.mean(x * x))),
            "sigma_free": float(np.sqrt(np.mean((x - loc) ** 2))), "loc_free": loc}


def fit_halfnorm(x: np.ndarray, *, loc: str = "zero") -> float:
    """Half-normal scale σ of the pooled null MAS (§5 step 1); ``loc`` is ``"zero"`` or ``"free"``.

    ``"zero"``: MLE with loc 0, ``σ = sqrt(mean(x²))`` = ``scipy.stats.halfnorm.fit(x, floc=0)[1]``.
    ``"free"``: the scale of ``scipy.stats.halfnorm.fit(x)`` (loc free), as the authors' script; the
    null draws use it with loc 0, as their ``halfnorm.rvs(scale=σ)``.
    """
    if loc not in HALFNORM_LOCS:
        raise ValueError(f"loc must be one of {', '.join(HALFNORM_LOCS)}, got {loc!r}")
    return fit_halfnorm_both(x)[f"sigma_{loc}"]


@dataclass(frozen=True)
class NullPool:
    """The null models that enter the pooled fit, and the degenerate ones left out (§5 step 1)."""

    mas: np.ndarray  #: K0' × M rows kept
    kept: np.ndarray  #: row indices kept
    degenerate: np.ndarray  #: row indices left out


def null_pool(null_mas: np.ndarray, *, flagged: np.ndarray | None = None) -> NullPool:
    """Leave degenerate null models out of the null pool (§5 step 1).

    A degenerate model (dead network: every attribution 0) has a flat MAS row (uniform ``1/M`` from
    :mod:`annpal.attribution.mas`). Pooled, one flat row in ten lowers σ by about 2 % and makes tail
    P-values anti-conservative, so such rows never enter the fit. A row is degenerate when it is
    flagged (``models.tsv`` column ``degenerate``) or constant.

    Raises
    ------
    ValueError
        More than half of the null models are degenerate: the remaining ones are too few and the
        training recipe is evidently failing on permuted labels.
    """
    null_mas = np.asarray(null_mas, dtype=np.float64)
    dead = np.ptp(null_mas, axis=1) == 0
    if flagged is not None:
        dead |= np.asarray(flagged, dtype=bool)
    n, n_dead = dead.size, int(dead.sum())
    if 2 * n_dead > n:
        raise ValueError(f"{n_dead} of {n} null models are degenerate (dead networks: every attribution 0, "
                         f"MAS flat), more than half, so the null distribution cannot be estimated")
    return NullPool(mas=null_mas[~dead], kept=np.flatnonzero(~dead), degenerate=np.flatnonzero(dead))


@dataclass(frozen=True)
class TailFit:
    """One family fitted to the upper tail."""

    distribution: str
    params: dict[str, float]
    loglik: float
    n_params: int
    aic: float
    bic: float


@dataclass(frozen=True)
class NullFit:
    """Half-normal null fit with its tail diagnostics (§5 step 1)."""

    sigma: float
    n: int
    tail_fraction: float
    tail_threshold: float  #: u
    n_tail: int
    fits: list[TailFit]
    best: str  #: lowest AIC
    best_bic: str
    delta_aic: float  #: AIC(half-normal) − AIC(best) ≥ 0
    warning: str | None
    qq: dict[str, list[float]] = field(default_factory=dict)
    histogram: dict[str, list[float]] = field(default_factory=dict)
    halfnorm_loc: str = "zero"  #: which fit gave ``sigma`` (:data:`HALFNORM_LOCS`)
    sigmas: dict[str, float] = field(default_factory=dict)  #: :func:`fit_halfnorm_both`

    def to_json(self) -> dict[str, object]:
        return {
            "sigma": self.sigma, "halfnorm_loc": self.halfnorm_loc, **self.sigmas,
            "n": self.n, "tail_fraction": self.tail_fraction,
            "tail_threshold": self.tail_threshold, "n_tail": self.n_tail, "best": self.best,
            "best_bic": self.best_bic, "halfnorm_is_best": self.best == "halfnorm",
            "halfnorm_delta_aic": self.delta_aic,
            "warning": self.warning,
            "tail_fit_method": "density on (u, inf) fitted by MLE to x > u: halfnorm, gamma, weibull_min, "
                               "lognorm left-truncated at u (loc 0); genpareto, expon on x - u (loc u)",
            "fits": [{"distribution": f.distribution, "params": f.params, "loglik": f.loglik,
                      "n_params": f.n_params, "aic": f.aic, "bic": f.bic} for f in self.fits],
            "qq": self.qq, "histogram": self.histogram,
        }


def _truncated_nll(dist: stats.rv_continuous, x: np.ndarray, u: float, shape: float | None, scale: float
                   ) -> float:
    args = () if shape is None else (shape,)
    val = -(np.sum(dist.logpdf(x, *args, scale=scale)) - x.size * dist.logsf(u, *args, scale=scale))
    return float(val) if np.isfinite(val) else 1e300


def _fit_truncated(name: str, x: np.ndarray, u: float, start: Sequence[float]) -> tuple[dict[str, float], float]:
    """MLE of a loc-0 family left-truncated at ``u``, over log-parameters (Nelder-Mead)."""
    dist = getattr(stats, name)
    one = len(start) == 1

    def nll(theta: np.ndarray) -> float:
        p = np.exp(theta)
        return _truncated_nll(dist, x, u, None if one else p[0], p[-1])

    res = optimize.minimize(nll, np.log(np.asarray(start, dtype=np.float64)), method="Nelder-Mead",
                            options={"xatol": 1e-9, "fatol": 1e-9, "maxiter": 4000, "maxfev": 8000})
    p = np.exp(res.x)
    names = {"halfnorm": ("scale",), "gamma": ("a", "scale"), "weibull_min": ("c", "scale"),
             "lognorm": ("s", "scale")}[name]
    params = dict(zip(names, (float(v) for v in p), strict=True))
    params["loc"] = 0.0
    params["truncated_at"] = float(u)
    return params, -float(res.fun)


def fit_tail(x: np.ndarray, *, tail_fraction: float = 0.1, sigma: float | None = None) -> tuple[float, list[TailFit]]:
    """Fit the :data:`TAIL_DISTRIBUTIONS` to the top ``tail_fraction`` of ``x`` (module docstring).

    Returns ``(u, fits)`` with ``u`` the ``1 − tail_fraction`` quantile (``np.quantile``, linear).
    """
    if not 0.0 < tail_fraction < 1.0:
        raise ValueError(f"tail_fraction must be in (0, 1), got {tail_fraction}")
    x = np.asarray(x, dtype=np.float64).ravel()
    u = float(np.quantile(x, 1.0 - tail_fraction))
    xt = x[x > u]
    n_t = xt.size
    if n_t < 10:
        raise ValueError(f"only {n_t} null values above the tail threshold; need at least 10")
    y = xt - u
    sigma = fit_halfnorm(x) if sigma is None else sigma
    logs = np.log(xt)
    fits: list[tuple[str, dict[str, float], float, int]] = []
    params, ll = _fit_truncated("halfnorm", xt, u, [sigma])
    fits.append(("halfnorm", params, ll, 1))
    c, _, scale = stats.genpareto.fit(y, floc=0.0)
    fits.append(("genpareto", {"c": float(c), "scale": float(scale), "loc": u},
                 float(np.sum(stats.genpareto.logpdf(y, c, scale=scale))), 2))
    a0, _, s0 = stats.gamma.fit(xt, floc=0.0)
    params, ll = _fit_truncated("gamma", xt, u, [a0, s0])
    fits.append(("gamma", params, ll, 2))
    scale = float(np.mean(y))
    fits.append(("expon", {"scale": scale, "loc": u}, float(np.sum(stats.expon.logpdf(y, scale=scale))), 1))
    params, ll = _fit_truncated("weibull_min", xt, u, [2.0, sigma * math.sqrt(2.0)])
    fits.append(("weibull_min", params, ll, 2))
    params, ll = _fit_truncated("lognorm", xt, u, [max(float(np.std(logs)), 1e-3), float(np.exp(np.mean(logs)))])
    fits.append(("lognorm", params, ll, 2))
    out = [TailFit(distribution=name, params=p, loglik=ll, n_params=k, aic=2 * k - 2 * ll,
                   bic=k * math.log(n_t) - 2 * ll) for name, p, ll, k in fits]
    return u, out


def _thin(n: int, *, keep_top: int = 200, spread: int = 1000) -> np.ndarray:
    """Indices into a sorted array of length ``n``: ``spread`` evenly spaced plus the top ``keep_top``."""
    idx = np.concatenate([np.linspace(0, n - 1, min(spread, n)).round().astype(np.int64),
                          np.arange(max(0, n - keep_top), n)])
    return np.unique(idx)


def fit_null(null_mas: np.ndarray, *, tail_fraction: float = 0.1, aic_tolerance: float = 2.0,
             aic_per_value: float = 1e-3, bins: int = 200, halfnorm_loc: str = "zero") -> NullFit:
    """Half-normal null fit, tail comparison, warning, QQ and histogram data (§5 step 1).

    ``halfnorm_loc`` chooses σ (:func:`fit_halfnorm`); both σ are recorded in ``sigmas``, and the tail
    start value, QQ and histogram use the chosen one.

    ``best`` is the family with the lowest AIC. The warning is raised when the half-normal's AIC exceeds
    the best one by more than ``max(aic_tolerance, aic_per_value · n_tail)``:

    * ``aic_tolerance`` (2, Burnham & Anderson's "substantial support" band): a strict "not the lowest"
      rule fires on genuinely half-normal nulls, because a 2-parameter generalised Pareto or Weibull
      mimics a Gaussian tail and wins by a few tenths of a unit in a fair share of samples;
    * ``aic_per_value`` (0.001, i.e. a mean log-likelihood gain of 0.0005 nats per tail value): at paper
      scale (290 000 tail values) AIC separates families that differ far too little to matter — on
      simulated half-normal nulls of 10 × 290 522 values a truncated Weibull still wins by up to ~6
      units in some seeds, while a heavy (log-normal) null loses by ~0.4 units per value.

    ``aic_tolerance=0, aic_per_value=0`` gives the strict rule. The QQ data compare the sorted tail
    values with the quantiles of the fitted (whole-data) half-normal at plotting positions
    ``1 − f + f·(i − ½)/n_t`` (the authors use ``linspace(0.9, 1, n_t)``, whose last point is +inf), thinned
    to about 1 200 points keeping the top 200; ``quantile_ratio`` gives observed / half-normal quantiles
    at 0.99, 0.999 and 0.9999 (1 when calibrated, > 1 for a heavier tail).
    """
    x = np.asarray(null_mas, dtype=np.float64).ravel()
    if halfnorm_loc not in HALFNORM_LOCS:
        raise ValueError(f"halfnorm_loc must be one of {', '.join(HALFNORM_LOCS)}, got {halfnorm_loc!r}")
    sigmas = fit_halfnorm_both(x)
    sigma = sigmas[f"sigma_{halfnorm_loc}"]
    u, fits = fit_tail(x, tail_fraction=tail_fraction, sigma=sigma)
    by_aic = min(fits, key=lambda f: f.aic)
    by_bic = min(fits, key=lambda f: f.bic)
    half = next(f for f in fits if f.distribution == "halfnorm")
    warning = None
    delta = half.aic - by_aic.aic
    if by_aic.distribution != "halfnorm" and delta > max(aic_tolerance, aic_per_value * len(x[x > u])):
        warning = (f"the half-normal is not the best-supported model of the null MAS upper tail (top "
                   f"{tail_fraction:.0%}): {by_aic.distribution} has AIC {delta:.1f} lower; "
                   f"AMAS P-values assume a half-normal null and may not be calibrated (compare the paper's "
                   f"T1D case); check the tail QQ plot")
    xt = np.sort(x[x > u])
    n_t = xt.size
    levels = 1.0 - tail_fraction + tail_fraction * (np.arange(1, n_t + 1) - 0.5) / n_t
    pick = _thin(n_t)
    expected = stats.halfnorm.ppf(levels[pick], scale=sigma)
    density, edges = np.histogram(x, bins=bins, density=True)
    levels_q = np.array([0.99, 0.999, 0.9999])
    ratio = np.quantile(x, levels_q) / stats.halfnorm.ppf(levels_q, scale=sigma)
    grid = np.linspace(0.0, float(x.max()), bins)
    return NullFit(
        sigma=sigma, n=x.size, tail_fraction=tail_fraction, tail_threshold=u, n_tail=n_t, fits=fits,
        best=by_aic.distribution, best_bic=by_bic.distribution, delta_aic=float(delta), warning=warning,
        qq={"level": levels[pick].tolist(), "expected": expected.tolist(), "observed": xt[pick].tolist(),
            "quantile_ratio": dict(zip(["0.99", "0.999", "0.9999"], ratio.tolist(), strict=True))},
        histogram={"edges": edges.tolist(), "density": density.tolist(), "pdf_x": grid.tolist(),
                   "pdf_y": stats.halfnorm.pdf(grid, scale=sigma).tolist()},
        halfnorm_loc=halfnorm_loc, sigmas=sigmas,
    )


def rank_orders(mas: np.ndarray) -> np.ndarray:
    """Per row, ``np.argsort(-MAS_k)``: positions from highest to lowest, as the authors' Algorithm 1."""
    return np.stack([np.argsort(-row) for row in np.asarray(mas, dtype=np.float64)])


def rank_match(draw: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """Reorder each row of ``draw`` so its ranks match the observed row (§5 step 2).

    The largest drawn value goes to ``orders[k, 0]``, the next to ``orders[k, 1]`` and so on.
    """
    out = np.empty_like(draw, dtype=np.float64)
    desc = np.sort(draw, axis=1)[:, ::-1]
    np.put_along_axis(out, orders, desc, axis=1)
    return out


def count_greater(values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``#{j : values_j > q}`` for every query ``q`` (sort + searchsorted, not a double loop).

    Only values above the smallest query can count, so only those are sorted.
    """
    queries = np.asarray(queries, dtype=np.float64)
    if queries.size == 0:
        return np.zeros(0, dtype=np.int64)
    cand = np.sort(values[values > queries.min()])
    return (cand.size - np.searchsorted(cand, queries, side="right")).astype(np.int64)


@dataclass(frozen=True)
class PvalueResult:
    """Rank-matched AMAS P-values at one threshold (§5 step 3)."""

    label: str
    theta: float
    index: np.ndarray  #: SNP indices queried
    amas: np.ndarray  #: observed AMAS of those SNPs
    exceed: np.ndarray  #: Σ_b #{j : AMAS^(b)_j > AMAS_i}
    n_draws: int
    n_snps: int
    n_inexact: int  #: draws whose detection sizes differed and could not be recounted

    @property
    def p_bound(self) -> float:
        """``1/(B·M)``: the smallest non-zero P-value this run can give."""
        return 1.0 / (self.n_draws * self.n_snps)

    @property
    def p_value(self) -> np.ndarray:
        return self.exceed / (self.n_draws * self.n_snps)


DrawSource = Callable[[int, tuple[int, int]], np.ndarray] | np.ndarray


def null_amas_draws(
    mas: np.ndarray,
    *,
    thresholds: Sequence[tuple[str, float]],
    counts: Sequence[np.ndarray],
    sigma: float,
    n_draws: int = 100,
    seed: int | None = 1,
    draws: DrawSource | None = None,
    recount: Callable[[list[np.ndarray]], np.ndarray] | None = None,
) -> Iterator[tuple[int, list[tuple[np.ndarray, bool]]]]:
    """Yield ``(b, [(AMAS^(b), exact) per threshold])`` for the rank-matched null draws (§5 step 2).

    The fast path of Algorithm 1: one ``K × M`` draw at a time, reordered by the observed ranks
    (precomputed once), ``μ^(b)`` and ``T^(b)`` recomputed, the observed counts reused whenever every
    row detects as many SNPs as the observed row (see the module docstring); otherwise the draw is
    detected again and recounted through ``recount``, or flagged ``exact = False`` without it.
    Parameters as :func:`amas_pvalues`.
    """
    mas = np.asarray(mas, dtype=np.float64)
    n_models, n_snps = mas.shape
    if sigma <= 0 or not np.isfinite(sigma):
        raise ValueError(f"sigma must be positive, got {sigma}")
    if isinstance(draws, np.ndarray):
        if draws.ndim != 3 or draws.shape[1:] != mas.shape:
            raise ValueError(f"draws must have shape (B, {n_models}, {n_snps}), got {draws.shape}")
        n_draws = draws.shape[0]
    if n_draws < 1:
        raise ValueError("n_draws must be >= 1")
    counts = [np.asarray(c, dtype=np.int64) for c in counts]
    if len(counts) != len(thresholds):
        raise ValueError("one counts vector per threshold is needed")
    rng = np.random.default_rng(seed)
    orders = rank_orders(mas)
    n_obs = [np.array([detect(row, theta=theta).size for row in mas]) for _, theta in thresholds]
    recounted: dict[tuple[int, ...], np.ndarray] = {}  # detected sets depend on n_b alone (docstring)

    for b in range(n_draws):
        if draws is None:
            draw = sigma * np.abs(rng.standard_normal((n_models, n_snps)))
        else:
            draw = np.asarray(draws[b] if isinstance(draws, np.ndarray) else draws(b, (n_models, n_snps)),
                              dtype=np.float64)
            if draw.shape != mas.shape:
                raise ValueError(f"draw {b} has shape {draw.shape}, expected {mas.shape}")
        # rank_match(draw, orders), keeping the ascending sort: percentiles of a sorted row are cheap
        # (the selection inside np.percentile is near-linear on sorted input) and equal those of the
        # matched row, which holds the same values.
        asc = np.sort(draw, axis=1)
        matched = np.empty_like(asc)
        np.put_along_axis(matched, orders, asc[:, ::-1], axis=1)
        mu_b = np.mean(matched, axis=0)
        out = []
        for (_, theta), c, n in zip(thresholds, counts, n_obs, strict=True):
            cut = np.percentile(asc, theta, axis=1)
            n_b = np.array([n_snps - np.searchsorted(asc[k], cut[k], side="right") for k in range(n_models)])
            c_b, exact = c, True
            if not np.array_equal(n_b, n):
                # The shortcut does not hold for this draw: detect again (full recomputation).
                if recount is not None:
                    key = tuple(int(v) for v in n_b)
                    if key not in recounted:
                        recounted[key] = np.asarray(recount([detect(row, theta=theta) for row in matched]),
                                                    dtype=np.int64)
                    c_b = recounted[key]
                else:
                    exact = False
            amas_b, _, _ = amas_from_counts(mu_b, c_b, theta=theta, n_models=n_models)
            out.append((amas_b, exact))
        yield b, out


def amas_pvalues(
    mas: np.ndarray,
    *,
    thresholds: Sequence[tuple[str, float]],
    counts: Sequence[np.ndarray],
    sigma: float,
    n_draws: int = 100,
    seed: int | None = 1,
    draws: DrawSource | None = None,
    all_snps: bool = False,
    recount: Callable[[list[np.ndarray]], np.ndarray] | None = None,
) -> list[PvalueResult]:
    """Rank-matched P-values of AMAS (§5 steps 2–3, paper Algorithm 1), one draw in memory at a time.

    Parameters
    ----------
    mas
        Observed ``K × M`` MAS matrix (real models).
    thresholds, counts
        ``(label, θ)`` pairs and the observed counts ``c`` for each (from :func:`annpal.pal.call_pal`).
    sigma
        Half-normal scale of the null (:func:`fit_halfnorm`).
    n_draws, seed
        ``B`` and the seed of the default draws ``σ·|N(0, 1)|`` (the same values as
        ``scipy.stats.halfnorm.rvs(scale=σ, random_state=np.random.default_rng(seed))``).
    draws
        Injected draws instead: a ``(B, K, M)`` array (then ``B`` is its length) or a function
        ``(b, (K, M)) -> array``.
    all_snps
        P-values for every SNP instead of the PAL SNPs (``AMAS > T``) only.
    recount
        ``detected sets -> counts`` (e.g. :func:`annpal.pal.ld_counts` with the band bound). Used only
        for a draw whose number of detected SNPs differs from the observed one in some row (possible
        only when the observed MAS has ties at the cut); without it such a draw keeps the observed
        counts and is counted in ``n_inexact`` (with a warning).

    Returns
    -------
    list of PvalueResult
        One per threshold; ``p = exceed/(B·M)``, with ``exceed`` counted by sorting and
        ``searchsorted`` (:func:`count_greater`).
    """
    mas = np.asarray(mas, dtype=np.float64)
    n_models, n_snps = mas.shape
    mu = np.mean(mas, axis=0)
    queries, observed = [], []
    for (_, theta), c in zip(thresholds, counts, strict=True):
        amas, threshold, _ = amas_from_counts(mu, np.asarray(c, dtype=np.int64), theta=theta, n_models=n_models)
        query = np.arange(n_snps) if all_snps else np.flatnonzero(amas > threshold)
        queries.append(query)
        observed.append(amas[query])
    exceed = [np.zeros(q.size, dtype=np.int64) for q in queries]
    inexact = [0] * len(thresholds)
    used = 0
    for _, per_threshold in null_amas_draws(mas, thresholds=thresholds, counts=counts, sigma=sigma,
                                            n_draws=n_draws, seed=seed, draws=draws, recount=recount):
        used += 1
        for t, (amas_b, exact) in enumerate(per_threshold):
            exceed[t] += count_greater(amas_b, observed[t])
            inexact[t] += not exact
    results = []
    for t, (label, theta) in enumerate(thresholds):
        if inexact[t]:
            log.warning("threshold %s: %d of %d draws detected a different number of SNPs than the observed "
                        "MAS (ties at the cut) and kept the observed counts; give annpal-pvalues --dataset to recount "
                        "them exactly", label, inexact[t], used)
        results.append(PvalueResult(label=label, theta=theta, index=queries[t], amas=observed[t],
                                    exceed=exceed[t], n_draws=used, n_snps=n_snps, n_inexact=inexact[t]))
    return results
