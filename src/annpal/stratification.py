"""Population stratification for experiments: F_ST per SNP and a trait whose rate differs by population.

Used by the stratified-cohort experiment (``benchmarks/study_covariates.py``, docs/covariates.md): two
msprime populations (:func:`annpal.simulate.simulate_genotypes` with ``split_generations``), a case
status that depends on the population alone (:func:`stratified_status`, no causal SNP at all), and
Hudson's F_ST (:func:`hudson_fst`) to tell which SNPs are ancestry-informative.
"""

from __future__ import annotations

import numpy as np


def hudson_fst(genotypes: np.ndarray, population: np.ndarray) -> tuple[np.ndarray, float]:
    """Hudson's F_ST between populations 0 and 1, per SNP and genome-wide (Bhatia et al. 2013, eq. 10).

    Per SNP ``N / D`` with ``N = (p₁ − p₂)² − p₁(1 − p₁)/(n₁ − 1) − p₂(1 − p₂)/(n₂ − 1)`` and
    ``D = p₁(1 − p₂) + p₂(1 − p₁)`` (``p`` allele frequencies, ``n`` haplotype counts); genome-wide as
    the ratio of the averages ``ΣN / ΣD``, as Bhatia et al. recommend. SNPs with ``D = 0`` (fixed for
    one allele in both) get NaN.

    Parameters
    ----------
    genotypes
        Samples × SNPs allele counts 0/1/2, or annpal's −1/0/1 (A1 count − 1: only differences of
        frequencies enter N and the products in D are symmetric in the allele, so give counts).
    population
        0 or 1 per sample.

    Returns
    -------
    per_snp, genome_wide
    """
    g = np.asarray(genotypes, dtype=np.float64)
    pop = np.asarray(population)
    if g.min() < 0:
        g = g + 1.0  # −1/0/1 → 0/1/2
    stats = []
    for k in (0, 1):
        rows = g[pop == k]
        stats.append((rows.mean(axis=0) / 2.0, 2.0 * rows.shape[0]))
    (p1, n1), (p2, n2) = stats
    num = (p1 - p2) ** 2 - p1 * (1 - p1) / (n1 - 1) - p2 * (1 - p2) / (n2 - 1)
    den = p1 * (1 - p2) + p2 * (1 - p1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_snp = np.where(den > 0, num / den, np.nan)
    return per_snp, float(num[den > 0].sum() / den[den > 0].sum())


def stratified_status(population: np.ndarray, *, case_rate: tuple[float, float], seed: int) -> np.ndarray:
    """Case (1) / control (0) status that depends on the population only: a seeded draw of exactly
    ``round(case_rate[k] · n_k)`` cases among the samples of population ``k``.

    Returns
    -------
    numpy.ndarray
        int8 status per sample.
    """
    pop = np.asarray(population)
    rng = np.random.default_rng(seed)
    status = np.zeros(pop.size, dtype=np.int8)
    for k in (0, 1):
        members = np.flatnonzero(pop == k)
        n_cases = int(round(case_rate[k] * members.size))
        status[rng.choice(members, size=n_cases, replace=False)] = 1
    return status


__all__ = ["hudson_fst", "stratified_status"]
