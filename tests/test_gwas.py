"""Tests for annpal.gwas and bin/annpal-gwas (docs/method.md §7).

References are independent: statsmodels ``Logit`` fitted SNP by SNP (the authors' loop), numpy's SVD
of the standardised matrix, mpmath for far-tail normal probabilities, hand-made tables.
"""

from __future__ import annotations

import json
import math
import warnings

import mpmath
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from click.testing import CliRunner
from conftest import load_bin, make_genotypes, make_prepared
from scipy import stats

from annpal import gwas
from annpal.errors import InputError


def _simulated(n: int = 400, m: int = 240, seed: int = 0):
    """Genotypes with two populations (so PCs matter) and a label driven by SNP 3 and ancestry."""
    rng = np.random.default_rng(seed)
    g = make_genotypes(n, m, seed=seed)
    pop = rng.random(n) < 0.5
    shift = rng.random((int(pop.sum()), m)) < 0.4  # population 1 carries extra B alleles
    g[pop] = np.minimum(g[pop] + shift, 1).astype(np.int8)
    logit = -0.5 + 0.7 * g[:, 3] + 0.8 * pop
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return g, y


def _statsmodels_wald(g: np.ndarray, y: np.ndarray, covariates: np.ndarray, j: int):
    """The authors' per-SNP fit: Logit(label, [1, SNP, covariates]), Wald P of the SNP coefficient."""
    x = sm.add_constant(np.column_stack([g[:, j].astype(float), covariates]), has_constant="add")
    fit = sm.Logit(y.astype(float), x).fit(disp=0)
    return fit.params[1], fit.bse[1], fit.pvalues[1]


@pytest.fixture(scope="module")
def simulated():
    g, y = _simulated()
    pcs = gwas.pca_standardised(g, n_pcs=3).scores
    return g, y, pcs


# ----------------------------------------------------------------------------------------------
# logistic regression


@pytest.mark.parametrize("extra_covariate", [False, True])
def test_logistic_gwas__matches_statsmodels(simulated, extra_covariate):
    g, y, pcs = simulated
    covariates = pcs
    if extra_covariate:
        covariates = np.column_stack([pcs, np.random.default_rng(5).normal(40, 10, len(y))])
    res = gwas.logistic_gwas(g, y, covariates=covariates)
    assert (res.status == "ok").all()
    assert res.n == len(y)
    for j in range(g.shape[1]):
        beta, se, p = _statsmodels_wald(g, y, covariates, j)
        assert res.beta[j] == pytest.approx(beta, rel=1e-6, abs=1e-9)
        assert res.se[j] == pytest.approx(se, rel=1e-6)
        assert res.neg_log10_p[j] == pytest.approx(-math.log10(p), rel=1e-6)
        assert res.p_value[j] == pytest.approx(p, rel=1e-5)
    af = (g.astype(float) + 1).sum(axis=0) / (2 * len(y))
    np.testing.assert_allclose(res.af, af, rtol=0, atol=1e-15)
    assert res.neg_log10_p[3] > 5  # the causal SNP stands out


def test_logistic_gwas__separation_and_monomorphic_flagged(simulated):
    g, y, pcs = simulated
    rng = np.random.default_rng(2)
    g = g[:, :20].copy()
    g[:, 0] = 0  # monomorphic
    g[:, 1] = np.where(y == 1, 1, -1)  # perfect separation
    g[:, 2] = np.where(y == 1, rng.integers(0, 2, len(y)), -1)  # quasi-complete: allele B only in cases
    res = gwas.logistic_gwas(g, y, covariates=pcs)
    assert list(res.status[:3]) == ["monomorphic", "separation", "separation"]
    assert (res.status[3:] == "ok").all()
    assert np.isnan(res.beta[:3]).all() and np.isnan(res.neg_log10_p[:3]).all()
    assert np.isfinite(res.neg_log10_p[3:]).all()
    assert res.status_counts() == {"ok": 17, "not_converged": 0, "separation": 2, "monomorphic": 1}


def test_logistic_gwas__not_converged_flagged(simulated):
    g, y, pcs = simulated
    res = gwas.logistic_gwas(g[:, :10], y, covariates=pcs, max_iter=1)
    assert (res.status == "not_converged").all()
    assert np.isfinite(res.beta).all()  # the last iterate is still reported


def test_logistic_gwas__block_size_and_threads_do_not_change_results(simulated):
    g, y, pcs = simulated
    a = gwas.logistic_gwas(g, y, covariates=pcs)
    b = gwas.logistic_gwas(g, y, covariates=pcs, block_size=7, n_threads=2)
    np.testing.assert_allclose(a.neg_log10_p, b.neg_log10_p, rtol=1e-12)
    np.testing.assert_array_equal(a.status, b.status)


def test_logistic_gwas__no_covariates_matches_statsmodels(simulated):
    g, y, _ = simulated
    res = gwas.logistic_gwas(g[:, :5], y, covariates=None)
    for j in range(5):
        fit = sm.Logit(y.astype(float), sm.add_constant(g[:, j].astype(float))).fit(disp=0)
        assert res.neg_log10_p[j] == pytest.approx(-math.log10(fit.pvalues[1]), rel=1e-6)


def test_logistic_gwas__separating_covariate_is_input_error(simulated):
    g, y, _ = simulated
    with pytest.raises(InputError, match="separate"):
        gwas.logistic_gwas(g[:, :5], y, covariates=(y + 0.0)[:, None])


def test_logistic_gwas__one_class_is_input_error(simulated):
    g, y, _ = simulated
    with pytest.raises(InputError, match="both cases and controls"):
        gwas.logistic_gwas(g[:, :5], np.zeros_like(y))


# ----------------------------------------------------------------------------------------------
# P-values, λGC, QQ


@pytest.mark.parametrize("z", [0.0, 1.0, 3.5, 8.0, 20.0])
def test_wald_neg_log10_p__matches_scipy(z):
    assert gwas.wald_neg_log10_p(np.array([z]))[0] == pytest.approx(-math.log10(2 * stats.norm.sf(z)), rel=1e-12)


@pytest.mark.parametrize("z", [38.5, 40.0, 100.0, 1e3, 1e5])
def test_wald_neg_log10_p__exact_below_double_precision(z):
    mpmath.mp.dps = 60
    ref = -mpmath.log10(mpmath.erfc(mpmath.mpf(z) / mpmath.sqrt(2)))
    got = gwas.wald_neg_log10_p(np.array([-z, z]))
    np.testing.assert_allclose(got, float(ref), rtol=1e-12)
    # asymptotic formula: P ≈ 2·φ(z)/z → −log10 P ≈ (z²/2 + log z + log(π/2)/2) / ln 10
    if z >= 1e3:
        asym = (z * z / 2 + math.log(z) + 0.5 * math.log(math.pi / 2)) / math.log(10)
        assert got[0] == pytest.approx(asym, rel=1e-9)


def test_lambda_gc__hand_computed():
    z = np.array([1.0, -2.0, 3.0, np.nan])  # median of z² = 4
    assert gwas.lambda_gc(z) == pytest.approx(4 / stats.chi2.ppf(0.5, 1), rel=1e-12)
    assert math.isnan(gwas.lambda_gc(np.array([np.nan])))


def test_lambda_gc__null_near_one():
    z = np.random.default_rng(0).standard_normal(200_000)
    assert gwas.lambda_gc(z) == pytest.approx(1.0, abs=0.02)


def test_qq_points__thinned_and_sorted():
    nlp = -np.log10(np.random.default_rng(1).uniform(size=20_000))
    qq = gwas.qq_points(nlp, max_points=500, keep_top=100)
    assert 100 < len(qq["observed"]) <= 500 == len(qq["expected"]) or len(qq["observed"]) == len(qq["expected"])
    assert qq["observed"] == sorted(qq["observed"], reverse=True)
    assert qq["expected"][0] == pytest.approx(-math.log10(1 / 20_001), abs=1e-6)
    assert qq["observed"][0] == pytest.approx(nlp.max(), abs=1e-6)


# ----------------------------------------------------------------------------------------------
# PCA


def _svd_reference(g: np.ndarray, k: int) -> np.ndarray:
    x = g.astype(float)
    sd = x.std(axis=0)
    keep = sd > 0
    z = (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]
    u, s, _ = np.linalg.svd(z, full_matrices=False)
    return u[:, :k] * math.sqrt(len(g)), s[:k]


def test_pca_standardised__exact_matches_numpy_svd(simulated):
    g, _, _ = simulated
    g = g.copy()
    g[:, 7] = 1  # monomorphic: ignored
    ref_u, ref_s = _svd_reference(g, 3)
    res = gwas.pca_standardised(g, n_pcs=3, method="exact", block_size=13)
    np.testing.assert_allclose(res.singular_values, ref_s, rtol=1e-10)
    np.testing.assert_allclose(np.abs(res.scores), np.abs(ref_u), atol=1e-8)  # up to sign
    assert res.n_snps_used == g.shape[1] - 1
    np.testing.assert_allclose(res.explained_variance_ratio, ref_s**2 / (len(g) * (g.shape[1] - 1)))
    np.testing.assert_allclose(res.scores.std(axis=0), 1.0, rtol=1e-10)


def test_pca_standardised__randomized_matches_exact_and_is_deterministic(simulated):
    g, _, _ = simulated
    exact = gwas.pca_standardised(g, n_pcs=1, method="exact")
    a = gwas.pca_standardised(g, n_pcs=1, method="randomized", seed=3, block_size=50)
    b = gwas.pca_standardised(g, n_pcs=1, method="randomized", seed=3, block_size=50, n_threads=2)
    np.testing.assert_array_equal(a.scores, b.scores)
    # PC1 separates the two populations: well determined, so randomised ≈ exact (sign-fixed).
    np.testing.assert_allclose(a.scores, exact.scores, atol=1e-4)
    assert a.singular_values[0] == pytest.approx(exact.singular_values[0], rel=1e-8)


def test_pca_standardised__threads_give_identical_bits(simulated):
    g, _, _ = simulated
    a = gwas.pca_standardised(g, n_pcs=3, method="exact", block_size=17)
    b = gwas.pca_standardised(g, n_pcs=3, method="exact", block_size=17, n_threads=2)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_pca_standardised__too_many_pcs_is_input_error():
    with pytest.raises(InputError, match="--n-pcs"):
        gwas.pca_standardised(make_genotypes(10, 50), n_pcs=10)


# ----------------------------------------------------------------------------------------------
# covariates


def _samples(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({"FID": [f"F{i}" for i in range(n)], "IID": [f"I{i}" for i in range(n)]})


def test_read_covariates__aligns_rows_and_accepts_plink_header(tmp_path):
    path = tmp_path / "covar.txt"
    path.write_text("#FID IID age sex\nF3 I3 40 1\nF1 I1 20 2\nF0 I0 10 1\nF2 I2 30 2\nF9 I9 99 1\n")
    values, names = gwas.read_covariates(path, _samples())
    assert names == ["age", "sex"]
    np.testing.assert_array_equal(values, [[10, 1], [20, 2], [30, 2], [40, 1]])


@pytest.mark.parametrize(("body", "message"), [
    ("FID\tIID\tage\nF0\tI0\t1\nF1\tI1\tNA\nF2\tI2\t3\nF3\tI3\t4\n", "column 'age' has 1 missing"),
    ("FID\tIID\tage\nF0\tI0\t1\nF1\tI1\t\nF2\tI2\t3\nF3\tI3\t4\n", "column 'age' has 1 missing"),
    ("FID\tIID\tage\nF0\tI0\t1\nF1\tI1\told\nF2\tI2\t3\nF3\tI3\t4\n", "column 'age' is not numeric"),
    ("FID\tIID\tage\nF0\tI0\t1\nF1\tI1\t2\nF2\tI2\t3\n", "1 of 4 dataset samples have no row"),
    ("FID\tIID\tage\nF0\tI0\t1\nF1\tI1\t1\nF2\tI2\t1\nF3\tI3\t1\n", "column 'age' is constant"),
    ("ID\tage\nF0\t1\n", "FID and IID"),
    ("FID\tIID\nF0\tI0\n", "no covariate columns"),
])
def test_read_covariates__bad_file_is_input_error(tmp_path, body, message):
    path = tmp_path / "covar.tsv"
    path.write_text(body)
    with pytest.raises(InputError, match=message) as info:
        gwas.read_covariates(path, _samples())
    assert str(path) in str(info.value)


# ----------------------------------------------------------------------------------------------
# bin/annpal-gwas


def test_main__writes_outputs(tiny_prepared, tmp_path):
    out = tmp_path / "g"
    result = CliRunner().invoke(load_bin("annpal-gwas"), ["--dataset", str(tiny_prepared), "--out-dir", str(out),
                                                         "--versions", str(tmp_path / "versions.yml")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "gwas.tsv", sep="\t")
    assert list(table.columns) == ["index", "CHR", "BP", "SNP", "A1", "A2", "beta", "se", "z", "p_value",
                                   "neg_log10_p", "af", "n", "status"]
    assert len(table) == 300 and (table["status"] == "ok").all() and (table["n"] == 400).all()
    # the causal SNPs 10 and 150 (or an LD partner in their 5-SNP block) lead each chromosome
    assert table.loc[table["neg_log10_p"][:150].idxmax(), "index"] in range(10, 15)
    assert table.loc[table["neg_log10_p"][150:].idxmax(), "index"] in range(150, 155)
    summary = json.loads((out / "gwas.json").read_text())
    assert summary["n_pcs"] == 3 and summary["status_counts"]["ok"] == 300
    assert summary["lambda_gc"] > 0 and "versions" in summary and summary["qq"]["observed"]
    pcs = pd.read_csv(out / "pcs.tsv", sep="\t")
    assert list(pcs.columns) == ["FID", "IID", "PC1", "PC2", "PC3"] and len(pcs) == 400
    assert (tmp_path / "versions.yml").read_text().startswith('"LOGISTIC_GWAS":')
    # the PCs written are the ones used: refit one SNP with statsmodels on them
    ds_g = np.load(tiny_prepared / "genotypes.npy")
    y = pd.read_csv(tiny_prepared / "samples.tsv", sep="\t")["label"].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, _, p = _statsmodels_wald(ds_g, y, pcs[["PC1", "PC2", "PC3"]].to_numpy(), 42)
    assert table.loc[42, "neg_log10_p"] == pytest.approx(-math.log10(p), rel=1e-6)


def test_main__covar_file_used(tmp_path):
    ds = make_prepared(tmp_path / "d", n_samples=120, n_snps=40, causal=(3,), n_val_per_class=10)
    covar = tmp_path / "covar.tsv"
    pd.DataFrame({"FID": ds.samples["FID"], "IID": ds.samples["IID"],
                  "age": np.random.default_rng(0).normal(50, 5, 120)}).to_csv(covar, sep="\t", index=False)
    out = tmp_path / "g"
    result = CliRunner().invoke(load_bin("annpal-gwas"), ["--dataset", str(tmp_path / "d"), "--covar", str(covar),
                                                         "--n-pcs", "2", "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "gwas.json").read_text())["covariates"] == ["PC1", "PC2", "age"]


def test_main__bad_covar_is_one_line_error(tiny_prepared, tmp_path):
    covar = tmp_path / "covar.tsv"
    samples = pd.read_csv(tiny_prepared / "samples.tsv", sep="\t")
    pd.DataFrame({"FID": samples["FID"], "IID": samples["IID"], "batch": ["a"] * len(samples)}).to_csv(
        covar, sep="\t", index=False)
    out = tmp_path / "g"
    result = CliRunner().invoke(load_bin("annpal-gwas"), ["--dataset", str(tiny_prepared), "--covar", str(covar),
                                                         "--out-dir", str(out)])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("[ERROR]")]
    assert len(errors) == 1 and "covar.tsv" in errors[0] and "'batch'" in errors[0]
    assert not out.exists()


def test_main__too_many_pcs_is_one_line_error(tmp_path):
    make_prepared(tmp_path / "d", n_samples=30, n_snps=20, causal=(3,), n_val_per_class=5)
    result = CliRunner().invoke(load_bin("annpal-gwas"), ["--dataset", str(tmp_path / "d"), "--n-pcs", "25",
                                                         "--out-dir", str(tmp_path / "g")])
    assert result.exit_code == 1 and "[ERROR] --n-pcs 25" in result.output


@pytest.mark.parametrize("args", [["--n-pcs", "-1"], ["--max-iter", "0"], ["--pca-method", "svd"]])
def test_main__usage_errors_exit_2(tiny_prepared, tmp_path, args):
    result = CliRunner().invoke(load_bin("annpal-gwas"), ["--dataset", str(tiny_prepared), "--out-dir",
                                                         str(tmp_path / "g"), *args])
    assert result.exit_code == 2


def test_main__missing_dataset_exits_2(tmp_path):
    result = CliRunner().invoke(load_bin("annpal-gwas"), ["--dataset", str(tmp_path / "nope"), "--out-dir",
                                                         str(tmp_path / "g")])
    assert result.exit_code == 2


def test_gwas_table__columns_and_tiny_p_text():
    variants = pd.DataFrame({"index": [0, 1], "CHR": ["1", "2"], "BP": [10, 20], "SNP": ["rs1", "rs2"],
                             "A1": ["A", "C"], "A2": ["G", "T"], "MAF": 0.1, "MISSING": 0.0})
    res = gwas.GwasResult(beta=np.array([3.0, np.nan]), se=np.array([0.1, np.nan]), z=np.array([30.0, np.nan]),
                          p_value=np.array([0.0, np.nan]), neg_log10_p=np.array([400.0, np.nan]),
                          af=np.array([0.2, 0.5]), n=10, status=np.array(["ok", "separation"]),
                          n_iter=np.array([4, 25]))
    table = gwas.gwas_table(variants, res)
    assert list(table.columns) == ["index", "CHR", "BP", "SNP", "A1", "A2", "beta", "se", "z", "p_value",
                                   "neg_log10_p", "af", "n", "status"]
    assert table["p_value"].tolist() == ["1e-400", "NA"]


# ----------------------------------------------------------------------------------------------
# linear regression (quantitative traits)


def _quantitative(seed: int = 0):
    """The two-population genotypes of :func:`_simulated` with a trait driven by SNP 3 and ancestry."""
    g, _ = _simulated(seed=seed)
    rng = np.random.default_rng(seed + 1)
    ancestry = g[:, 7:40].mean(axis=1)
    values = 50 + 2.0 * g[:, 3] + 3.0 * ancestry + rng.normal(0, 4, len(g))
    g[:, 11] = 1  # one monomorphic SNP
    return g, values


@pytest.mark.parametrize("extra_covariate", [False, True])
def test_linear_gwas__matches_statsmodels_ols_to_1e8(simulated, extra_covariate):
    _, _, pcs = simulated
    g, values = _quantitative()
    covariates = pcs
    if extra_covariate:
        covariates = np.column_stack([pcs, np.random.default_rng(5).normal(40, 10, len(values))])
    res = gwas.linear_gwas(g, values, covariates=covariates, block_size=37)
    assert res.status[11] == "monomorphic" and np.isnan(res.beta[11]) and np.isnan(res.neg_log10_p[11])
    assert (np.delete(res.status, 11) == "ok").all()
    for j in np.delete(np.arange(g.shape[1]), 11):
        x = sm.add_constant(np.column_stack([g[:, j].astype(float), covariates]), has_constant="add")
        fit = sm.OLS(values, x).fit()
        for ours, ref in ((res.beta[j], fit.params[1]), (res.se[j], fit.bse[1]), (res.z[j], fit.tvalues[1]),
                          (res.p_value[j], fit.pvalues[1])):
            assert ours == pytest.approx(ref, rel=1e-8, abs=1e-300)
        assert res.neg_log10_p[j] == pytest.approx(-math.log10(fit.pvalues[1]), rel=1e-8)
    assert int(np.nanargmax(res.neg_log10_p)) == 3


def test_linear_gwas__no_covariates_is_the_simple_regression():
    g, values = _quantitative(seed=2)
    res = gwas.linear_gwas(g, values)
    slope, _, _, p, se = stats.linregress(g[:, 3].astype(float), values)[:5]
    assert res.beta[3] == pytest.approx(slope, rel=1e-10) and res.se[3] == pytest.approx(se, rel=1e-10)
    assert res.p_value[3] == pytest.approx(p, rel=1e-8)


def test_linear_gwas__block_size_and_threads_do_not_change_results(simulated):
    _, _, pcs = simulated
    g, values = _quantitative()
    one = gwas.linear_gwas(g, values, covariates=pcs)
    other = gwas.linear_gwas(g, values, covariates=pcs, block_size=5, n_threads=3)
    np.testing.assert_allclose(other.neg_log10_p, one.neg_log10_p, rtol=1e-12)


@pytest.mark.parametrize("values, message", [
    (np.full(400, 2.5), "vary"), (np.r_[np.nan, np.arange(399.0)], "finite"),
])
def test_linear_gwas__bad_values_are_input_errors(simulated, values, message):
    g, _, _ = simulated
    with pytest.raises(InputError, match=message):
        gwas.linear_gwas(g, values)


@pytest.mark.parametrize("t, df", [(0.3, 5), (2.0, 50), (8.0, 398), (30.0, 100)])
def test_t_log_p__matches_scipy(t, df):
    assert gwas.t_log_p(np.array([t, -t]), df) == pytest.approx([math.log(2 * stats.t.sf(t, df))] * 2, rel=1e-12)


@pytest.mark.parametrize("t, df", [(60.0, 9000), (1e3, 500), (1e5, 50)])
def test_t_log_p__exact_where_p_underflows(t, df):
    mpmath.mp.dps = 50
    x = mpmath.mpf(df) / (df + mpmath.mpf(t) ** 2)
    exact = float(mpmath.log(mpmath.betainc(df / 2, 0.5, 0, x, regularized=True)))  # two-sided P = I_x(df/2, 1/2)
    assert gwas.t_log_p(np.array([t]), df)[0] == pytest.approx(exact, rel=1e-9)


def test_main__quantitative_dataset_uses_linear_regression(tmp_path):
    prepared = tmp_path / "prepared"
    make_prepared(prepared, trait_type="quantitative")
    out = tmp_path / "g"
    result = CliRunner().invoke(load_bin("annpal-gwas"), ["--dataset", str(prepared), "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "gwas.tsv", sep="\t")
    summary = json.loads((out / "gwas.json").read_text())
    assert summary["regression"] == "linear" and summary["trait_type"] == "quantitative"
    assert summary["n_cases"] is None
    pcs = pd.read_csv(out / "pcs.tsv", sep="\t")[["PC1", "PC2", "PC3"]].to_numpy()
    g = np.load(prepared / "genotypes.npy")
    y = pd.read_csv(prepared / "samples.tsv", sep="\t")["label"].to_numpy()
    fit = sm.OLS(y, sm.add_constant(np.column_stack([g[:, 42].astype(float), pcs]))).fit()
    assert table.loc[42, "beta"] == pytest.approx(fit.params[1], rel=1e-8)
    assert table.loc[42, "neg_log10_p"] == pytest.approx(-math.log10(fit.pvalues[1]), rel=1e-8)
    assert table.loc[table["neg_log10_p"][:150].idxmax(), "index"] in range(10, 15)
