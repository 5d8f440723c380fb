"""Simulation: the paper's phenotype model on real genotypes, and realistic test genotypes from msprime.

Phenotypes (docs/method.md §8, paper "Simulations"): causal SNPs drawn at random, split 5:5:4:6 between
dominant, recessive, two-way and three-way interaction terms, weights w ~ N(0, 1), Gaussian noise with
variance λ·Var(G), binarised at a threshold τ giving a target number of cases (or, for a quantitative
trait, kept as it is). The dominant and
recessive functions f_D and f_R are a reconstruction (the paper's formula images were lost) and live in
:func:`f_dominant` and :func:`f_recessive` alone.

Genotypes (test data): coalescent simulation with msprime under human-like settings, thinned to an
array-like density, as a PLINK-ready table of A1 counts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from annpal.errors import InputError

log = logging.getLogger(__name__)

ROLES = ("dominant", "recessive", "two_way", "three_way")
#: Share of causal SNPs per role (docs/method.md §8): 5:5:4:6.
ROLE_RATIO = (5, 5, 4, 6)
#: Paper's case fraction: 1814 cases among 9139 samples (the EstBB SCZ cohort).
PAPER_PREVALENCE = 1814 / 9139


class ColumnSource(Protocol):
    """Anything with ``shape`` and ``g[:, columns]`` giving int8 −1/0/1 columns (an array, a memmap,
    :class:`annpal.io.plink.LazyGenotypes`)."""

    shape: tuple[int, int]

    def __getitem__(self, key: Any) -> np.ndarray: ...


def f_dominant(x: np.ndarray) -> np.ndarray:
    """Dominant effect f_D(x) = 1 if x ≥ 0 else 0: present with at least one copy of the A1 allele.

    Reconstructed term (docs/method.md §8): the published formula was an image lost from our copy.
    """
    return (np.asarray(x) >= 0).astype(np.float64)


def f_recessive(x: np.ndarray) -> np.ndarray:
    """Recessive effect f_R(x) = 1 if x = 1 else 0: present only with two copies of the A1 allele.

    Reconstructed term (docs/method.md §8): the published formula was an image lost from our copy.
    """
    return (np.asarray(x) == 1).astype(np.float64)


def causal_counts(n_causal: int) -> dict[str, int]:
    """Numbers of dominant SNPs, recessive SNPs, two-way pairs and three-way triples for ``n_causal``.

    Exactly 5:5:4:6 of the SNPs when ``n_causal`` is a multiple of 20 (n = 100: 25, 25, 10 pairs,
    10 triples); otherwise pairs and triples are rounded and the rest shared by dominant/recessive.
    """
    if n_causal < 1:
        raise InputError(f"--n-causal {n_causal}: at least 1 causal SNP is needed")
    total = sum(ROLE_RATIO)
    n_pairs = round(n_causal * ROLE_RATIO[2] / total / 2)
    n_triples = round(n_causal * ROLE_RATIO[3] / total / 3)
    while 2 * n_pairs + 3 * n_triples > n_causal:  # tiny n: drop interactions first
        if n_triples:
            n_triples -= 1
        else:
            n_pairs -= 1
    rest = n_causal - 2 * n_pairs - 3 * n_triples
    return {"dominant": (rest + 1) // 2, "recessive": rest // 2, "two_way": n_pairs, "three_way": n_triples}


@dataclass
class PhenotypeSimulation:
    """Result of :func:`simulate_phenotype`.

    ``truth`` has one row per causal SNP: ``column`` (index into the genotype columns), ``role``,
    ``term`` (index of its term), ``partners`` (columns of the other SNPs of the term, a tuple) and
    ``weight`` (the term's weight, shared by the SNPs of an interaction).
    """

    phenotype: np.ndarray
    liability: np.ndarray
    genetic_value: np.ndarray
    threshold: float
    truth: pd.DataFrame
    var_genetic: float
    noise_sd: float
    trait_type: str = "binary"

    @property
    def n_cases(self) -> int | None:
        """Cases of a binary trait; ``None`` for a quantitative one."""
        return None if self.trait_type == "quantitative" else int(self.phenotype.sum())


def permute_phenotype(phenotype: np.ndarray, *, seed: int) -> np.ndarray:
    """The phenotype shuffled across samples: a null trait with the same number of cases.

    For null calibration (docs/validation.md): the simulated trait is drawn as usual (so the truth table
    and the case count are those of the real scenario) and then permuted, which breaks every link
    between genotypes and trait. The permutation has its own stream, ``default_rng([seed, 1])``, so it
    never reuses the draws of the causal SNPs, weights or noise.
    """
    phenotype = np.asarray(phenotype)
    return phenotype[np.random.default_rng([seed, 1]).permutation(phenotype.size)]


def _draw_causal_columns(genotypes: ColumnSource, n_causal: int, rng: np.random.Generator
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Random columns with variation (a constant column has no effect), in random order, and their
    genotypes (samples × n_causal int8)."""
    n_snps = genotypes.shape[1]
    order = rng.permutation(n_snps)
    chosen: list[int] = []
    blocks: list[np.ndarray] = []
    step = max(256, 2 * n_causal)
    for start in range(0, n_snps, step):
        cols = order[start:start + step]
        block = np.asarray(genotypes[:, cols], dtype=np.int8)
        varies = block.min(axis=0) != block.max(axis=0)
        need = n_causal - len(chosen)
        take = np.flatnonzero(varies)[:need]
        chosen.extend(cols[take].tolist())
        blocks.append(block[:, take])
        if len(chosen) == n_causal:
            break
    if len(chosen) < n_causal:
        raise InputError(
            f"--n-causal {n_causal}: only {len(chosen)} SNPs vary in the genotypes; lower --n-causal"
        )
    return np.asarray(chosen, dtype=np.int64), np.concatenate(blocks, axis=1)


def _case_count(n_samples: int, n_snps: int, *, n_causal: int, noise: float, n_cases: int | None,
                prevalence: float | None, trait_type: str = "binary") -> int | None:
    """The target case count of :func:`simulate_phenotype` (``None`` for a quantitative trait), or
    InputError for impossible settings."""
    if n_cases is not None and prevalence is not None:
        raise InputError("give either --n-cases or --prevalence, not both")
    if noise < 0:
        raise InputError(f"--noise {noise}: the noise factor λ must be ≥ 0 (paper: 1, 2 or 3)")
    if n_causal > n_snps:
        raise InputError(f"--n-causal {n_causal}: the genotypes have only {n_snps} SNPs; lower --n-causal")
    if trait_type == "quantitative":
        if n_cases is not None or prevalence is not None:
            raise InputError("--n-cases and --prevalence set the cases of a binary trait; drop them with "
                             "--trait-type quantitative")
        return None
    if n_cases is None:
        frac = PAPER_PREVALENCE if prevalence is None else prevalence
        if not 0 < frac < 1:
            raise InputError(f"--prevalence {frac}: must lie strictly between 0 and 1")
        n_cases = int(round(frac * n_samples))
    if not 1 <= n_cases <= n_samples - 1:
        raise InputError(f"--n-cases {n_cases}: must lie between 1 and {n_samples - 1} (the data have "
                         f"{n_samples} samples)")
    return n_cases


def _genetic_value(x: np.ndarray, columns: np.ndarray, counts: dict[str, int], weights: np.ndarray
                   ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """G per sample (docs/method.md §8) from the causal columns ``x`` (dominant, recessive, pairs, triples
    in that order) and the truth rows (one per causal SNP: column, role, term, partners, weight)."""
    g = np.zeros(x.shape[0], dtype=np.float64)
    rows: list[dict[str, Any]] = []
    pos = 0
    term = 0
    for role, width, effect in (("dominant", 1, f_dominant), ("recessive", 1, f_recessive),
                                ("two_way", 2, None), ("three_way", 3, None)):
        for _ in range(counts[role]):
            members = list(range(pos, pos + width))
            w = weights[term]
            if effect is not None:
                g += w * effect(x[:, members[0]])
            else:
                g += w * np.prod(x[:, members], axis=1)
            for j in members:
                rows.append({"column": int(columns[j]), "role": role, "term": term,
                             "partners": tuple(int(columns[k]) for k in members if k != j), "weight": float(w)})
            pos += width
            term += 1
    return g, rows


def simulate_phenotype(
    genotypes: ColumnSource,
    *,
    n_causal: int = 100,
    noise: float = 1.0,
    n_cases: int | None = None,
    prevalence: float | None = None,
    seed: int,
    trait_type: str = "binary",
) -> PhenotypeSimulation:
    """Simulate a binary or quantitative trait on real genotypes with the paper's model (docs/method.md §8).

    y = Σ_D w·f_D(x) + Σ_R w·f_R(x) + Σ_pairs w·x_a·x_b + Σ_triples w·x_a·x_b·x_c + ε,
    ε ~ N(0, λ·Var(G)) with G the genetic part; a sample is a case where y > τ, with τ chosen so that
    exactly ``n_cases`` (or ``round(prevalence · N)``) samples are cases. A quantitative trait is y itself
    (the same draws of causal SNPs, weights and noise for the same seed; never binarised).

    Parameters
    ----------
    genotypes
        samples × SNPs, −1/0/1 (only the causal columns are read).
    n_causal
        Causal SNPs, split 5:5:4:6 (:func:`causal_counts`); drawn among columns that vary.
    noise
        λ, the noise variance as a multiple of Var(G) (paper: 1, 2, 3).
    n_cases, prevalence
        Target case count, or case fraction; neither: the paper's fraction 1814/9139.
    seed
        Seeds the causal draw, the weights and the noise.
    trait_type
        ``binary`` (cases where y > τ) or ``quantitative`` (y; ``n_cases``/``prevalence`` must be unset,
        ``threshold`` is NaN).

    Returns
    -------
    PhenotypeSimulation

    Raises
    ------
    InputError
        Impossible settings (too many causal SNPs, no genetic variance, a case count outside 1..N−1).
    """
    n_samples, n_snps = genotypes.shape
    n_cases = _case_count(n_samples, n_snps, n_causal=n_causal, noise=noise, n_cases=n_cases,
                          prevalence=prevalence, trait_type=trait_type)
    rng = np.random.default_rng(seed)
    counts = causal_counts(n_causal)
    columns, x = _draw_causal_columns(genotypes, n_causal, rng)
    n_terms = counts["dominant"] + counts["recessive"] + counts["two_way"] + counts["three_way"]
    weights = rng.standard_normal(n_terms)
    g, rows = _genetic_value(x.astype(np.float64), columns, counts, weights)

    var_g = float(g.var())
    if var_g <= 0:
        raise InputError(
            "the simulated genetic value does not vary across samples (causal SNPs too rare for their "
            "terms); use another --seed or more --n-causal"
        )
    noise_sd = float(np.sqrt(noise * var_g))
    liability = g + rng.normal(0.0, noise_sd, size=n_samples) if noise_sd > 0 else g.copy()
    truth = pd.DataFrame(rows, columns=["column", "role", "term", "partners", "weight"])
    if n_cases is None:  # quantitative: the trait is y itself
        return PhenotypeSimulation(phenotype=liability.copy(), liability=liability, genetic_value=g,
                                   threshold=float("nan"), truth=truth, var_genetic=var_g, noise_sd=noise_sd,
                                   trait_type="quantitative")
    # Rank-based so the case count is exact even with ties (noise 0); τ halfway between the last case
    # and the first control.
    order = np.argsort(-liability, kind="stable")
    phenotype = np.zeros(n_samples, dtype=np.int8)
    phenotype[order[:n_cases]] = 1
    threshold = float((liability[order[n_cases - 1]] + liability[order[n_cases]]) / 2)
    return PhenotypeSimulation(phenotype=phenotype, liability=liability, genetic_value=g, threshold=threshold,
                               truth=truth, var_genetic=var_g, noise_sd=noise_sd)


# --------------------------------------------------------------------------------------------------
# Test genotypes (msprime)
# --------------------------------------------------------------------------------------------------

@dataclass
class SimulatedGenotypes:
    """A1 allele counts (samples × SNPs, int8 0/1/2; A1 = minor allele) with PLINK fam/bim tables and
    each sample's population (0, or 0/1 for a two-population simulation)."""

    a1_counts: np.ndarray
    fam: pd.DataFrame
    bim: pd.DataFrame
    population: np.ndarray | None = None


def _thin_to_grid(positions: np.ndarray, eligible: np.ndarray, *, spacing: float,
                  rng: np.random.Generator) -> np.ndarray:
    """One random eligible site per ``spacing``-bp bin (array-like, evenly spread density)."""
    idx = np.flatnonzero(eligible)
    bins = np.floor(positions[idx] / spacing).astype(np.int64)
    keys = rng.random(len(idx))
    # Sort by bin, then by random key: the first site of each bin is a uniform draw within the bin.
    order = np.lexsort((keys, bins))
    first = np.ones(len(order), dtype=bool)
    first[1:] = bins[order][1:] != bins[order][:-1]
    return np.sort(idx[order[first]])


def _dosage(genotypes: np.ndarray) -> np.ndarray:
    """Derived-allele dosage per individual from one site's haplotypes (nodes 2i, 2i+1 = individual i)."""
    return (genotypes[0::2] + genotypes[1::2]).astype(np.int8)


def _derived_frequencies(mts) -> np.ndarray:
    """Derived-allele frequency of every site, one site decoded at a time.

    ``genotype_matrix()`` would hold all sites × 2n haplotypes as int32 at once (7.6 GB for a 50 Mb
    chromosome of 4 000 samples, which the out-of-memory killer stopped); this keeps one site.
    """
    freq = np.empty(mts.num_sites, dtype=np.float64)
    for k, variant in enumerate(mts.variants(copy=False)):
        freq[k] = _dosage(variant.genotypes).mean(dtype=np.float64) / 2
    return freq


def _dosages(mts, sites: np.ndarray) -> np.ndarray:
    """``len(sites) × n`` int8 derived-allele dosages of the chosen sites (sorted site indices)."""
    out = np.empty((sites.size, mts.num_samples // 2), dtype=np.int8)
    wanted = dict(zip(sites.tolist(), range(sites.size), strict=True))
    for variant in mts.variants(copy=False):
        row = wanted.get(variant.site.id)
        if row is not None:
            out[row] = _dosage(variant.genotypes)
    return out


def simulate_genotypes(
    *,
    n_samples: int = 1000,
    n_chromosomes: int = 3,
    chrom_length_mb: float = 5.0,
    snps_per_mb: float = 300.0,
    min_maf: float = 0.01,
    seed: int = 1,
    population_size: float = 1e4,
    mutation_rate: float = 1.25e-8,
    recombination_rate: float = 1e-8,
    split_generations: float | None = None,
) -> SimulatedGenotypes:
    """Diploid genotypes with realistic LD from the coalescent with recombination (msprime).

    Each chromosome is an independent ``sim_ancestry`` (constant Ne, human-like rates) followed by
    biallelic mutations; sites with MAF ≥ ``min_maf`` are thinned to one per ``1/snps_per_mb`` Mb bin
    (genotyping-array-like spacing). A1 is the minor allele; positions are 1-based; genetic positions
    follow the uniform recombination rate (1e−8 per bp = 1 cM/Mb); IDs are rs-style and unique.

    Parameters
    ----------
    n_samples, n_chromosomes, chrom_length_mb
        Individuals, chromosomes (named 1..n) and the length of each.
    snps_per_mb, min_maf
        Target density after thinning and the MAF filter applied before it.
    seed
        Seeds everything (per-chromosome ancestry and mutation seeds, alleles, thinning, sex).
    population_size, mutation_rate, recombination_rate
        Ne, μ per bp per generation, r per bp per generation.
    split_generations
        ``None``: one panmictic population. Otherwise two populations of Ne ``population_size`` each,
        split from one ancestral population of the same size this many generations ago, without
        migration (expected F_ST ≈ 1 − exp(−T / 2Ne)); the first ``n_samples // 2`` samples are
        population 0 (``A``), the rest population 1 (``B``). For stratified-cohort experiments.
    """
    import msprime

    rng = np.random.default_rng(seed)
    # msprime's discrete genome needs a whole number of bp (8.2 * 1e6 is 8199999.999999999).
    length = float(round(chrom_length_mb * 1e6))
    counts: list[np.ndarray] = []
    bims: list[pd.DataFrame] = []
    seeds = rng.integers(1, 2**31 - 1, size=(n_chromosomes, 2))
    for c in range(n_chromosomes):
        ts = _ancestry(n_samples, population_size=population_size, length=length,
                       recombination_rate=recombination_rate, split_generations=split_generations,
                       seed=int(seeds[c, 0]))
        mts = msprime.sim_mutations(ts, rate=mutation_rate, model=msprime.BinaryMutationModel(),
                                    discrete_genome=True, random_seed=int(seeds[c, 1]))
        if mts.num_sites == 0:
            raise InputError(f"chromosome {c + 1}: no segregating sites; lengthen --chrom-length-mb")
        freq = _derived_frequencies(mts)
        maf = np.minimum(freq, 1 - freq)
        positions = mts.tables.sites.position
        chosen = _thin_to_grid(positions, maf >= min_maf, spacing=1e6 / snps_per_mb, rng=rng)
        dosage = _dosages(mts, chosen)
        derived_is_minor = freq[chosen] <= 0.5
        a1 = np.where(derived_is_minor[:, None], dosage, 2 - dosage).astype(np.int8)
        counts.append(a1.T)
        letters = np.array(list("ACGT"))
        pair = np.array([rng.choice(4, size=2, replace=False) for _ in range(len(chosen))]).reshape(-1, 2)
        bp = positions[chosen].astype(np.int64) + 1
        bims.append(pd.DataFrame({
            "CHR": str(c + 1), "SNP": "", "CM": bp * recombination_rate * 100, "BP": bp,
            "A1": letters[pair[:, 0]], "A2": letters[pair[:, 1]],
        }))
        log.info("chromosome %d: %d sites, %d with MAF >= %g, %d kept", c + 1, mts.num_sites,
                 int((maf >= min_maf).sum()), min_maf, len(chosen))
    bim = pd.concat(bims, ignore_index=True)
    bim["SNP"] = [f"rs{100001 + k}" for k in range(len(bim))]
    fam = pd.DataFrame({
        "FID": [f"F{i + 1:05d}" for i in range(n_samples)], "IID": [f"I{i + 1:05d}" for i in range(n_samples)],
        "PAT": "0", "MAT": "0", "SEX": rng.integers(1, 3, size=n_samples), "PHENO": "-9",
    })
    population = np.zeros(n_samples, dtype=np.int8)
    if split_generations is not None:
        population[n_samples // 2:] = 1
    return SimulatedGenotypes(a1_counts=np.ascontiguousarray(np.concatenate(counts, axis=1)), fam=fam, bim=bim,
                              population=population)


def _ancestry(n_samples: int, *, population_size: float, length: float, recombination_rate: float,
              split_generations: float | None, seed: int):
    """One chromosome's ancestry: panmictic, or two populations split ``split_generations`` ago."""
    import msprime

    if split_generations is None:
        return msprime.sim_ancestry(samples=n_samples, ploidy=2, population_size=population_size,
                                    sequence_length=length, recombination_rate=recombination_rate,
                                    random_seed=seed)
    demography = msprime.Demography()
    for name in ("A", "B", "ANC"):
        demography.add_population(name=name, initial_size=population_size)
    demography.add_population_split(time=float(split_generations), derived=["A", "B"], ancestral="ANC")
    n_a = n_samples // 2
    return msprime.sim_ancestry(samples={"A": n_a, "B": n_samples - n_a}, ploidy=2, demography=demography,
                                sequence_length=length, recombination_rate=recombination_rate,
                                random_seed=seed)


def truth_table(sim: PhenotypeSimulation, variants: pd.DataFrame) -> pd.DataFrame:
    """The truth TSV table ``SNP CHR BP role partners weight`` (partners: comma-separated SNP IDs, ``.``
    when none), for a simulation on genotype columns described by ``variants`` (rows = columns)."""
    ids = variants["SNP"].astype(str).to_numpy()
    t = sim.truth
    out = pd.DataFrame({
        "SNP": ids[t["column"].to_numpy()],
        "CHR": variants["CHR"].astype(str).to_numpy()[t["column"].to_numpy()],
        "BP": variants["BP"].to_numpy()[t["column"].to_numpy()],
        "role": t["role"].to_numpy(),
        "partners": [",".join(ids[list(p)]) if p else "." for p in t["partners"]],
        "weight": t["weight"].to_numpy(),
    })
    return out
