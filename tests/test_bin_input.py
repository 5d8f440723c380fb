"""bin/annpal-testdata, bin/annpal-simulate, bin/annpal-prepare: outputs, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import load_bin
from helpers_input import case_control, random_counts, write_fileset, write_pheno

from annpal.prepared import load_prepared

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "testdata"


@pytest.fixture(scope="module")
def prepare():
    return load_bin("annpal-prepare")


@pytest.fixture(scope="module")
def simulate():
    return load_bin("annpal-simulate")


@pytest.fixture(scope="module")
def testdata():
    return load_bin("annpal-testdata")


def run(cmd, args):
    return CliRunner().invoke(cmd, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(result, *, pattern: str, out_dir: Path):
    """Exit 1, exactly one ``[ERROR]`` line matching ``pattern``, and nothing left in the output's folder."""
    import re

    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("[ERROR]")]
    assert len(errors) == 1, result.stderr
    assert re.search(pattern, errors[0]), errors[0]
    assert "Traceback" not in result.stderr
    assert not out_dir.exists()
    assert not list(out_dir.parent.glob(f".{out_dir.name}.tmp-*"))


@pytest.fixture
def cohort(tmp_path):
    """60 samples × 25 SNPs with 1/2 phenotype in the fam (24 cases).

    Deliberately tiny: prepared with ``--allow-few-samples`` (fewer than 50 training samples per class).
    """
    counts = random_counts(60, 25, seed=1, missing_rate=0.02)
    return write_fileset(tmp_path / "in" / "cohort", counts, pheno=case_control(60, n_cases=24, seed=1))


# -- annpal-testdata -------------------------------------------------------------------------------

def test_testdata__writes_plink_fileset(testdata, tmp_path):
    result = run(testdata, ["--out", tmp_path / "t" / "x", "--n-samples", 30, "--n-chromosomes", 2,
                            "--chrom-length-mb", 0.5, "--snps-per-mb", 100, "--seed", 2,
                            "--versions", tmp_path / "versions.yml"])
    assert result.exit_code == 0, result.output
    for ext in ("bed", "bim", "fam"):
        assert (tmp_path / "t" / f"x.{ext}").is_file()
    bim = pd.read_csv(tmp_path / "t" / "x.bim", sep="\t", header=None)
    assert set(bim[0]) == {1, 2} and bim[1].str.startswith("rs").all()
    assert "ANNPAL_TESTDATA" in (tmp_path / "versions.yml").read_text()


@pytest.mark.parametrize("name", ["annpal-testdata", "annpal-simulate", "annpal-prepare"])
def test_bin__help(name):
    result = CliRunner().invoke(load_bin(name), ["--help"])
    assert result.exit_code == 0 and "--versions" in result.output and "default" in result.output


# -- annpal-simulate --------------------------------------------------------------------------------

def test_simulate__outputs(simulate, cohort, tmp_path):
    out = tmp_path / "sim"
    result = run(simulate, ["--bfile", cohort, "--out-dir", out, "--n-causal", 5, "--n-cases", 20, "--seed", 3,
                            "--versions", tmp_path / "v.yml"])
    assert result.exit_code == 0, result.output
    pheno = pd.read_csv(out / "phenotype.tsv", sep="\t", dtype={"FID": str, "IID": str})
    assert pheno.columns.tolist() == ["FID", "IID", "phenotype"] and len(pheno) == 60
    assert pheno["phenotype"].sum() == 20 and set(pheno["phenotype"]) == {0, 1}
    truth = pd.read_csv(out / "truth.tsv", sep="\t")
    assert truth.columns.tolist() == ["SNP", "CHR", "BP", "role", "partners", "weight"] and len(truth) == 5
    bim = pd.read_csv(cohort.parent / "cohort.bim", sep="\t", header=None)
    assert set(truth["SNP"]) <= set(bim[1])
    info = json.loads((out / "simulate.json").read_text())
    assert info["n_cases"] == 20 and info["seed"] == 3


def test_simulate__permute_keeps_cases_and_truth(simulate, cohort, tmp_path):
    args = ["--bfile", cohort, "--n-causal", 5, "--n-cases", 20, "--seed", 3]
    assert run(simulate, [*args, "--out-dir", tmp_path / "a"]).exit_code == 0
    assert run(simulate, [*args, "--permute", "--out-dir", tmp_path / "b"]).exit_code == 0
    plain, null = (pd.read_csv(tmp_path / d / "phenotype.tsv", sep="\t") for d in ("a", "b"))
    assert null["phenotype"].sum() == plain["phenotype"].sum() == 20
    assert not null["phenotype"].equals(plain["phenotype"])
    assert sorted(null["phenotype"]) == sorted(plain["phenotype"])
    assert (tmp_path / "a" / "truth.tsv").read_text() == (tmp_path / "b" / "truth.tsv").read_text()
    assert json.loads((tmp_path / "b" / "simulate.json").read_text())["permuted"] is True


def test_simulate__cases_and_prevalence_exclusive(simulate, cohort, tmp_path):
    result = CliRunner().invoke(simulate, ["--bfile", str(cohort), "--out-dir", str(tmp_path / "s"),
                                           "--n-cases", "5", "--prevalence", "0.2"])
    assert result.exit_code == 2 and not (tmp_path / "s").exists()


def test_simulate__missing_fileset(simulate, tmp_path):
    result = run(simulate, ["--bfile", tmp_path / "nothere", "--out-dir", tmp_path / "s"])
    assert_one_line_error(result, pattern=r"nothere\.bed: not found; --bfile takes the prefix", out_dir=tmp_path / "s")


# -- annpal-prepare: success ------------------------------------------------------------------------

def test_prepare__fam_phenotype(prepare, cohort, tmp_path):
    out = tmp_path / "prep"
    result = run(prepare, ["--bfile", cohort, "--allow-few-samples", "--out-dir", out, "--val-cases", 5, "--val-controls", 6,
                           "--versions", tmp_path / "v.yml"])
    assert result.exit_code == 0, result.output
    ds = load_prepared(out)
    assert ds.genotypes.shape == (60, 25) and ds.genotypes.dtype == np.int8
    assert ((ds.labels == 1) & ds.val_mask).sum() == 5 and ((ds.labels == 0) & ds.val_mask).sum() == 6
    assert ds.qc["phenotype"]["coding"] == "1/2" and "versions" in ds.qc
    assert "ANNPAL_PREPARE" in (tmp_path / "v.yml").read_text()
    assert not list(tmp_path.glob(".prep.tmp-*"))


def test_prepare__default_split_capped_with_warning(prepare, cohort, tmp_path):
    result = run(prepare, ["--bfile", cohort, "--allow-few-samples", "--out-dir", tmp_path / "p"])
    assert result.exit_code == 0, result.output
    assert "[WARNING] validation cases capped at 12" in result.stderr
    assert load_prepared(tmp_path / "p").qc["split"]["n_val_controls"] == 18


def test_prepare__pheno_tsv_from_simulate(prepare, simulate, cohort, tmp_path):
    assert run(simulate, ["--bfile", cohort, "--out-dir", tmp_path / "s", "--n-causal", 4]).exit_code == 0
    result = run(prepare, ["--bfile", cohort, "--allow-few-samples", "--pheno", tmp_path / "s" / "phenotype.tsv", "--out-dir",
                           tmp_path / "p", "--val-cases", 3, "--val-controls", 3])
    assert result.exit_code == 0, result.output
    ds = load_prepared(tmp_path / "p")
    sim = pd.read_csv(tmp_path / "s" / "phenotype.tsv", sep="\t")
    np.testing.assert_array_equal(ds.labels, sim["phenotype"].to_numpy())
    assert ds.qc["phenotype"]["coding"] == "0/1" and ds.qc["phenotype"]["column"] == "phenotype"


def test_prepare__duplicate_ids_made_unique(prepare, tmp_path):
    ids = ["rs1", "rs2", "rs1", "rs4", "rs2", "rs6"]
    prefix = write_fileset(tmp_path / "d", random_counts(40, 6, seed=2), ids=ids, pheno=case_control(40, n_cases=10))
    result = run(prepare, ["--bfile", prefix, "--allow-few-samples", "--out-dir", tmp_path / "p"])
    assert result.exit_code == 0, result.output
    assert "[WARNING]" in result.stderr and "2 duplicate SNP IDs made unique" in result.stderr
    variants = load_prepared(tmp_path / "p").variants
    assert variants["SNP"].tolist() == ["rs1", "rs2", "rs1_dup2", "rs4", "rs2_dup2", "rs6"]


def test_prepare__non_autosomal_dropped_unless_asked(prepare, tmp_path):
    chrom = ["1", "X", "23", "2", "MT", "Y"]
    prefix = write_fileset(tmp_path / "x", random_counts(40, 6, seed=3), chrom=chrom,
                           pheno=case_control(40, n_cases=10))
    result = run(prepare, ["--bfile", prefix, "--allow-few-samples", "--out-dir", tmp_path / "p"])
    assert result.exit_code == 0, result.output
    ds = load_prepared(tmp_path / "p")
    assert ds.variants["CHR"].tolist() == ["1", "2"]
    assert ds.qc["variants"]["non_autosomal_dropped"] == {"MT": 1, "X": 2, "Y": 1}
    assert "4 non-autosomal SNPs dropped" in result.stderr
    result = run(prepare, ["--bfile", prefix, "--allow-few-samples", "--out-dir", tmp_path / "q", "--keep-non-autosomal"])
    assert result.exit_code == 0
    assert load_prepared(tmp_path / "q").variants["CHR"].tolist() == ["1", "2", "X", "X", "Y", "MT"]


def test_prepare__embedded_test_data(prepare, tmp_path):
    """The shipped cohort and its seed-1 phenotype prepare cleanly."""
    result = run(prepare, ["--bfile", ASSETS / "cohort", "--pheno", ASSETS / "cohort.pheno.tsv",
                           "--out-dir", tmp_path / "p"])
    assert result.exit_code == 0, result.output
    ds = load_prepared(tmp_path / "p")
    assert ds.n_samples == 1000 and 3000 <= ds.n_snps <= 6000
    assert set(ds.variants["CHR"]) == {"1", "2", "3"} and ds.qc["missing_calls"]["n_set_to_zero"] == 0
    split = ds.qc["split"]  # above the minimum training size without --allow-few-samples
    assert split["min_train_per_class"] == 50 and not split["allow_few_samples"]
    assert min(split["n_train_cases"], split["n_train_controls"]) >= 50


# -- annpal-prepare: bad input (docs/method.md §1, issue 3 §5) -----------------------------------------------

@pytest.mark.parametrize("ext", ["bed", "bim", "fam"])
def test_prepare__missing_file(prepare, cohort, tmp_path, ext):
    (cohort.parent / f"cohort.{ext}").unlink()
    result = run(prepare, ["--bfile", cohort, "--allow-few-samples", "--out-dir", tmp_path / "out"])
    assert_one_line_error(result, pattern=rf"cohort\.{ext}: not found; --bfile takes the prefix",
                          out_dir=tmp_path / "out")


def test_prepare__mismatched_fileset(prepare, cohort, tmp_path):
    other = write_fileset(tmp_path / "other" / "o", random_counts(100, 25, seed=9))
    (cohort.parent / "cohort.fam").write_bytes((other.parent / "o.fam").read_bytes())
    result = run(prepare, ["--bfile", cohort, "--allow-few-samples", "--out-dir", tmp_path / "out"])
    assert_one_line_error(result, pattern=r"cohort\.bed: \d+ bytes but cohort\.fam \(100 samples\).*regenerate",
                          out_dir=tmp_path / "out")


def test_prepare__wrong_magic_bytes(prepare, cohort, tmp_path):
    bed = cohort.parent / "cohort.bed"
    bed.write_bytes(b"BM" + bed.read_bytes()[2:])
    result = run(prepare, ["--bfile", cohort, "--allow-few-samples", "--out-dir", tmp_path / "out"])
    assert_one_line_error(result, pattern=r"cohort\.bed: not a PLINK 1 binary \.bed .*expected 6c 1b",
                          out_dir=tmp_path / "out")


def test_prepare__sample_major_bed(prepare, cohort, tmp_path):
    bed = cohort.parent / "cohort.bed"
    raw = bytearray(bed.read_bytes())
    raw[2] = 0
    bed.write_bytes(bytes(raw))
    result = run(prepare, ["--bfile", cohort, "--allow-few-samples", "--out-dir", tmp_path / "out"])
    assert_one_line_error(result, pattern=r"cohort\.bed: sample-major \.bed file; rewrite it SNP-major with plink",
                          out_dir=tmp_path / "out")


def test_prepare__pheno_ids_not_in_fam(prepare, cohort, tmp_path):
    pheno = write_pheno(tmp_path / "p.tsv", ["X1", "X2"], ["Y1", "Y2"], [0, 1])
    result = run(prepare, ["--bfile", cohort, "--allow-few-samples", "--pheno", pheno, "--out-dir", tmp_path / "out"])
    assert_one_line_error(result, pattern=r"p\.tsv: none of its 2 \(FID, IID\) pairs is in .*cohort\.fam",
                          out_dir=tmp_path / "out")


def test_prepare__one_class_phenotype(prepare, cohort, tmp_path):
    pheno = write_pheno(tmp_path / "p.tsv", [f"F{i}" for i in range(60)], [f"I{i}" for i in range(60)], [1] * 60)
    result = run(prepare, ["--bfile", cohort, "--allow-few-samples", "--pheno", pheno, "--out-dir", tmp_path / "out"])
    assert_one_line_error(result, pattern=r"p\.tsv: only one class \(60 cases, 0 controls",
                          out_dir=tmp_path / "out")


def test_prepare__non_binary_phenotype(prepare, cohort, tmp_path):
    pheno = write_pheno(tmp_path / "p.tsv", [f"F{i}" for i in range(60)], [f"I{i}" for i in range(60)],
                        np.linspace(0, 3, 60).round(2))
    result = run(prepare, ["--bfile", cohort, "--allow-few-samples", "--pheno", pheno, "--out-dir", tmp_path / "out"])
    assert_one_line_error(result, pattern=r"p\.tsv column trait: non-binary phenotype values .*recode",
                          out_dir=tmp_path / "out")


def test_prepare__fewer_than_two_snps_after_qc(prepare, cohort, tmp_path):
    result = run(prepare, ["--bfile", cohort, "--allow-few-samples", "--out-dir", tmp_path / "out", "--min-maf", 0.5])
    assert_one_line_error(result, pattern=r"cohort\.bim: [01] SNPs left after QC .*relax --max-snp-missing/--min-maf",
                          out_dir=tmp_path / "out")


def test_prepare__too_few_samples_for_split(prepare, cohort, tmp_path):
    result = run(prepare, ["--bfile", cohort, "--allow-few-samples", "--out-dir", tmp_path / "out", "--val-cases", 13])
    assert_one_line_error(result, pattern=r"--val-cases 13: too few samples .*24 cases.*lower it to --val-cases 12",
                          out_dir=tmp_path / "out")


def test_prepare__existing_output_untouched_on_error(prepare, cohort, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    result = run(prepare, ["--bfile", cohort, "--allow-few-samples", "--out-dir", out, "--val-controls", 100])
    assert result.exit_code == 1 and (out / "keep.txt").read_text() == "old"


# -- quantitative traits (issue 18) ----------------------------------------------------------------------

def test_simulate_then_prepare__quantitative_trait(prepare, simulate, cohort, tmp_path):
    result = run(simulate, ["--bfile", cohort, "--out-dir", tmp_path / "s", "--n-causal", 4, "--seed", 2,
                            "--trait-type", "quantitative"])
    assert result.exit_code == 0, result.output
    sim = pd.read_csv(tmp_path / "s" / "phenotype.tsv", sep="\t")
    info = json.loads((tmp_path / "s" / "simulate.json").read_text())
    assert info["trait_type"] == "quantitative" and info["n_cases"] is None and info["threshold"] is None
    assert sim["phenotype"].nunique() > 20  # the value itself, not 0/1
    args = ["--bfile", cohort, "--allow-few-samples", "--pheno", tmp_path / "s" / "phenotype.tsv",
            "--val-cases", 5, "--val-controls", 5]
    refused = run(prepare, [*args, "--out-dir", tmp_path / "b"])  # binary by default: refused, names the option
    assert_one_line_error(refused, pattern=r"non-binary phenotype values .*pass --trait-type quantitative",
                          out_dir=tmp_path / "b")
    result = run(prepare, [*args, "--trait-type", "quantitative", "--out-dir", tmp_path / "p"])
    assert result.exit_code == 0, result.output
    ds = load_prepared(tmp_path / "p")
    assert ds.trait_type == "quantitative" and (ds.samples["split"] == "val").sum() == 10
    np.testing.assert_array_equal(ds.labels, sim["phenotype"].to_numpy())  # written and read back exactly
    assert ds.qc["samples"]["trait_mean"] == pytest.approx(sim["phenotype"].mean())
