"""Linear comparator: PCA of standardised genotypes and per-SNP logistic regression (docs/method.md §7);
per-SNP linear regression (OLS t test, :func:`linear_gwas`) for a quantitative trait.

The paper's "Conventional GWAS" (authors' ``2a_logistic_regression.py``) fits, for every SNP, a
statsmodels ``Logit`` of the case/control label on an intercept, the SNP and the top 3 principal
components, and reports the Wald P-value of the SNP coefficient. This module computes the same
numbers without a Python loop of model fits:

* :func:`pca_standardised` — PCA of the standardised genotype matrix (all samples), streamed over SNP
  blocks so memory stays at the int8 matrix plus small buffers. Exact (eigen-decomposition of the
  samples × samples Gram matrix) or randomised (Halko et al. subspace iteration, seeded).
* :func:`logistic_gwas` — batched Newton-Raphson (IRLS) over blocks of SNPs: every SNP of a block takes
  its Newton step at once, with the small p × p systems solved by one batched ``np.linalg.solve``.
  Each SNP gets beta, SE, z, Wald P, −log10 P (exact far below 1e−300), A1 frequency, N and a status
  (``ok``, ``not_converged``, ``separation``, ``monomorphic``); a SNP never makes the run fail.
* :func:`lambda_gc`, :func:`qq_points`, :func:`wald_neg_log10_p` — genomic inflation and QQ data.

Deviations from the authors' script, on purpose:

* The authors run scikit-learn ``PCA`` on the raw (centred, unscaled) 0/1/2 genotypes; docs/method.md §7
  asks for standardised genotypes (each SNP scaled to unit variance, the usual GWAS convention, as in
  PLINK/EIGENSOFT), so that rare and common SNPs weigh alike.
* PC scores are returned scaled to unit variance (``U·sqrt(N)``) rather than ``U·S``; the SNP's Wald
  statistic is invariant to rescaling covariates, and unit-scale columns keep the Newton systems well
  conditioned.
* Missing genotypes were set to 0 (heterozygous) by PREPARE; they are analysed as such.
"""

from __future__ import annotations

import concurrent.futures
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special

from annpal.errors import InputError
from annpal.genome import format_neg_log10_p

STATUS_OK = "ok"
STATUS_NOT_CONVERGED = "not_converged"
STATUS_SEPARATION = "separation"
STATUS_MONOMORPHIC = "monomorphic"
STATUSES = (STATUS_OK, STATUS_NOT_CONVERGED, STATUS_SEPARATION, STATUS_MONOMORPHIC)

#: Median of the chi-square distribution with 1 degree of freedom (scipy.stats.chi2.ppf(0.5, 1)).
CHI2_1DF_MEDIAN = 0.45493642311957283

#: |linear predictor| above which a fitted probability counts as saturated at 0 or 1 (p < 1e−11).
_SATURATED_ETA = 25.0
#: A per-allele log-odds ratio beyond this, with saturated fits, is separation, not an effect.
_SEPARATION_BETA = 10.0
#: Stop iterating a SNP whose coefficient runs past this: the MLE does not exist (separation).
_DIVERGED_BETA = 50.0
#: Target size (elements) of one float64 samples × SNPs working block: a few fit in the CPU cache.
_BLOCK_ELEMENTS = 1 << 18


# ----------------------------------------------------------------------------------------------
# PCA


@dataclass
class PCAResult:
    """Top principal components of the standardised genotype matrix (docs/method.md §7).

    Attributes
    ----------
    scores
        ``N × k`` float64; column ``j`` is ``U[:, j]·sqrt(N)`` (mean 0, variance 1).
    singular_values
        The ``k`` largest singular values of the standardised matrix ``Z`` (``N × M_poly``).
    explained_variance_ratio
        ``s_j² / ||Z||_F²`` with ``||Z||_F² = N·M_poly``.
    n_snps_used
        Polymorphic SNPs entering the PCA (monomorphic SNPs have no standardised value).
    method
        ``"exact"`` or ``"randomized"``.
    """

    scores: np.ndarray
    singular_values: np.ndarray
    explained_variance_ratio: np.ndarray
    n_snps_used: int
    method: str


def _block_size(n_samples: int, block_size: int | None) -> int:
    if block_size is not None:
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        return int(block_size)
    return max(32, _BLOCK_ELEMENTS // max(n_samples, 1))


def snp_moments(genotypes: np.ndarray, *, block_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-SNP mean and population standard deviation (ddof 0) of the −1/0/1 genotypes, streamed.

    Returns
    -------
    mean, sd
        float64 arrays of length M; ``sd == 0`` marks a monomorphic SNP.
    """
    n, m = genotypes.shape
    bs = _block_size(n, block_size)
    mean = np.empty(m)
    sd = np.empty(m)
    for j0 in range(0, m, bs):
        x = np.asarray(genotypes[:, j0 : j0 + bs], dtype=np.float64)
        mu = x.mean(axis=0)
        mean[j0 : j0 + bs] = mu
        # Exact integer-valued sums keep the variance of a constant column exactly 0.
        sd[j0 : j0 + bs] = np.sqrt(np.maximum((x * x).mean(axis=0) - mu * mu, 0.0))
    sd[sd < 1e-12] = 0.0
    return mean, sd


def _poly_blocks(sd: np.ndarray, bs: int) -> list[tuple[slice, np.ndarray]]:
    """SNP blocks as ``(slice, polymorphic mask)``, skipping blocks with no polymorphic SNP."""
    m = sd.shape[0]
    out = []
    for j0 in range(0, m, bs):
        sl = slice(j0, min(j0 + bs, m))
        keep = sd[sl] > 0
        if keep.any():
            out.append((sl, keep))
    return out


def _standardise(genotypes: np.ndarray, mean: np.ndarray, sd: np.ndarray, sl: slice,
                 keep: np.ndarray) -> np.ndarray:
    """``Z = (x − mean)/sd`` for the polymorphic SNPs of one block (float64 N × b)."""
    x = np.asarray(genotypes[:, sl], dtype=np.float64)[:, keep]
    return (x - mean[sl][keep]) / sd[sl][keep]


def _gram(z: np.ndarray) -> np.ndarray:
    return z @ z.T


def _for_each(func, items, *, n_threads: int) -> None:
    """Call ``func`` on every item (each writes its own slice of a shared output), on ``n_threads``
    threads when above 1; numpy releases the GIL in the block arithmetic."""
    if n_threads <= 1:
        for item in items:
            func(item)
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=n_threads) as pool:
        list(pool.map(func, items))


def _ordered_sum(func, items: list, n_threads: int) -> np.ndarray:
    """``sum(func(item) for item in items)`` added strictly in item order, ``n_threads`` items at a time.

    The fixed summation order makes the floating-point result independent of the thread count.
    """
    total = None
    if n_threads <= 1:
        for item in items:
            part = func(item)
            total = part if total is None else total + part
        return total
    with concurrent.futures.ThreadPoolExecutor(max_workers=n_threads) as pool:
        for i in range(0, len(items), n_threads):
            for part in pool.map(func, items[i : i + n_threads]):
                total = part if total is None else total + part
    return total


def _fix_signs(u: np.ndarray) -> np.ndarray:
    """Make each column's largest-magnitude entry positive, so PCs do not flip between runs/methods."""
    idx = np.argmax(np.abs(u), axis=0)
    signs = np.sign(u[idx, np.arange(u.shape[1])])
    signs[signs == 0] = 1.0
    return u * signs


def pca_standardised(
    genotypes: np.ndarray,
    *,
    n_pcs: int = 3,
    method: Literal["auto", "exact", "randomized"] = "auto",
    seed: int = 1,
    n_oversamples: int = 10,
    n_power_iter: int = 7,
    block_size: int | None = None,
    exact_max_samples: int = 4000,
    n_threads: int = 1,
) -> PCAResult:
    """PCA of the standardised genotype matrix, all samples (docs/method.md §7).

    Parameters
    ----------
    genotypes
        ``N × M`` int8 −1/0/1 (may be a read-only memmap; read in SNP blocks).
    n_pcs
        Number of components ``k`` (0 gives an empty result).
    method
        ``"exact"``: eigen-decomposition of the ``N × N`` Gram matrix ``Z Zᵀ`` accumulated over SNP
        blocks (memory ``8·N²`` bytes). ``"randomized"``: subspace iteration with ``k + n_oversamples``
        Gaussian test vectors drawn from ``seed`` and ``n_power_iter`` power iterations (memory
        ``8·M·(k + n_oversamples)`` bytes); deterministic given the seed. ``"auto"``: exact when
        ``N <= exact_max_samples``.
    seed
        Seed of the randomised test matrix (unused by the exact method).
    block_size
        SNPs per streamed block (default: about 256k matrix elements per block).
    n_threads
        Blocks processed in parallel threads; partial sums are added in block order, so the result
        does not depend on the thread count.

    Returns
    -------
    PCAResult
        Scores scaled to unit variance, singular values, explained variance ratios.
    """
    n, m = genotypes.shape
    if n_pcs < 0:
        raise ValueError(f"n_pcs must be >= 0, got {n_pcs}")
    mean, sd = snp_moments(genotypes, block_size=block_size)
    m_poly = int((sd > 0).sum())
    if n_pcs == 0:
        return PCAResult(np.empty((n, 0)), np.empty(0), np.empty(0), m_poly, "none")
    if n_pcs >= min(n, m_poly):
        raise InputError(
            f"--n-pcs {n_pcs}: needs fewer components than samples ({n}) and polymorphic SNPs "
            f"({m_poly}); lower --n-pcs"
        )
    bs = _block_size(n, block_size)
    if method == "auto":
        method = "exact" if n <= exact_max_samples else "randomized"
    if method == "exact":
        blocks = _poly_blocks(sd, bs)
        gram = _ordered_sum(lambda blk: _gram(_standardise(genotypes, mean, sd, *blk)), blocks, n_threads)
        evals, evecs = np.linalg.eigh(gram)
        order = np.argsort(evals)[::-1][:n_pcs]
        u = evecs[:, order]
        s = np.sqrt(np.maximum(evals[order], 0.0))
    elif method == "randomized":
        u, s = _randomized_left_singular(genotypes, mean, sd, bs, n_pcs=n_pcs, seed=seed,
                                         n_oversamples=n_oversamples, n_power_iter=n_power_iter,
                                         n_threads=n_threads)
    else:
        raise ValueError(f"unknown PCA method {method!r}")
    u = _fix_signs(u)
    total = float(n) * m_poly
    return PCAResult(scores=u * math.sqrt(n), singular_values=s, explained_variance_ratio=s**2 / total,
                     n_snps_used=m_poly, method=method)


def _randomized_left_singular(genotypes, mean, sd, bs, *, n_pcs, seed, n_oversamples, n_power_iter,
                              n_threads):
    """Halko, Martinsson & Tropp (2011) Alg. 4.4 with QR re-orthonormalisation, streamed over SNPs."""
    n, m = genotypes.shape
    ell = min(n_pcs + n_oversamples, n)
    rng = np.random.default_rng(seed)
    # One test matrix for all M SNPs (monomorphic rows unused), so the result does not depend on
    # the block size.
    omega = rng.standard_normal((m, ell))
    blocks = _poly_blocks(sd, bs)

    def z_times(right: np.ndarray) -> np.ndarray:  # Z @ right, right is M × ell
        return _ordered_sum(lambda blk: _standardise(genotypes, mean, sd, *blk) @ right[blk[0]][blk[1]],
                            blocks, n_threads)

    def zt_times(left: np.ndarray) -> np.ndarray:  # Zᵀ @ left, rows of monomorphic SNPs stay 0
        out = np.zeros((m, ell))

        def one(blk):
            sl, keep = blk
            out[np.arange(sl.start, sl.stop)[keep]] = _standardise(genotypes, mean, sd, sl, keep).T @ left

        _for_each(one, blocks, n_threads=n_threads)
        return out

    q, _ = np.linalg.qr(z_times(omega))
    for _ in range(n_power_iter):
        w, _ = np.linalg.qr(zt_times(q))
        q, _ = np.linalg.qr(z_times(w))
    # B = Qᵀ Z (ell × M); its left singular vectors come from B Bᵀ (ell × ell), accumulated by block.
    bbt = _ordered_sum(lambda blk: _gram(q.T @ _standardise(genotypes, mean, sd, *blk)), blocks, n_threads)
    evals, evecs = np.linalg.eigh(bbt)
    order = np.argsort(evals)[::-1][:n_pcs]
    return q @ evecs[:, order], np.sqrt(np.maximum(evals[order], 0.0))


# ----------------------------------------------------------------------------------------------
# Covariates


def read_covariates(path: str | Path, samples: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Read a covariate table and align it to the dataset's samples (docs/method.md §7).

    The file has a header ``FID IID <name> ...`` (tab- or whitespace-separated; PLINK's ``#FID`` is
    accepted), one row per sample, numeric covariate columns. Extra samples are ignored.

    Returns
    -------
    values, names
        ``N × c`` float64 matrix in the order of ``samples`` and the column names.

    Raises
    ------
    InputError
        Missing FID/IID columns, duplicate samples, dataset samples absent from the file, a missing or
        non-numeric value, or a constant column (it duplicates the intercept).
    """
    path = Path(path)
    try:
        first = path.read_text().splitlines()[0] if path.stat().st_size else ""
        sep = "\t" if "\t" in first else r"\s+"
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, engine="python")
    except (OSError, IndexError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: cannot read the covariate table ({exc}); give a TSV with header "
                         "FID IID and numeric covariate columns") from None
    table.columns = [str(c).lstrip("#").strip() for c in table.columns]
    if "FID" not in table.columns or "IID" not in table.columns:
        raise InputError(f"{path}: header must start with FID and IID columns (found "
                         f"{', '.join(table.columns[:5])}); add them")
    names = [c for c in table.columns if c not in ("FID", "IID")]
    if not names:
        raise InputError(f"{path}: no covariate columns besides FID and IID; add at least one or drop --covar")
    key = table["FID"].str.strip() + "\x00" + table["IID"].str.strip()
    if key.duplicated().any():
        raise InputError(f"{path}: {int(key.duplicated().sum())} duplicated FID/IID rows; keep one row per sample")
    want = samples["FID"].astype(str) + "\x00" + samples["IID"].astype(str)
    pos = pd.Index(key).get_indexer(want)
    if (pos < 0).any():
        raise InputError(f"{path}: {int((pos < 0).sum())} of {len(want)} dataset samples have no row; "
                         "add a row for every sample in samples.tsv")
    rows = table.iloc[pos]
    values = np.empty((len(want), len(names)))
    for j, name in enumerate(names):
        text = rows[name].str.strip()
        missing = text.str.upper().isin(["", "NA", "NAN", "."])
        if missing.any():
            raise InputError(f"{path}: column {name!r} has {int(missing.sum())} missing values; "
                             "impute them or drop the column")
        col = pd.to_numeric(text, errors="coerce")
        if col.isna().any() or not np.isfinite(col.to_numpy(dtype=float)).all():
            bad = text[col.isna()].iloc[0] if col.isna().any() else "inf"
            raise InputError(f"{path}: column {name!r} is not numeric (e.g. {bad!r}); "
                             "encode it as numbers (dummy-code categories)")
        values[:, j] = col.to_numpy(dtype=float)
        if np.ptp(values[:, j]) == 0:
            raise InputError(f"{path}: column {name!r} is constant over the dataset's samples; drop it")
    return values, names


# ----------------------------------------------------------------------------------------------
# P-values


def wald_log_p(z: np.ndarray) -> np.ndarray:
    """Natural log of the two-sided Wald P-value ``2·Φ(−|z|)``, exact for any |z|.

    ``log_ndtr`` switches to an asymptotic series in the far tail, so the result stays exact where
    ``P`` itself underflows (|z| > 38, P < 1e−300).
    """
    z = np.asarray(z, dtype=np.float64)
    return special.log_ndtr(-np.abs(z)) + math.log(2.0)


def wald_neg_log10_p(z: np.ndarray) -> np.ndarray:
    """``−log10`` of the two-sided Wald P-value, exact even where P underflows double precision."""
    return -wald_log_p(z) / math.log(10.0)


def lambda_gc(z: np.ndarray) -> float:
    """Genomic inflation factor ``median(z²) / 0.4549`` (chi-square 1 df median); NaN if empty."""
    z = np.asarray(z, dtype=np.float64)
    z = z[np.isfinite(z)]
    if z.size == 0:
        return float("nan")
    return float(np.median(z * z) / CHI2_1DF_MEDIAN)


def qq_points(neg_log10_p: np.ndarray, *, max_points: int = 5000, keep_top: int = 1000) -> dict[str, list]:
    """QQ-plot data: expected vs observed −log10 P, sorted decreasing, thinned for plotting.

    Expected quantiles are ``−log10(i / (n + 1))`` (as the authors' script). The ``keep_top`` most
    significant points are kept; the rest are thinned evenly so at most ``max_points`` remain.
    """
    obs = np.sort(np.asarray(neg_log10_p, dtype=np.float64)[np.isfinite(neg_log10_p)])[::-1]
    n = obs.size
    exp = -np.log10(np.arange(1, n + 1) / (n + 1))
    if n > max_points:
        rest = np.linspace(keep_top, n - 1, max(max_points - keep_top, 2)).round().astype(int)
        idx = np.unique(np.concatenate([np.arange(min(keep_top, n)), rest]))
        obs, exp = obs[idx], exp[idx]
    return {"expected": [round(float(v), 6) for v in exp], "observed": [round(float(v), 6) for v in obs]}


# ----------------------------------------------------------------------------------------------
# Logistic regression


@dataclass
class GwasResult:
    """Per-SNP logistic regression results (docs/method.md §7); arrays of length M.

    ``beta``/``se``/``z``/``p_value``/``neg_log10_p`` are NaN for ``monomorphic`` and ``separation``
    SNPs; for ``not_converged`` SNPs they hold the last Newton iterate (use with care). ``beta`` is the
    log odds ratio per A1 allele (the genotype enters as A1 count − 1, which changes only the
    intercept). ``p_value`` underflows to 0 below ~1e−308; ``neg_log10_p`` stays exact.
    """

    beta: np.ndarray
    se: np.ndarray
    z: np.ndarray
    p_value: np.ndarray
    neg_log10_p: np.ndarray
    af: np.ndarray
    n: int
    status: np.ndarray
    n_iter: np.ndarray
    null_params: np.ndarray = field(default_factory=lambda: np.empty(0))

    def status_counts(self) -> dict[str, int]:
        return {s: int((self.status == s).sum()) for s in STATUSES}


def _design(covariates: np.ndarray | None, n: int) -> np.ndarray:
    cols = [np.ones((n, 1))]
    if covariates is not None and covariates.size:
        cols.append(np.asarray(covariates, dtype=np.float64).reshape(n, -1))
    return np.hstack(cols)


def _fit_null(y: np.ndarray, d: np.ndarray, *, max_iter: int, tol: float) -> np.ndarray:
    """Newton fit of label ~ intercept + covariates; its estimate starts every SNP's fit."""
    if np.linalg.matrix_rank(d) < d.shape[1]:
        raise InputError("covariates (PCs and --covar columns) are collinear; drop redundant columns")
    gamma = np.zeros(d.shape[1])
    p0 = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    gamma[0] = math.log(p0 / (1 - p0))
    separated = InputError("covariates (PCs and --covar columns) separate cases from controls (the "
                           "label model without SNP does not converge); drop the offending covariate or use fewer PCs")
    for _ in range(max(max_iter, 50)):
        mu = special.expit(d @ gamma)
        w = mu * (1 - mu)
        try:
            step = np.linalg.solve((d * w[:, None]).T @ d, d.T @ (y - mu))
        except np.linalg.LinAlgError:
            raise separated from None
        gamma += step
        if not np.all(np.isfinite(gamma)):
            raise separated
        if np.abs(step).max() < tol:
            return gamma
    raise separated


def _batched_solve(h: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve the (b, p, p) systems; a singular one yields NaN instead of failing the whole batch."""
    try:
        return np.linalg.solve(h, rhs)
    except np.linalg.LinAlgError:
        out = np.full(rhs.shape, np.nan)
        for i in range(h.shape[0]):
            try:
                out[i] = np.linalg.solve(h[i], rhs[i])
            except np.linalg.LinAlgError:
                pass
        return out


@dataclass(frozen=True)
class _NullFit:
    """Quantities of the null model shared by every SNP's first Newton step."""

    gamma: np.ndarray  # (q,) null-model coefficients
    w: np.ndarray  # (N,) μ0(1 − μ0)
    r: np.ndarray  # (N,) y − μ0
    hdd: np.ndarray  # (q, q) Dᵀ W0 D
    g_d: np.ndarray  # (q,) Dᵀ r0 (≈ 0 at the null optimum)
    xrhs: np.ndarray  # (N, q + 2) [W0 D, r0, w0]: one GEMM gives the first step's SNP terms


def _null_fit_terms(y: np.ndarray, d: np.ndarray, gamma0: np.ndarray) -> _NullFit:
    mu0 = special.expit(d @ gamma0)
    w0 = mu0 * (1.0 - mu0)
    r0 = y - mu0
    wd = d * w0[:, None]
    return _NullFit(gamma=gamma0, w=w0, r=r0, hdd=wd.T @ d, g_d=d.T @ r0,
                    xrhs=np.column_stack([wd, r0, w0]))


def _fit_block(x: np.ndarray, y: np.ndarray, d: np.ndarray, dd: np.ndarray, null: _NullFit,
               *, max_iter: int, tol: float) -> tuple[np.ndarray, ...]:
    """Batched Newton-Raphson for the SNPs (columns) of ``x`` (float64 N × b).

    Model per SNP j: logit P(y=1) = x_j·β_j + D·γ_j with D = [1, covariates]. All unfinished SNPs of
    the block take their Newton step together: the gradient and the p × p Hessian (p = 1 + q) of every
    SNP are built with a handful of matrix products, the systems solved by one batched solve. The
    covariate-covariate Hessian block Σ_i w_ij d_i d_iᵀ is ``wᵀ (d ⊗ d)``, one GEMM for all SNPs.
    Every SNP starts at the null fit (β = 0, γ = γ0), where fitted values and weights are the same for
    all SNPs: the first step needs no sigmoid and one small GEMM (about a quarter of the work saved).
    Converged SNPs drop out of the active set. The SE comes from the Hessian at the iterate before
    the last (sub-``tol``) step, as statsmodels' Newton would up to that ``tol``.
    """
    n, b = x.shape
    q = d.shape[1]
    p = q + 1
    beta = np.zeros(b)
    gam = np.tile(null.gamma, (b, 1))
    var = np.full(b, np.nan)
    n_iter = np.zeros(b, dtype=np.int64)
    converged = np.zeros(b, dtype=bool)
    failed = np.zeros(b, dtype=bool)  # singular / non-finite Hessian or diverged coefficient
    mono = x.max(axis=0) == x.min(axis=0)
    active = np.flatnonzero(~mono)
    rhs_e = np.zeros((1, p, 1))
    rhs_e[0, 0, 0] = 1.0
    for it in range(1, max_iter + 1):
        if active.size == 0:
            break
        xa = x if active.size == b else x[:, active]
        h = np.empty((active.size, p, p))
        g = np.empty((active.size, p, 2))
        if it == 1:
            terms = xa.T @ null.xrhs  # [Σ w0 x d, Σ r0 x, Σ w0 x]
            hxd = terms[:, :q]
            h[:, 0, 0] = (xa * xa).T @ null.w
            h[:, 1:, 1:] = null.hdd
            g[:, 0, 0] = terms[:, q]
            g[:, 1:, 0] = null.g_d
        else:
            eta = d @ gam[active].T
            eta += xa * beta[active]
            # Logistic sigmoid in place; exp overflow gives mu = 0 exactly, which is what we want.
            with np.errstate(over="ignore"):
                np.negative(eta, out=eta)
                np.exp(eta, out=eta)
            eta += 1.0
            mu = np.reciprocal(eta, out=eta)
            r = y[:, None] - mu
            w = mu * (1.0 - mu)
            wx = w * xa
            h[:, 0, 0] = np.einsum("nb,nb->b", wx, xa)
            hxd = wx.T @ d
            h[:, 1:, 1:] = (w.T @ dd).reshape(-1, q, q)
            g[:, 0, 0] = np.einsum("nb,nb->b", r, xa)
            g[:, 1:, 0] = r.T @ d
        h[:, 0, 1:] = hxd
        h[:, 1:, 0] = hxd
        g[:, :, 1:] = rhs_e
        sol = _batched_solve(h, g)
        step = sol[:, :, 0]
        ok = np.isfinite(sol).all(axis=(1, 2)) & (sol[:, 0, 1] > 0)
        var[active] = sol[:, 0, 1]
        n_iter[active] = it
        beta[active] += np.where(ok, step[:, 0], 0.0)
        gam[active] += np.where(ok[:, None], step[:, 1:], 0.0)
        done = ok & (np.abs(step).max(axis=1) < tol)
        bad = ~ok | (np.abs(beta[active]) > _DIVERGED_BETA)
        converged[active[done & ~bad]] = True
        failed[active[bad]] = True
        active = active[~(done | bad)]
    return beta, var, _block_status(x, d, gam, beta, converged=converged, failed=failed, mono=mono), n_iter


def _block_status(x: np.ndarray, d: np.ndarray, gam: np.ndarray, beta: np.ndarray, *, converged: np.ndarray,
                  failed: np.ndarray, mono: np.ndarray) -> np.ndarray:
    """Status per SNP of a block after Newton (rules in :func:`logistic_gwas`); saturation of the final
    fit tells separation from slow convergence."""
    eta = d @ gam.T + x * beta
    saturated = (np.abs(eta) > _SATURATED_ETA).any(axis=0)
    big = np.abs(beta) > _SEPARATION_BETA
    ran_out = ~converged & ~failed
    status = np.full(beta.size, STATUS_NOT_CONVERGED, dtype=object)
    status[converged] = STATUS_OK
    status[(converged & saturated & big) | (failed & (saturated | big)) | (ran_out & (saturated | big))] = (
        STATUS_SEPARATION)
    status[mono] = STATUS_MONOMORPHIC
    return status


def logistic_gwas(
    genotypes: np.ndarray,
    labels: np.ndarray,
    *,
    covariates: np.ndarray | None = None,
    max_iter: int = 25,
    tol: float = 1e-8,
    block_size: int | None = None,
    n_threads: int = 1,
) -> GwasResult:
    """Per-SNP logistic regression ``label ~ 1 + SNP + covariates``, Wald test (docs/method.md §7).

    Parameters
    ----------
    genotypes
        ``N × M`` int8 −1/0/1 (A1 count − 1), possibly a memmap; read in SNP blocks.
    labels
        Length-N 0/1 case/control labels.
    covariates
        ``N × c`` float64 (PC scores, then user covariates) or None; an intercept is always added.
    max_iter
        Newton iterations per SNP at most (statsmodels' default is 35; 25 is plenty from the
        null-model start).
    tol
        Convergence when every coefficient moves less than ``tol`` (statsmodels' Newton criterion).
    block_size
        SNPs per batched block (default: about 256k matrix elements per block).
    n_threads
        Blocks processed in parallel threads (numpy releases the GIL); results do not depend on it.

    Returns
    -------
    GwasResult

    Notes
    -----
    Each SNP's fit starts from the null model's estimate (β_SNP = 0), so ordinary SNPs converge in
    3-4 Newton steps. Status rules: ``monomorphic`` when the genotype is constant; ``separation`` when
    fitted probabilities saturate at 0/1 (|η| > 25) together with a runaway coefficient
    (|β| > 10 per allele), or the Hessian becomes singular/non-finite, or |β| passes 50;
    ``not_converged`` when ``max_iter`` steps did not get under ``tol`` otherwise.
    """
    n, m = genotypes.shape
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"labels has {y.shape[0]} entries for {n} samples")
    if not np.isin(y, (0.0, 1.0)).all() or y.min() == y.max():
        raise InputError("labels: need 0/1 labels with both cases and controls present")
    if max_iter < 1:
        raise ValueError("max_iter must be >= 1")
    d = _design(covariates, n)
    q = d.shape[1]
    dd = (d[:, :, None] * d[:, None, :]).reshape(n, q * q)
    gamma0 = _fit_null(y, d, max_iter=max_iter, tol=tol)
    null = _null_fit_terms(y, d, gamma0)
    bs = _block_size(n, block_size)

    beta = np.empty(m)
    var = np.empty(m)
    status = np.empty(m, dtype=object)
    n_iter = np.empty(m, dtype=np.int64)
    af = np.empty(m)

    def run(j0: int) -> None:
        sl = slice(j0, min(j0 + bs, m))
        x = np.asarray(genotypes[:, sl], dtype=np.float64)
        af[sl] = (x.mean(axis=0) + 1.0) / 2.0
        beta[sl], var[sl], status[sl], n_iter[sl] = _fit_block(x, y, d, dd, null,
                                                               max_iter=max_iter, tol=tol)

    _for_each(run, range(0, m, bs), n_threads=n_threads)

    beta, se, z, p_value, nlp = _wald(beta, var, status)
    return GwasResult(beta=beta, se=se, z=z, p_value=p_value, neg_log10_p=nlp, af=af, n=n,
                      status=status.astype(str), n_iter=n_iter, null_params=gamma0)


def _wald(beta: np.ndarray, var: np.ndarray, status: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(beta, se, z, P, −log10 P)`` of the Wald test, NaN where the status or variance makes it void."""
    valid = np.isin(status, (STATUS_OK, STATUS_NOT_CONVERGED)) & (var > 0)
    beta = np.where(valid, beta, np.nan)
    se = np.where(valid, np.sqrt(np.where(valid, var, 1.0)), np.nan)
    z = beta / se
    nlp = np.where(valid, wald_neg_log10_p(np.where(valid, z, 0.0)), np.nan)
    with np.errstate(under="ignore"):
        p_value = np.where(valid, np.exp(wald_log_p(np.where(valid, z, 0.0))), np.nan)
    return beta, se, z, p_value, nlp


# ----------------------------------------------------------------------------------------------
# Linear regression (quantitative traits)


def t_log_p(t: np.ndarray, df: float) -> np.ndarray:
    """Natural log of the two-sided P-value ``2·P(T_df > |t|)`` of Student's t, exact where P underflows.

    scipy's ``t.logsf`` where it is finite; beyond (P below ~1e−300) the tail as a regularised incomplete
    beta function, ``P(T > |t|) = I_x(df/2, 1/2) / 2`` with ``x = df / (df + t²)``, written in logs through
    ``I_x(a, b) = x^a (1 − x)^b / (a·B(a, b)) · ₂F₁(a + b, 1; a + 1; x)`` (an identity, not an
    approximation). Where even that fails (huge df with huge |t|) the normal tail is used, which the t
    tail equals as df grows.
    """
    import scipy.stats

    t = np.abs(np.asarray(t, dtype=np.float64))
    with np.errstate(divide="ignore"):
        out = scipy.stats.t.logsf(t, df) + math.log(2.0)
    far = ~np.isfinite(out) & np.isfinite(t)
    if far.any():
        a, b = df / 2.0, 0.5
        x = df / (df + t[far] ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            tail = (a * np.log(x) + b * np.log1p(-x) - math.log(a) - special.betaln(a, b)
                    + np.log(special.hyp2f1(a + b, 1.0, a + 1.0, x)))
        out[far] = np.where(np.isfinite(tail), tail, wald_log_p(t[far]))
    return out


def linear_gwas(
    genotypes: np.ndarray,
    values: np.ndarray,
    *,
    covariates: np.ndarray | None = None,
    block_size: int | None = None,
    n_threads: int = 1,
) -> GwasResult:
    """Per-SNP least squares ``trait ~ 1 + SNP + covariates``, t test of the SNP (docs/method.md §7).

    All SNPs at once by the Frisch–Waugh–Lovell theorem: with ``Q`` an orthonormal basis of the design
    ``D = [1, covariates]``, the trait and every SNP column are residualised once (``r = v − Q Qᵀ v``);
    then ``β = x_rᵀ y_r / x_rᵀ x_r``, ``RSS = y_rᵀ y_r − β · x_rᵀ y_r``, ``σ² = RSS / (N − q − 1)`` (q
    columns in ``D``), ``SE = sqrt(σ² / x_rᵀ x_r)`` and ``t = β / SE`` — the numbers of an OLS fit per
    SNP (statsmodels ``OLS``), with two matrix products per SNP block instead of a fit per SNP.

    Parameters
    ----------
    genotypes
        ``N × M`` int8 −1/0/1 (A1 count − 1), possibly a memmap; read in SNP blocks.
    values
        Length-N trait values (finite).
    covariates
        ``N × c`` float64 (PC scores, then user covariates) or None; an intercept is always added.
    block_size, n_threads
        SNPs per block and threads over blocks (results do not depend on either).

    Returns
    -------
    GwasResult
        ``beta`` per A1 allele in trait units, ``se``, ``z`` holding the t statistic, two-sided P with
        N − q − 1 degrees of freedom; ``monomorphic`` SNPs get NaN, every other SNP ``ok``; ``n_iter`` 0.

    Raises
    ------
    InputError
        Non-finite or constant values, collinear covariates, or too few samples for the design.
    """
    n, m = genotypes.shape
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"values has {y.shape[0]} entries for {n} samples")
    if not np.isfinite(y).all() or y.min() == y.max():
        raise InputError("trait values: need finite values that vary across samples")
    d = _design(covariates, n)
    if np.linalg.matrix_rank(d) < d.shape[1]:
        raise InputError("covariates (PCs and --covar columns) are collinear; drop redundant columns")
    df = n - d.shape[1] - 1
    if df < 1:
        raise InputError(f"{n} samples for {d.shape[1] + 1} regression coefficients; add samples or use fewer PCs")
    q, _ = np.linalg.qr(d)
    y_r = y - q @ (q.T @ y)
    yy = float(y_r @ y_r)
    bs = _block_size(n, block_size)
    beta, var, af = np.empty(m), np.empty(m), np.empty(m)
    status = np.full(m, STATUS_OK, dtype=object)

    def run(j0: int) -> None:
        sl = slice(j0, min(j0 + bs, m))
        x = np.asarray(genotypes[:, sl], dtype=np.float64)
        af[sl] = (x.mean(axis=0) + 1.0) / 2.0
        mono = x.min(axis=0) == x.max(axis=0)
        x_r = x - q @ (q.T @ x)
        xx = np.einsum("ij,ij->j", x_r, x_r)
        xx = np.where(mono, 1.0, xx)
        b = (x_r.T @ y_r) / xx
        beta[sl] = b
        var[sl] = np.where(mono, np.nan, np.maximum(yy - b * b * xx, 0.0) / df / xx)
        status[sl] = np.where(mono, STATUS_MONOMORPHIC, STATUS_OK)

    _for_each(run, range(0, m, bs), n_threads=n_threads)
    valid = status == STATUS_OK
    beta = np.where(valid, beta, np.nan)
    se = np.sqrt(np.where(valid, var, np.nan))
    t = beta / se
    log_p = np.where(valid, t_log_p(np.where(valid, t, 0.0), df), np.nan)
    with np.errstate(under="ignore"):
        p_value = np.exp(log_p)
    return GwasResult(beta=beta, se=se, z=t, p_value=p_value, neg_log10_p=-log_p / math.log(10.0), af=af, n=n,
                      status=status.astype(str), n_iter=np.zeros(m, dtype=np.int64))


def gwas_table(variants: pd.DataFrame, result: GwasResult) -> pd.DataFrame:
    """The ``gwas.tsv`` table: ``index CHR BP SNP A1 A2 beta se z p_value neg_log10_p af n status``.

    ``p_value`` is text (see :func:`annpal.genome.format_neg_log10_p`) so P-values below 1e−308 are not printed as 0.
    """
    table = variants[["index", "CHR", "BP", "SNP", "A1", "A2"]].copy().reset_index(drop=True)
    table["beta"] = result.beta
    table["se"] = result.se
    table["z"] = result.z
    table["p_value"] = [format_neg_log10_p(v) for v in result.neg_log10_p]
    table["neg_log10_p"] = result.neg_log10_p
    table["af"] = result.af
    table["n"] = result.n
    table["status"] = result.status
    return table
