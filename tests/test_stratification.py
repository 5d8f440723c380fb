"""Stratified cohorts: Hudson's F_ST, a population-only trait, two-population msprime genotypes."""

from __future__ import annotations

import numpy as np
import pytest

from annpal.simulate import simulate_genotypes
from annpal.stratification import hudson_fst, stratified_status


def test_hudson_fst__hand_example():
    # SNP 1: pop 0 counts 0, 2 (p = 1/2), pop 1 counts 2, 2 (p = 1), 4 haplotypes each:
    #   N = 1/4 − (1/4)/3 − 0 = 1/6, D = 1/2 · 0 + 1 · 1/2 = 1/2 → 1/3
    # SNP 2: both pops 1, 1 (p = 1/2): N = −(1/4)/3 − (1/4)/3 = −1/6, D = 1/2 → −1/3
    # SNP 3: fixed in both (D = 0): NaN; genome-wide (1/6 − 1/6) / (1/2 + 1/2) = 0
    counts = np.array([[0, 1, 0], [2, 1, 0], [2, 1, 0], [2, 1, 0]])
    per_snp, genome_wide = hudson_fst(counts, np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(per_snp[:2], [1 / 3, -1 / 3])
    assert np.isnan(per_snp[2]) and genome_wide == pytest.approx(0.0, abs=1e-15)
    # annpal's −1/0/1 coding gives the same numbers
    np.testing.assert_allclose(hudson_fst(counts - 1, np.array([0, 0, 1, 1]))[0][:2], [1 / 3, -1 / 3])


def test_stratified_status__exact_case_counts_per_population():
    population = np.repeat([0, 1], [100, 60])
    status = stratified_status(population, case_rate=(0.7, 0.25), seed=4)
    assert status[:100].sum() == 70 and status[100:].sum() == 15
    np.testing.assert_array_equal(status, stratified_status(population, case_rate=(0.7, 0.25), seed=4))
    assert not np.array_equal(status, stratified_status(population, case_rate=(0.7, 0.25), seed=5))


def test_simulate_genotypes__two_populations_are_differentiated():
    kw = {"n_samples": 80, "n_chromosomes": 1, "chrom_length_mb": 1.0, "snps_per_mb": 200, "seed": 5}
    split = simulate_genotypes(split_generations=4000, **kw)
    np.testing.assert_array_equal(split.population, np.repeat([0, 1], 40))
    _, fst = hudson_fst(split.a1_counts, split.population)
    # expected about 1 − exp(−4000 / 20000) = 0.18; labels shuffled across the split give about 0
    _, shuffled = hudson_fst(split.a1_counts, np.random.default_rng(0).permutation(split.population))
    assert fst > 0.08 and abs(shuffled) < 0.03
    one = simulate_genotypes(**kw)
    assert not one.population.any()
    _, fst_one = hudson_fst(one.a1_counts, np.repeat([0, 1], 40))
    assert abs(fst_one) < 0.03
