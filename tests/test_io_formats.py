"""annpal.io readers for PGEN, BGEN and VCF: each gives the prepared dataset of the PLINK 1 path.

The PLINK 1 data (the embedded cohort, and a small file set with missing calls in shuffled order) are
converted with plink2 and prepared through each reader; genotypes.npy, samples.tsv and variants.tsv
must equal the .bed path's byte for byte. The BGEN hard-call rule and the VCF GT rule are checked on
hand-made values.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import REPO, load_bin
from helpers_input import PLINK2, PLINK2_FORMATS, case_control, plink2_convert, random_counts, write_fileset

from annpal.dataset import QCOptions, prepare_dataset
from annpal.io import open_genotypes, stream_genotypes
from annpal.io.bgen import BGEN_MISSING_INT8, hard_calls
from annpal.io.vcf import VCF_MISSING_INT8, alt_counts
from annpal.prepared import GENOTYPES, SAMPLE_COLUMNS, VARIANT_COLUMNS, load_prepared

COHORT = REPO / "assets" / "testdata" / "cohort"
needs_plink2 = pytest.mark.skipif(PLINK2 is None, reason="plink2 not installed (scripts/install-system-deps.sh)")
FORMATS = list(PLINK2_FORMATS)


@pytest.fixture(scope="module")
def prepare():
    return load_bin("annpal-prepare")


def run_prepare(prepare, args: list[str], out: Path) -> Path:
    result = CliRunner().invoke(prepare, [*args, "--out-dir", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def cohort_bed(prepare, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bed") / "prepared"
    return run_prepare(prepare, ["--bfile", str(COHORT), "--pheno", f"{COHORT}.pheno.tsv"], out)


def assert_same_prepared(got: Path, want: Path) -> None:
    for name in (GENOTYPES, "samples.tsv", "variants.tsv"):
        assert (got / name).read_bytes() == (want / name).read_bytes(), name


@needs_plink2
@pytest.mark.parametrize("fmt", FORMATS)
def test_prepare__embedded_cohort_equals_bed_path(fmt, prepare, cohort_bed, tmp_path):
    args = plink2_convert(COHORT, tmp_path / "conv" / "cohort", fmt)
    got = run_prepare(prepare, [*args, "--pheno", f"{COHORT}.pheno.tsv"], tmp_path / "prepared")
    assert_same_prepared(got, cohort_bed)
    qc = load_prepared(got).qc
    assert qc["input"]["format"] == args[0].lstrip("-")
    assert qc["samples"]["n_kept"] == 1000 and qc["variants"]["n_kept"] == 4491


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    """37 samples × 60 SNPs on chromosomes 3, 1, 2 (in that order, positions shuffled), 8 % missing calls,
    two samples missing most calls. (plink2 refuses a chromosome split in two runs, so each is one run.)"""
    counts = random_counts(37, 60, seed=11, missing_rate=0.08)
    counts[[4, 20], :40] = np.nan  # removed by --max-sample-missing 0.5
    rng = np.random.default_rng(2)
    chrom = ["3"] * 20 + ["1"] * 20 + ["2"] * 20
    bp = np.concatenate([rng.permutation(20) * 1000 + 500 for _ in range(3)])
    return write_fileset(tmp_path_factory.mktemp("messy") / "m", counts, chrom=chrom, bp=bp,
                         pheno=case_control(37, n_cases=12, seed=1))


@needs_plink2
@pytest.mark.parametrize("fmt", FORMATS)
def test_prepare_dataset__missing_calls_order_and_sample_qc_equal_bed_path(fmt, messy, tmp_path):
    pheno = tmp_path / "pheno.tsv"
    fam = np.loadtxt(f"{messy}.fam", dtype=str)
    pheno.write_text("FID\tIID\ttrait\n" + "".join(f"{f}\t{i}\t{p}\n" for f, i, p in fam[:, [0, 1, 5]]))
    args = plink2_convert(messy, tmp_path / "conv" / "m", fmt)
    kwargs = dict(pheno=pheno, qc=QCOptions(max_sample_missing=0.5, min_maf=0.05), n_val_cases=3, n_val_controls=3,
                  allow_few_samples=True)  # 37 samples: deliberately tiny
    want = prepare_dataset(messy, **kwargs)
    with open_genotypes(**{args[0].lstrip("-"): args[1], **({"sample": args[3]} if len(args) > 2 else {})}) as source:
        got = prepare_dataset(source, **kwargs, genotypes_path=tmp_path / GENOTYPES)
    np.testing.assert_array_equal(got.genotypes, want.genotypes)
    for table, columns in (("samples", SAMPLE_COLUMNS), ("variants", VARIANT_COLUMNS)):  # as written to disk
        assert getattr(got, table)[columns].astype(str).equals(getattr(want, table)[columns].astype(str)), table
    assert got.qc["missing_calls"] == want.qc["missing_calls"]
    assert got.qc["samples"]["removed_sample_missing_rate"] == 2 and got.qc["variants"]["reordered"]


@needs_plink2
@pytest.mark.parametrize("fmt", ["pfile", "bgen", "vcf"])
def test_stream_genotypes__any_column_order_and_block_size(fmt, messy, tmp_path):
    args = plink2_convert(messy, tmp_path / "m", fmt)
    rows, cols = np.array([0, 3, 4, 5, 20, 36]), np.array([59, 2, 3, 4, 17, 0, 21, 2])
    with open_genotypes(bfile=messy) as bed, open_genotypes(**{args[0].lstrip("-"): args[1]}) as source:
        want, want_stats = stream_genotypes(bed, sample_index=rows, snp_index=cols)
        for chunk_bytes in (1, len(rows) * 3, 1 << 20):
            got, stats = stream_genotypes(source, sample_index=rows, snp_index=cols, chunk_bytes=chunk_bytes)
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(stats.sample_missing, want_stats.sample_missing)
            np.testing.assert_array_equal(stats.snp_sum, want_stats.snp_sum)


def test_hard_calls__most_probable_genotype_above_threshold():
    probs = np.array([
        [1.0, 0.0, 0.0],  # A1A1: two copies of the first allele
        [0.05, 0.9, 0.05],  # heterozygous, exactly at the threshold
        [0.0, 0.11, 0.89],  # best is A2A2 but below 0.9: missing
        [0.0, 0.0, 1.0],  # A2A2
        [np.nan, np.nan, np.nan],  # missing in the BGEN
        [0.5, 0.5, 0.0],  # a tie never passes a threshold above 0.5
    ], dtype=np.float32)
    assert hard_calls(probs, min_prob=0.9).tolist() == [2, 1, BGEN_MISSING_INT8, 0, BGEN_MISSING_INT8,
                                                        BGEN_MISSING_INT8]
    assert hard_calls(probs, min_prob=0.85).tolist()[2] == 0


def test_alt_counts__missing_half_calls_and_haploid():
    # cyvcf2 genotype.array(): allele indices, -1 missing allele, -2 end of a haploid call; last column phasing
    genotype = np.array([[0, 0, 0], [0, 1, 1], [1, 1, 0], [-1, -1, 0], [-1, 1, 0], [1, -2, 1], [0, -2, 0],
                         [-1, -2, 0]], dtype=np.int16)
    m = VCF_MISSING_INT8
    assert alt_counts(genotype).tolist() == [0, 1, 2, m, m, 2, 0, m]


def test_prepare_dataset__in_place_matrix_is_cut_to_the_kept_snps(messy, tmp_path):
    kwargs = dict(qc=QCOptions(max_sample_missing=0.5, min_maf=0.2), n_val_cases=3, n_val_controls=3,
                  allow_few_samples=True)  # 37 samples: deliberately tiny
    want = prepare_dataset(messy, **kwargs)
    got = prepare_dataset(messy, **kwargs, genotypes_path=tmp_path / GENOTYPES)
    assert isinstance(got.genotypes, np.memmap) and got.genotypes.shape == want.genotypes.shape
    assert want.genotypes.shape[1] < 60 and want.genotypes.shape[0] == 35  # QC removed SNPs and samples
    np.testing.assert_array_equal(np.load(tmp_path / GENOTYPES), want.genotypes)
    header = os.path.getsize(tmp_path / GENOTYPES) - want.genotypes.size
    assert header in (64, 128)  # nothing left over after the matrix


@pytest.mark.parametrize("args", [[], ["--bfile", "a", "--vcf", "b.vcf"], ["--vcf", "b.vcf", "--sample", "s"],
                                  ["--vcf", "b.vcf", "--bgen-min-prob", "0.8"]])
def test_prepare_cli__exactly_one_genotype_input(args, prepare, tmp_path):
    result = CliRunner().invoke(prepare, [*args, "--out-dir", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "--" in result.output.splitlines()[-1] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("n_samples", [11, 32, 37, 65])  # partial last byte, whole 64-bit words, both
def test_stream_genotypes__bed_fast_path_equals_plain_path(n_samples, tmp_path):
    counts = random_counts(n_samples, 53, seed=n_samples, missing_rate=0.1)
    with open_genotypes(bfile=write_fileset(tmp_path / "f", counts)) as source:
        for cols in (None, np.array([5, 3, 9, 10, 11, 0, 52]), np.arange(10, 40)):
            for chunk_bytes in (1, n_samples * 2, n_samples * 7, 1 << 20):  # n * 2: fast and plain blocks mixed
                fast, fast_stats = stream_genotypes(source, snp_index=cols, chunk_bytes=chunk_bytes)
                plain, plain_stats = stream_genotypes(source, snp_index=cols, chunk_bytes=chunk_bytes, fast=False)
                np.testing.assert_array_equal(fast, plain)
                for name in ("snp_missing", "snp_sum", "snp_hom", "sample_missing"):
                    np.testing.assert_array_equal(getattr(fast_stats, name), getattr(plain_stats, name), err_msg=name)


def test_bed_code_counts__hand_made_bytes():
    from annpal.io.plink import bed_code_counts

    # 5 samples: codes (low bits first) 0 A1/A1, 1 missing, 2 het, 3 A2/A2, then 3; the rest of byte 2 is padding
    row = np.array([[0b11_10_01_00, 0b00_00_00_11]], dtype=np.uint8)
    assert [c.tolist() for c in bed_code_counts(row, 5)] == [[1], [1], [1], [2]]


def test_bed_code_counts__nonzero_pad_bits_are_ignored():
    from annpal.io.plink import bed_code_counts

    # the hand-made row above with every pad bit set (PLINK writes 0s there; a file need not), and the
    # 1-sample case hypothesis found: byte 0b00_00_01_01 is one missing call and a stray pad code
    row = np.array([[0b11_10_01_00, 0b11_11_11_11]], dtype=np.uint8)
    assert [c.tolist() for c in bed_code_counts(row, 5)] == [[1], [1], [1], [2]]
    one = np.array([[0b00_00_01_01]], dtype=np.uint8)
    assert [c.tolist() for c in bed_code_counts(one, 1)] == [[1], [0], [0], [0]]
