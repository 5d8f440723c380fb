"""annpal.simulate: the paper's phenotype model (docs/method.md §8) and the msprime test genotypes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers_input import random_counts, write_fileset

from annpal.errors import InputError
from annpal.io import plink
from annpal.simulate import (
    causal_counts,
    f_dominant,
    f_recessive,
    permute_phenotype,
    simulate_genotypes,
    simulate_phenotype,
    truth_table,
)


def _genotypes(n=500, m=200, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.binomial(2, rng.uniform(0.1, 0.5, m), size=(n, m)) - 1).astype(np.int8)


def test_f_dominant__values():
    np.testing.assert_array_equal(f_dominant(np.array([-1, 0, 1])), [0.0, 1.0, 1.0])


def test_f_recessive__values():
    np.testing.assert_array_equal(f_recessive(np.array([-1, 0, 1])), [0.0, 0.0, 1.0])


@pytest.mark.parametrize(("n", "expected"), [
    (100, (25, 25, 10, 10)), (1000, (250, 250, 100, 100)), (20, (5, 5, 2, 2)), (1, (1, 0, 0, 0)),
])
def test_causal_counts__paper_ratio(n, expected):
    c = causal_counts(n)
    assert (c["dominant"], c["recessive"], c["two_way"], c["three_way"]) == expected


@pytest.mark.parametrize("n", range(1, 60))
def test_causal_counts__total_is_n(n):
    c = causal_counts(n)
    assert c["dominant"] + c["recessive"] + 2 * c["two_way"] + 3 * c["three_way"] == n
    assert min(c.values()) >= 0


def test_simulate_phenotype__exact_case_count_and_truth():
    g = _genotypes()
    sim = simulate_phenotype(g, n_causal=40, noise=1.0, n_cases=123, seed=5)
    assert sim.n_cases == 123 and sim.phenotype.dtype == np.int8
    t = sim.truth
    assert t["role"].value_counts().to_dict() == {"dominant": 10, "recessive": 10, "three_way": 12, "two_way": 8}
    assert t["column"].is_unique
    # partners are symmetric and share the term's weight
    for _, row in t.iterrows():
        for p in row["partners"]:
            partner = t.loc[t["column"] == p].iloc[0]
            assert row["column"] in partner["partners"] and partner["weight"] == row["weight"]
    # cases are exactly the samples above the threshold
    np.testing.assert_array_equal(sim.phenotype, (sim.liability > sim.threshold).astype(np.int8))


def test_simulate_phenotype__genetic_value_matches_plain_loops():
    g = _genotypes(seed=2)
    sim = simulate_phenotype(g, n_causal=20, noise=2.0, prevalence=0.3, seed=9)
    # independent re-implementation from the truth table, one sample and one term at a time
    expected = np.zeros(g.shape[0])
    for _term, rows in sim.truth.groupby("term"):
        cols = rows["column"].tolist()
        w = rows["weight"].iloc[0]
        role = rows["role"].iloc[0]
        for i in range(g.shape[0]):
            x = [int(g[i, c]) for c in cols]
            if role == "dominant":
                expected[i] += w * (1.0 if x[0] >= 0 else 0.0)
            elif role == "recessive":
                expected[i] += w * (1.0 if x[0] == 1 else 0.0)
            else:
                prod = 1.0
                for v in x:
                    prod *= v
                expected[i] += w * prod
    np.testing.assert_allclose(sim.genetic_value, expected)
    assert sim.var_genetic == pytest.approx(np.var(expected))
    assert sim.noise_sd == pytest.approx(np.sqrt(2.0 * np.var(expected)))
    assert sim.n_cases == round(0.3 * g.shape[0])


def test_simulate_phenotype__noise_variance_scales_with_lambda():
    g = _genotypes(n=20000, m=100, seed=3)
    for lam in (1.0, 3.0):
        sim = simulate_phenotype(g, n_causal=20, noise=lam, seed=1)
        ratio = np.var(sim.liability - sim.genetic_value) / sim.var_genetic
        assert ratio == pytest.approx(lam, rel=0.05)


def test_simulate_phenotype__seeded_and_only_varying_columns():
    g = _genotypes(m=60)
    g[:, ::2] = 1  # half the columns constant
    a = simulate_phenotype(g, n_causal=20, seed=4)
    b = simulate_phenotype(g, n_causal=20, seed=4)
    c = simulate_phenotype(g, n_causal=20, seed=5)
    np.testing.assert_array_equal(a.phenotype, b.phenotype)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert not a.truth["column"].equals(c.truth["column"])
    assert (a.truth["column"] % 2 == 1).all()
    assert a.n_cases == round(500 * 1814 / 9139)  # paper's case fraction by default


def test_simulate_phenotype__on_lazy_plink_columns(tmp_path):
    counts = random_counts(80, 50, seed=6)
    fs = plink.open_fileset(write_fileset(tmp_path / "s", counts))
    dense = (counts - 1).astype(np.int8)
    lazy = plink.LazyGenotypes(fs, np.arange(50))
    a = simulate_phenotype(dense, n_causal=10, n_cases=20, seed=2)
    b = simulate_phenotype(lazy, n_causal=10, n_cases=20, seed=2)
    np.testing.assert_array_equal(a.phenotype, b.phenotype)
    variants = pd.DataFrame({"SNP": [f"rs{k + 1}" for k in range(50)], "CHR": "1", "BP": np.arange(50) * 100})
    table = truth_table(b, variants)
    assert table.columns.tolist() == ["SNP", "CHR", "BP", "role", "partners", "weight"]
    pairs = table[table["role"] == "two_way"]
    assert all(len(p.split(",")) == 1 for p in pairs["partners"])
    assert (table.loc[table["role"] == "dominant", "partners"] == ".").all()


def test_permute_phenotype__same_cases_new_order_seeded():
    y = np.zeros(400, dtype=np.int8)
    y[:80] = 1
    a, b, c = permute_phenotype(y, seed=1), permute_phenotype(y, seed=1), permute_phenotype(y, seed=2)
    assert a.sum() == 80 and a.dtype == y.dtype
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, y) and not np.array_equal(a, c)
    # its own stream: not the permutation default_rng(seed) would give
    assert not np.array_equal(a, y[np.random.default_rng(1).permutation(400)])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_causal": 300}, r"only 200 SNPs; lower --n-causal"),
    ({"n_cases": 500}, r"--n-cases 500: must lie between 1 and 499"),
    ({"n_cases": 10, "prevalence": 0.1}, r"either --n-cases or --prevalence"),
    ({"prevalence": 1.5}, r"--prevalence 1.5"),
])
def test_simulate_phenotype__bad_settings(kwargs, message):
    with pytest.raises(InputError, match=message):
        simulate_phenotype(_genotypes(), seed=1, **kwargs)


def test_simulate_phenotype__too_few_varying_snps():
    g = np.ones((50, 30), dtype=np.int8)
    g[:, 0] = np.tile([-1, 1], 25)
    with pytest.raises(InputError, match=r"only 1 SNPs vary"):
        simulate_phenotype(g, n_causal=5, seed=1)


@pytest.fixture(scope="module")
def small_sim():
    return simulate_genotypes(n_samples=60, n_chromosomes=2, chrom_length_mb=1.0, snps_per_mb=200, min_maf=0.05,
                              seed=3)


def test_simulate_genotypes__shapes_and_filters(small_sim):
    sim = small_sim
    n, m = sim.a1_counts.shape
    assert n == 60 and 100 < m <= 400 and len(sim.bim) == m and len(sim.fam) == 60
    af = sim.a1_counts.mean(axis=0) / 2
    assert np.all(af <= 0.5) and np.all(af >= 0.05 - 1e-12)  # A1 = minor allele, MAF filter
    for _, chrom in sim.bim.groupby("CHR"):
        assert np.all(np.diff(chrom["BP"].to_numpy()) > 0)
        assert np.unique(chrom["BP"].to_numpy() // 5000).size == len(chrom)
    assert sim.bim["SNP"].str.fullmatch(r"rs\d+").all() and sim.bim["SNP"].is_unique
    assert (sim.bim["A1"] != sim.bim["A2"]).all()


def test_simulate_genotypes__linkage_disequilibrium(small_sim):
    g = small_sim.a1_counts.astype(float)
    chrom1 = (small_sim.bim["CHR"] == "1").to_numpy()
    r = np.abs(np.nan_to_num(np.corrcoef(g[:, chrom1].T)))
    near = np.mean([r[i, i + 1] for i in range(r.shape[0] - 1)])
    far = np.abs(np.nan_to_num(np.corrcoef(g[:, chrom1].T, g[:, ~chrom1].T)[: chrom1.sum(), chrom1.sum():])).mean()
    assert near > 2 * far


def test_simulate_genotypes__seeded():
    kw = {"n_samples": 20, "n_chromosomes": 1, "chrom_length_mb": 0.3, "snps_per_mb": 100}
    a, b = simulate_genotypes(seed=2, **kw), simulate_genotypes(seed=2, **kw)
    np.testing.assert_array_equal(a.a1_counts, b.a1_counts)
    pd.testing.assert_frame_equal(a.bim, b.bim)


def test_site_by_site_dosages__match_the_genotype_matrix():
    import msprime

    from annpal.simulate import _derived_frequencies, _dosages

    ts = msprime.sim_ancestry(samples=30, ploidy=2, population_size=1e4, sequence_length=2e5,
                              recombination_rate=1e-8, random_seed=3)
    mts = msprime.sim_mutations(ts, rate=1.25e-8, model=msprime.BinaryMutationModel(), random_seed=4)
    haplotypes = mts.genotype_matrix().astype(np.int8)  # the plain reference: every site at once
    dosage = haplotypes[:, 0::2] + haplotypes[:, 1::2]
    assert mts.num_sites > 20
    np.testing.assert_array_equal(_derived_frequencies(mts), dosage.mean(axis=1, dtype=np.float64) / 2)
    sites = np.array([0, 3, 7, mts.num_sites - 1])
    np.testing.assert_array_equal(_dosages(mts, sites), dosage[sites])


# -- quantitative mode (issue 18, item 2) ----------------------------------------------------------------

def test_simulate_phenotype__quantitative_is_the_liability_of_the_binary_draw():
    g = _genotypes()
    binary = simulate_phenotype(g, n_causal=40, noise=1.0, n_cases=123, seed=5)
    quant = simulate_phenotype(g, n_causal=40, noise=1.0, seed=5, trait_type="quantitative")
    # same causal SNPs, weights and noise draw: y itself, never binarised
    pd.testing.assert_frame_equal(quant.truth, binary.truth)
    np.testing.assert_array_equal(quant.phenotype, binary.liability)
    assert quant.phenotype.dtype == np.float64 and np.isnan(quant.threshold) and quant.n_cases is None
    # the binary trait is the top 123 of the quantitative one
    top = np.argsort(-quant.phenotype, kind="stable")[:123]
    np.testing.assert_array_equal(np.flatnonzero(binary.phenotype), np.sort(top))


def test_simulate_phenotype__quantitative_noise_and_genetic_value_by_hand():
    g = _genotypes(n=400, m=60, seed=3)
    sim = simulate_phenotype(g, n_causal=4, noise=2.0, seed=9, trait_type="quantitative")
    # n_causal 4: 2 dominant + 2 recessive SNPs (causal_counts), one weight each
    t = sim.truth.set_index("column")
    by_hand = sum(row.weight * (f_dominant(g[:, c]) if row.role == "dominant" else f_recessive(g[:, c]))
                  for c, row in t.iterrows())
    np.testing.assert_allclose(sim.genetic_value, by_hand, rtol=1e-12)
    assert sim.noise_sd == pytest.approx(np.sqrt(2.0 * by_hand.var()))


@pytest.mark.parametrize("kwargs", [{"n_cases": 100}, {"prevalence": 0.2}])
def test_simulate_phenotype__quantitative_refuses_case_settings(kwargs):
    with pytest.raises(InputError, match=r"--n-cases and --prevalence set the cases of a binary trait"):
        simulate_phenotype(_genotypes(), seed=1, trait_type="quantitative", **kwargs)
