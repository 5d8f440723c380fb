"""Bad inputs end in one clear line and leave nothing that looks finished (issue 11, item 1).

Each row of ``CASES`` builds one broken input (file, parameter or data content) for one ``bin/``
command, runs it through Click's ``CliRunner`` and checks the error contract of docs/architecture.md:

* exit 1 with exactly one ``[ERROR] ...`` line (bad data, :class:`annpal.errors.InputError`) or
  exit 2 with Click's one ``Error: ...`` line (usage errors: a malformed option value);
* the line names the offending file or parameter and says how to fix it;
* no traceback, and no output that looks finished: neither the ``--out-dir`` nor ``versions.yml``
  exists afterwards, and no temporary sibling (``.out.tmp-*``) is left behind.

The messages are the ones documented in docs/usage.md ("Bad inputs"): the docs test compares each
documented message with the real one, so the table cannot drift. A few parameter problems are also
checked at pipeline level (``main.nf`` stops before any task; a data error in a task is not retried).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from conftest import REPO, load_bin, make_prepared, nextflow_bin, nextflow_env
from helpers_input import (
    case_control,
    random_counts,
    write_bgen,
    write_fileset,
    write_pfile,
    write_pheno,
    write_vcf,
)

N_SAMPLES, N_SNPS, N_CASES = 60, 40, 20


@functools.cache
def command(name: str):
    return load_bin(name)


@dataclass
class Data:
    """Good inputs shared by the cases (read-only: a case copies what it breaks)."""

    fileset: Path  # PLINK prefix, 60 × 40, 1/2 phenotype in the fam (20 cases)
    dataset: Path  # prepared, 120 samples × 60 SNPs
    dataset_other: Path  # prepared, 120 samples × 50 SNPs
    model: Path  # model.pt trained on `dataset`


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Data:
    root = tmp_path_factory.mktemp("good")
    fileset = write_fileset(root / "plink" / "cohort", random_counts(N_SAMPLES, N_SNPS, seed=3),
                            pheno=case_control(N_SAMPLES, n_cases=N_CASES, seed=3))
    dataset, other = root / "prepared", root / "prepared_other"
    make_prepared(dataset, n_samples=120, n_snps=60, causal=(5,), n_val_per_class=10)
    make_prepared(other, n_samples=120, n_snps=50, causal=(5,), n_val_per_class=10)
    result = CliRunner().invoke(command("annpal-train"), [
        "--dataset", str(dataset), "--seed", "1", "--epochs", "1", "--h1", "4", "--h2", "2", "--device", "cpu",
        "--out-dir", str(root / "model")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return Data(fileset=fileset, dataset=dataset, dataset_other=other, model=root / "model" / "model.pt")


# -- builders: each takes (case folder, good data) and returns the command's arguments -----------------

def copy_fileset(tmp: Path, data: Data) -> Path:
    prefix = tmp / "cohort"
    for ext in (".bed", ".bim", ".fam"):
        shutil.copy(f"{data.fileset}{ext}", f"{prefix}{ext}")
    return prefix


def prepare_args(prefix: Path, *extra: str) -> list[str]:
    # The good file set is deliberately tiny (20 cases): the override keeps the minimum training size
    # out of the way of the error each case is about (case "too_few_training" checks the minimum).
    return ["--bfile", str(prefix), "--allow-few-samples", *extra]


def tiny_cohort(tmp: Path, data: Data) -> list[str]:
    """A 12-sample cohort, 6 cases and 6 controls, without the override."""
    prefix = write_fileset(tmp / "cohort", random_counts(12, N_SNPS, seed=4), pheno=case_control(12, n_cases=6, seed=4))
    return ["--bfile", str(prefix)]


def broken_fileset(edit: Callable[[Path], None], *extra: str) -> Callable[[Path, Data], list[str]]:
    """Copy the good file set, let ``edit(prefix)`` break it, and run annpal-prepare on it."""

    def build(tmp: Path, data: Data) -> list[str]:
        prefix = copy_fileset(tmp, data)
        edit(prefix)
        return prepare_args(prefix, *extra)

    return build


def remove(ext: str) -> Callable[[Path], None]:
    return lambda prefix: Path(f"{prefix}{ext}").unlink()


def append_line(ext: str, line: str) -> Callable[[Path], None]:
    def edit(prefix: Path) -> None:
        with open(f"{prefix}{ext}", "a") as fh:
            fh.write(line + "\n")
    return edit


def rewrite_bed(change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def edit(prefix: Path) -> None:
        path = Path(f"{prefix}.bed")
        path.write_bytes(change(path.read_bytes()))
    return edit


def edit_table(ext: str, change: Callable[[list[list[str]]], list[list[str]]]) -> Callable[[Path], None]:
    def edit(prefix: Path) -> None:
        path = Path(f"{prefix}{ext}")
        rows = [line.split() for line in path.read_text().splitlines()]
        path.write_text("".join("\t".join(r) + "\n" for r in change(rows)))
    return edit


def set_column(col: int, value: str, rows: slice = slice(None)) -> Callable[[list[list[str]]], list[list[str]]]:
    def change(table: list[list[str]]) -> list[list[str]]:
        for r in table[rows]:
            r[col] = value
        return table
    return change


def with_pheno(frame: Callable[[pd.DataFrame], pd.DataFrame], *extra: str) -> Callable[[Path, Data], list[str]]:
    """Good file set plus a phenotype TSV made by ``frame(fam-derived table)``."""

    def build(tmp: Path, data: Data) -> list[str]:
        prefix = copy_fileset(tmp, data)
        fam = pd.read_csv(f"{prefix}.fam", sep=r"\s+", header=None, dtype=str)
        rng = np.random.default_rng(0)
        table = pd.DataFrame({"FID": fam[0], "IID": fam[1], "trait": rng.permutation([1] * 20 + [0] * 40)})
        pheno = tmp / "pheno.tsv"
        frame(table).to_csv(pheno, sep="\t", index=False)
        return prepare_args(prefix, "--pheno", str(pheno), *extra)

    return build


def monomorphic(prefix: Path) -> None:
    """Every genotype heterozygous: each SNP is monomorphic, QC removes all of them."""
    fam = pd.read_csv(f"{prefix}.fam", sep=r"\s+", header=None, dtype=str)
    write_fileset(prefix, np.ones((N_SAMPLES, N_SNPS), dtype=np.float32), pheno=fam[5].tolist())


def one_case(prefix: Path) -> None:
    fam = pd.read_csv(f"{prefix}.fam", sep=r"\s+", header=None, dtype=str)
    fam[5] = ["2"] + ["1"] * (len(fam) - 1)
    fam.to_csv(f"{prefix}.fam", sep="\t", header=False, index=False)


# PLINK 2, BGEN and VCF inputs (issue 18): the good genotypes and IDs written in each format by hand
# (pgenlib's writer, a minimal BGEN writer, VCF text), so these cases need no plink2.
GOOD_IDS = ([f"F{i}" for i in range(N_SAMPLES)], [f"I{i}" for i in range(N_SAMPLES)])  # write_fileset's


def good_counts() -> np.ndarray:
    return random_counts(N_SAMPLES, N_SNPS, seed=3)


def good_pheno(tmp: Path, *, iid_prefix: str = "") -> Path:
    fid, iid = GOOD_IDS
    return write_pheno(tmp / "pheno.tsv", fid, [iid_prefix + i for i in iid], case_control(N_SAMPLES, n_cases=N_CASES, seed=3))


def pfile(edit: Callable[[Path], None] = lambda prefix: None, *, alt: dict[int, str] | None = None
          ) -> Callable[[Path, Data], list[str]]:
    def build(tmp: Path, data: Data) -> list[str]:
        alleles = [dict(alt or {}).get(j, "A") for j in range(N_SNPS)]
        prefix = write_pfile(tmp / "cohort", good_counts(), fid=GOOD_IDS[0], iid=GOOD_IDS[1],
                             pheno=case_control(N_SAMPLES, n_cases=N_CASES, seed=3), alt=alleles)
        edit(prefix)
        return ["--pfile", str(prefix)]
    return build


def bgen(*, stored_ids: bool = True, sample_ids: list[str] | None = None, layout: int = 2, triallelic: bool = False,
         phased: bool = False) -> Callable[[Path, Data], list[str]]:
    def build(tmp: Path, data: Data) -> list[str]:
        counts = good_counts().astype(int)
        probs = [np.eye(3)[2 - counts[:, j]] for j in range(N_SNPS)]  # (A1A1, A1A2, A2A2)
        alleles = [["A", "G"]] * N_SNPS
        if triallelic:
            probs[2], alleles[2] = np.eye(6)[2 - counts[:, 2]], ["A", "G", "T"]
        if phased:
            probs = [np.tile([1.0, 0.0, 0.0, 1.0], (N_SAMPLES, 1))] * N_SNPS
        path = write_bgen(tmp / "cohort.bgen", probs, alleles=alleles, samples=GOOD_IDS[1] if stored_ids else None,
                          phased=phased, layout=layout)
        # the phased case fails while reading, after the sample checks that a 60-sample cohort needs the override for
        args = ["--bgen", str(path), "--pheno", str(good_pheno(tmp)), *(["--allow-few-samples"] if phased else [])]
        if sample_ids is not None:
            (tmp / "cohort.sample").write_text("ID_1 ID_2 missing\n0 0 0\n" + "".join(f"{s} {s} 0\n" for s in sample_ids))
            args += ["--sample", str(tmp / "cohort.sample")]
        return args
    return build


def vcf(*, alt: dict[int, str] | None = None, pheno: bool = True, iid_prefix: str = "") -> Callable[[Path, Data], list[str]]:
    def build(tmp: Path, data: Data) -> list[str]:
        alleles = [dict(alt or {}).get(j, "A") for j in range(N_SNPS)]
        path = write_vcf(tmp / "cohort.vcf", good_counts(), samples=GOOD_IDS[1], alt=alleles)
        return ["--vcf", str(path), *(["--pheno", str(good_pheno(tmp, iid_prefix=iid_prefix))] if pheno else [])]
    return build


def covar(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path, Data], list[str]]:
    def build(tmp: Path, data: Data) -> list[str]:
        samples = pd.read_csv(data.dataset / "samples.tsv", sep="\t", dtype=str)
        table = pd.DataFrame({"FID": samples["FID"], "IID": samples["IID"],
                              "age": np.linspace(20, 80, len(samples)).round(1).astype(str)})
        path = tmp / "covar.tsv"
        change(table).to_csv(path, sep="\t", index=False)
        return ["--dataset", str(data.dataset), "--covar", str(path), "--n-pcs", "1"]
    return build


def set_cell(column: str, row: int, value: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(table: pd.DataFrame) -> pd.DataFrame:
        table.loc[row, column] = value
        return table
    return change


def train(*extra: str, empty: bool = False) -> Callable[[Path, Data], list[str]]:
    def build(tmp: Path, data: Data) -> list[str]:
        dataset = _mkdir(tmp / "empty") if empty else data.dataset
        return ["--dataset", str(dataset), "--seed", "1", "--epochs", "1", *extra]
    return build


def train_quantitative(*extra: str) -> Callable[[Path, Data], list[str]]:
    """annpal-train on a small prepared dataset holding a quantitative trait."""
    def build(tmp: Path, data: Data) -> list[str]:
        dataset = tmp / "quantitative"
        make_prepared(dataset, n_samples=120, n_snps=60, causal=(5,), n_val_per_class=10, trait_type="quantitative")
        return ["--dataset", str(dataset), "--seed", "1", "--epochs", "1", *extra]
    return build


def nn_covariates(*extra: str, pcs: str | None = None, covar_rows: slice = slice(None)
                  ) -> Callable[[Path, Data], list[str]]:
    """annpal-train with covariates: ``pcs`` "good" writes a pcs.tsv, "covar" passes a covariate TSV as
    --pcs; ``covar_rows`` selects the rows of the covariate TSV (passed as --covar when ``extra`` asks)."""
    def build(tmp: Path, data: Data) -> list[str]:
        samples = pd.read_csv(data.dataset / "samples.tsv", sep="\t", dtype=str)
        pd.DataFrame({"FID": samples["FID"], "IID": samples["IID"], "PC1": np.linspace(-1, 1, len(samples))}
                     ).to_csv(tmp / "pcs.tsv", sep="\t", index=False)
        pd.DataFrame({"FID": samples["FID"], "IID": samples["IID"], "age": np.linspace(20, 80, len(samples))}
                     ).iloc[covar_rows].to_csv(tmp / "covar.tsv", sep="\t", index=False)
        files = {"good": ["--pcs", str(tmp / "pcs.tsv")], "covar": ["--pcs", str(tmp / "covar.tsv")], None: []}
        args = [str(tmp / "covar.tsv") if a == "COVAR" else a for a in extra]
        return ["--dataset", str(data.dataset), "--seed", "1", "--epochs", "1", *files[pcs], *args]
    return build


def attribute_without_covariates_file(tmp: Path, data: Data) -> list[str]:
    """A model trained with --nn-covariates pcs whose covariates.tsv was then removed."""
    args = nn_covariates("--nn-covariates", "pcs", "--h1", "4", "--h2", "2", "--device", "cpu", pcs="good")(tmp, data)
    result = CliRunner().invoke(command("annpal-train"), [*args, "--out-dir", str(tmp / "model")])
    assert result.exit_code == 0, result.output
    (tmp / "model" / "covariates.tsv").unlink()
    return ["--dataset", str(data.dataset), "--model", str(tmp / "model" / "model.pt"), "--method", "sm",
            "--device", "cpu"]


def simulate(*extra: str) -> Callable[[Path, Data], list[str]]:
    def build(tmp: Path, data: Data) -> list[str]:
        return ["--bfile", str(copy_fileset(tmp, data)), "--n-causal", "4", "--out-dir", str(tmp / "out"), *extra]
    return build


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def attribute(*extra: str, dataset: str = "dataset", model: str | None = None) -> Callable[[Path, Data], list[str]]:
    def build(tmp: Path, data: Data) -> list[str]:
        model_path = data.model
        if model == "corrupt":
            model_path = tmp / "model.pt"
            model_path.write_bytes(data.model.read_bytes()[:200])
        return ["--dataset", str(getattr(data, dataset)), "--model", str(model_path), *extra]
    return build


def attr_dir(root: Path, name: str, *, seed: int, n: int = 60, method: str = "sm", kind: str = "real") -> Path:
    folder = _mkdir(root / name)
    np.save(folder / "mas.npy", np.full(n, 1.0 / n))
    (folder / "attr.json").write_text(json.dumps({"method": method, "kind": kind, "seed": seed}))
    return folder


def merge(second: dict, *, drop: str | None = None) -> Callable[[Path, Data], list[str]]:
    def build(tmp: Path, data: Data) -> list[str]:
        a = attr_dir(tmp, "sm_real_s1", seed=1)
        b = attr_dir(tmp, "sm_real_s2", **{"seed": 2, **second})
        if drop:
            (b / drop).unlink()
        return ["--method", "sm", "--kind", "real", str(a), str(b)]
    return build


def mas_matrix(path: Path, k: int, m: int, *, seed: int = 0) -> Path:
    mas = np.random.default_rng(seed).random((k, m))
    np.save(path, mas / mas.sum(axis=1, keepdims=True))
    return path


def call_pal(*extra: str, n_snps: int = 60) -> Callable[[Path, Data], list[str]]:
    def build(tmp: Path, data: Data) -> list[str]:
        mas = mas_matrix(tmp / "mas_matrix.npy", 3, n_snps)
        return ["--dataset", str(data.dataset), "--mas", str(mas), "--method", "sm", *extra]
    return build


def pvalues(null: str = "good", scores: str = "bad") -> Callable[[Path, Data], list[str]]:
    def build(tmp: Path, data: Data) -> list[str]:
        mas = mas_matrix(tmp / "mas_matrix.npy", 3, 60)
        null_path = mas_matrix(tmp / "null_mas.npy", 3, 60, seed=1)
        if null == "text":
            null_path = tmp / "null_mas.npy"
            null_path.write_text("0.1 0.2 0.3\n")
        scores_path = tmp / "scores.tsv"
        scores_path.write_text("index\tSNP\n0\trs1\n")
        return ["--mas", str(mas), "--null-mas", str(null_path), "--scores", str(scores_path)]
    return build


def pvalues_dead_nulls(tmp: Path, data: Data) -> list[str]:
    """PAL called on the good dataset, and a null matrix whose rows 0 and 2 (of 3) are flat (dead networks)."""
    mas = mas_matrix(tmp / "mas_matrix.npy", 3, 60)
    result = CliRunner().invoke(command("annpal-call-pal"), ["--dataset", str(data.dataset), "--mas", str(mas),
                                                             "--method", "sm", "--out-dir", str(tmp / "pal")])
    assert result.exit_code == 0, result.stderr
    null = np.load(mas_matrix(tmp / "null_mas.npy", 3, 60, seed=1))
    null[[0, 2]] = 1 / 60
    np.save(tmp / "null_mas.npy", null)
    return ["--mas", str(mas), "--null-mas", str(tmp / "null_mas.npy"), "--scores", str(tmp / "pal" / "scores.tsv")]


def evaluate(*extra: str) -> Callable[[Path, Data], list[str]]:
    def build(tmp: Path, data: Data) -> list[str]:
        truth = tmp / "truth.tsv"
        truth.write_text("SNP\tCHR\tBP\trole\tpartners\tweight\nrs1005\t1\t60000\tdominant\t\t0.5\n")
        return ["--truth", str(truth), "--dataset", str(data.dataset), *extra]
    return build


@dataclass
class Case:
    id: str
    input: str  # what is wrong, as written in docs/usage.md
    command: str
    build: Callable[[Path, Data], list[str]]
    names: str  # the error line names the problem: this text (a file name or an option)
    fix: str  # ... and the fix: this text
    exit_code: int = 1


CASES = [
    # PLINK file set
    Case("bed_missing", "`--bfile` prefix without its `.bed`", "annpal-prepare",
         broken_fileset(remove(".bed")), "cohort.bed: not found", "--bfile takes the prefix"),
    Case("fam_missing", "`--bfile` prefix without its `.fam`", "annpal-prepare",
         broken_fileset(remove(".fam")), "cohort.fam: not found", "--bfile takes the prefix"),
    Case("bim_extra_line", "`.bim` with one SNP more than the `.bed` holds", "annpal-prepare",
         broken_fileset(append_line(".bim", "1\trs999\t0\t99999\tA\tG")), "cohort.bed", "regenerate the file set"),
    # (a .fam one line short is not detectable when the sample count stays in the same 4-sample byte)
    Case("fam_extra_line", "`.fam` with one sample more than the `.bed` holds", "annpal-prepare",
         broken_fileset(append_line(".fam", "FX\tIX\t0\t0\t1\t1")), "cohort.bed", "regenerate the file set"),
    Case("bed_magic", "`.bed` with wrong magic bytes (not a PLINK 1 `.bed`)", "annpal-prepare",
         broken_fileset(rewrite_bed(lambda b: b"\x00\x00" + b[2:])), "not a PLINK 1 binary .bed", "--make-bed"),
    Case("bed_sample_major", "sample-major `.bed` (third byte 0)", "annpal-prepare",
         broken_fileset(rewrite_bed(lambda b: b[:2] + b"\x00" + b[3:])), "sample-major", "rewrite it SNP-major"),
    Case("bed_truncated", "truncated `.bed` (last 7 bytes cut)", "annpal-prepare",
         broken_fileset(rewrite_bed(lambda b: b[:-7])), "cohort.bed", "truncated"),
    Case("fam_empty", "empty `.fam`", "annpal-prepare",
         broken_fileset(lambda p: Path(f"{p}.fam").write_text("")), "cohort.fam: empty", "regenerate"),
    Case("fam_columns", "`.fam` with 5 columns", "annpal-prepare",
         broken_fileset(edit_table(".fam", lambda t: [r[:5] for r in t])), "cohort.fam: 5 columns", "regenerate"),
    Case("bim_position", "`.bim` with a non-integer position", "annpal-prepare",
         broken_fileset(edit_table(".bim", set_column(3, "12.5kb", slice(2, 3)))), "cohort.bim: line 3",
         "fix or regenerate the .bim"),
    Case("fam_duplicate_ids", "duplicate sample IDs in the `.fam`", "annpal-prepare",
         broken_fileset(edit_table(".fam", lambda t: [t[0][:2] + r[2:] if i == 1 else r for i, r in enumerate(t)])),
         "cohort.fam: 1 duplicated (FID, IID)", "unique ID"),
    # Phenotype
    Case("fam_no_phenotype", "no `--pheno` and every `.fam` phenotype missing", "annpal-prepare",
         broken_fileset(edit_table(".fam", set_column(5, "-9"))), "cohort.fam", "--pheno FILE.tsv"),
    Case("pheno_no_overlap", "phenotype file sharing no sample ID with the `.fam`", "annpal-prepare",
         with_pheno(lambda t: t.assign(FID="X" + t["FID"], IID="Y" + t["IID"])), "pheno.tsv: none of its 60",
         "must be the fam's FID and IID"),
    Case("pheno_one_class", "phenotype with one class only (all controls)", "annpal-prepare",
         with_pheno(lambda t: t.assign(trait=0)), "only one class", "check the phenotype coding or column"),
    Case("pheno_non_binary", "quantitative phenotype (non-binary values)", "annpal-prepare",
         with_pheno(lambda t: t.assign(trait=np.linspace(0.5, 3.5, len(t)).round(2))), "non-binary phenotype",
         "pass --trait-type quantitative"),
    Case("pheno_binary_as_quantitative", "0/1 phenotype with `--trait-type quantitative`", "annpal-prepare",
         with_pheno(lambda t: t, "--trait-type", "quantitative"), "pheno.tsv column trait: only the values 0, 1",
         "pass --trait-type binary"),
    Case("pheno_quantitative_text", "text in a quantitative phenotype", "annpal-prepare",
         with_pheno(lambda t: t.assign(trait=["tall" if i == 3 else f"{i / 7:.3f}" for i in range(len(t))]),
                    "--trait-type", "quantitative"), "non-numeric phenotype values ('tall')", "needs numbers"),
    Case("pheno_col_missing", "`--pheno-col` naming a column the file lacks", "annpal-prepare",
         with_pheno(lambda t: t, "--pheno-col", "T2D"), "no column 'T2D'", "fix --pheno-col"),
    Case("pheno_col_ambiguous", "phenotype file with two trait columns and no `--pheno-col`", "annpal-prepare",
         with_pheno(lambda t: t.assign(other=t["trait"])), "2 trait columns", "--pheno-col"),
    Case("pheno_duplicate_ids", "duplicate sample IDs in the phenotype file", "annpal-prepare",
         with_pheno(lambda t: pd.concat([t, t.iloc[:2]], ignore_index=True)), "2 duplicated (FID, IID)",
         "keep one line per sample"),
    # QC and split
    Case("qc_removes_all", "every SNP removed by QC (all monomorphic)", "annpal-prepare",
         broken_fileset(monomorphic), "0 SNPs left after QC", "relax --max-snp-missing/--min-maf"),
    Case("split_too_large", "`--val-cases 15` with 20 cases (half must stay in training)", "annpal-prepare",
         broken_fileset(lambda p: None, "--val-cases", "15"), "--val-cases 15", "lower it to --val-cases 10"),
    Case("split_one_case", "one case only (no validation split possible)", "annpal-prepare",
         broken_fileset(one_case), "too few cases", "add samples or check the phenotype"),
    Case("too_few_training", "12-sample cohort (6 cases, 6 controls)", "annpal-prepare", tiny_cohort,
         "3 training cases after holding out 3 for validation", "pass --allow-few-samples"),
    Case("maf_range", "`--min-maf 0.7` (outside 0-0.5)", "annpal-prepare",
         broken_fileset(lambda p: None, "--min-maf", "0.7"), "'--min-maf'", "0.7", exit_code=2),
    # PLINK 2, BGEN, VCF
    Case("pfile_pvar_missing", "`--pfile` prefix without its `.pvar`", "annpal-prepare",
         pfile(lambda p: Path(f"{p}.pvar").unlink()), "cohort.pvar: not found", "--pfile takes the prefix"),
    Case("pfile_psam_extra", "`.psam` with one sample more than the `.pgen` holds", "annpal-prepare",
         pfile(lambda p: open(f"{p}.psam", "a").write("FX\tIX\t1\t1\n")), "cohort.pgen: 60 samples but cohort.psam lists 61",
         "regenerate them with plink2 --make-pgen"),
    Case("pfile_multiallelic", "`.pvar` with a multi-allelic variant (ALT `A,T`)", "annpal-prepare",
         pfile(alt={2: "A,T"}), "1 multi-allelic variants", "--max-alleles 2"),
    Case("bgen_no_sample_ids", "BGEN storing no sample IDs, without `--sample`", "annpal-prepare",
         bgen(stored_ids=False), "cohort.bgen: stores no sample IDs", "--sample FILE.sample"),
    Case("bgen_sample_mismatch", "`--sample` file whose IDs differ from those stored in the BGEN", "annpal-prepare",
         bgen(sample_ids=[f"X{i}" for i in range(N_SAMPLES)]), "cohort.sample: sample IDs disagree",
         "give the .sample file written with this BGEN"),
    Case("bgen_layout1", "BGEN v1.1 (layout 1)", "annpal-prepare", bgen(layout=1), "unsupported BGEN layout 1",
         "--export bgen-1.2"),
    Case("bgen_multiallelic", "BGEN with a triallelic variant", "annpal-prepare", bgen(triallelic=True),
         "1 variants without exactly 2 alleles", "--max-alleles 2"),
    Case("bgen_phased", "BGEN with phased probabilities", "annpal-prepare", bgen(phased=True), "is phased",
         "use --pfile NEWPREFIX"),
    Case("vcf_multiallelic", "VCF with a multi-allelic record (ALT `A,T`)", "annpal-prepare", vcf(alt={2: "A,T"}),
         "1 multi-allelic variants", "bcftools norm -m -"),
    Case("vcf_no_pheno", "`--vcf` without `--pheno`", "annpal-prepare", vcf(pheno=False),
         "cohort.vcf: a VCF carries no phenotype", "--pheno FILE.tsv"),
    Case("vcf_pheno_ids", "phenotype file whose IIDs are not the VCF's sample IDs", "annpal-prepare",
         vcf(iid_prefix="X"), "none of its 60 IIDs is a sample of", "the IID column must hold the sample IDs"),
    Case("two_genotype_inputs", "two genotype inputs (`--bfile` and `--vcf`)", "annpal-prepare",
         broken_fileset(lambda p: None, "--vcf", "cohort.vcf"), "exactly one genotype input", "--bfile, --pfile",
         exit_code=2),
    # Covariates (annpal-gwas)
    Case("covar_text", "covariate file with a non-numeric value", "annpal-gwas",
         covar(set_cell("age", 3, "old")), "covar.tsv: column 'age' is not numeric", "encode it as numbers"),
    Case("covar_missing_value", "covariate file with a missing value (`NA`)", "annpal-gwas",
         covar(set_cell("age", 3, "NA")), "covar.tsv: column 'age' has 1 missing", "impute them or drop the column"),
    Case("covar_missing_sample", "covariate file without a row for some samples", "annpal-gwas",
         covar(lambda t: t.iloc[5:]), "covar.tsv: 5 of 120 dataset samples have no row", "add a row for every sample"),
    # Covariates in the network (annpal-train --nn-covariates, annpal-attribute)
    Case("nn_cov_needs_pcs", "`--nn-covariates pcs` without `--pcs`", "annpal-train",
         nn_covariates("--nn-covariates", "pcs"), "--nn-covariates pcs needs --pcs", "give it or choose another mode"),
    Case("nn_cov_unused_file", "`--pcs` with `--nn-covariates none`", "annpal-train", nn_covariates(pcs="good"),
         "--pcs given but --nn-covariates none does not use it", "drop it"),
    Case("nn_cov_not_pcs", "`--pcs` file that is not a `pcs.tsv` (no PC columns)", "annpal-train",
         nn_covariates("--nn-covariates", "pcs", pcs="covar"), "covar.tsv: expected columns FID IID PC1",
         "give the pcs.tsv written by annpal-pca"),
    Case("nn_cov_covar_missing_sample", "`--nn-covariates file` with a covariate file missing some samples",
         "annpal-train", nn_covariates("--nn-covariates", "file", "--covar", "COVAR", covar_rows=slice(5, None)),
         "covar.tsv: 5 of 120 dataset samples have no row", "add a row for every sample"),
    Case("attr_covariates_missing", "model trained with covariates, its `covariates.tsv` removed", "annpal-attribute",
         attribute_without_covariates_file, "covariates.tsv: missing", "give the covariates.tsv that annpal-train wrote"),
    # Training
    Case("train_not_prepared", "`--dataset` folder that is not a prepared dataset", "annpal-train",
         train(empty=True), "genotypes.npy: missing", "annpal-prepare"),
    Case("train_dropout", "`--input-dropout 1`", "annpal-train",
         train("--input-dropout", "1"), "--input-dropout 1.0", "pass a dropout probability"),
    Case("train_epochs", "`--epochs 0`", "annpal-train", train("--epochs", "0"), "--epochs", "at least 1"),
    Case("train_cuda", "`--device cuda` on a machine without a GPU", "annpal-train",
         train("--device", "cuda"), "--device cuda", "use --device cpu"),
    Case("train_balance_quantitative", "`--balance paper` on a quantitative trait", "annpal-train",
         train_quantitative("--balance", "paper"), "--balance paper", "use --balance auto or none"),
    Case("simulate_cases_quantitative", "`--n-cases` with `--trait-type quantitative`", "annpal-simulate",
         simulate("--trait-type", "quantitative", "--n-cases", "20"), "--n-cases and --prevalence",
         "drop them with --trait-type quantitative"),
    Case("train_permute_seed", "`--permute-seed` without `--null`", "annpal-train",
         train("--permute-seed", "7"), "--permute-seed needs --null", "--null", exit_code=2),
    # Attribution
    Case("attr_snp_mismatch", "model trained on another dataset (SNP counts differ)", "annpal-attribute",
         attribute("--method", "sm", dataset="dataset_other"), "trained on 60 SNPs",
         "attribute with the dataset the model was trained on"),
    Case("attr_corrupt_model", "corrupt `model.pt` (truncated)", "annpal-attribute",
         attribute("--method", "sm", model="corrupt"), "model.pt: cannot be read", "written by annpal-train"),
    Case("attr_cuda", "`annpal-attribute --device cuda` without a GPU", "annpal-attribute",
         attribute("--method", "sm", "--device", "cuda"), "--device cuda", "use --device cpu"),
    Case("attr_method", "`--method xx`", "annpal-attribute", attribute("--method", "xx"), "'--method'", "'ig'",
         exit_code=2),
    # Merging MAS
    Case("merge_lengths", "MAS vectors of different lengths to merge", "annpal-merge-mas",
         merge({"n": 59}), "different lengths [59, 60]", "same prepared dataset"),
    Case("merge_methods", "MAS of another method among the inputs", "annpal-merge-mas",
         merge({"method": "ig"}), "method 'ig', expected 'sm'", "merge each method separately"),
    Case("merge_same_seed", "the same model's MAS given twice", "annpal-merge-mas",
         merge({"seed": 1}), "seed(s) [1] given more than once", "pass each model's folder once"),
    Case("merge_no_mas", "an ATTRIBUTE folder without `mas.npy`", "annpal-merge-mas",
         merge({}, drop="mas.npy"), "mas.npy: missing", "annpal-attribute"),
    # PAL calling, P-values, evaluation
    Case("thresholds_text", "`--thresholds 99.99,abc`", "annpal-call-pal", call_pal("--thresholds", "99.99,abc"),
         "'--thresholds'", "percentiles like 99.99,99.95", exit_code=2),
    Case("thresholds_range", "`--thresholds 100`", "annpal-call-pal", call_pal("--thresholds", "100"),
         "'--thresholds'", "outside (0, 100)", exit_code=2),
    Case("pal_snp_mismatch", "MAS matrix with another SNP count than the dataset", "annpal-call-pal",
         call_pal(n_snps=59), "59 SNPs but", "use the MAS of models trained on this dataset"),
    Case("null_not_npy", "`--null-mas` that is not a `.npy` file", "annpal-pvalues", pvalues(null="text"),
         "null_mas.npy: not a readable .npy", "mas_matrix.npy written by annpal-merge-mas"),
    Case("scores_columns", "`--scores` table without the count/PAL columns", "annpal-pvalues", pvalues(),
         "scores.tsv: missing columns", "give the scores.tsv written by annpal-call-pal"),
    Case("null_mostly_dead", "more than half of the null models degenerate (flat MAS)", "annpal-pvalues",
         pvalues_dead_nulls, "2 of 3 null models are degenerate", "retrain the null models"),
    Case("p_thresholds", "`annpal-evaluate --p-thresholds 2`", "annpal-evaluate",
         evaluate("--p-thresholds", "2"), "'--p-thresholds'",
         "must lie in (0, 1)", exit_code=2),
]


def run_case(case: Case, tmp: Path, data: Data):
    folder = _mkdir(tmp / "in")
    args = case.build(folder, data)
    out, versions = tmp / "out", tmp / "versions.yml"
    result = CliRunner().invoke(command(case.command), [*args, "--out-dir", str(out), "--versions", str(versions)])
    return result, out, versions


def error_line(result, case: Case) -> str:
    """The one error line (``[ERROR] ...`` for bad data, Click's ``Error: ...`` for usage errors)."""
    prefix = "[ERROR]" if case.exit_code == 1 else "Error:"
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith(prefix)]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input__one_clear_line_and_no_output(case: Case, data: Data, tmp_path: Path) -> None:
    if case.id.endswith("cuda") and torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    result, out, versions = run_case(case, tmp_path, data)
    # a Python exception other than Click's exit would be a traceback for the user
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == case.exit_code, result.output
    assert "Traceback" not in result.output
    line = error_line(result, case)
    assert case.names in line, line
    assert case.fix in line, line
    assert not out.exists() and not versions.exists()
    assert not list(tmp_path.glob(".out.tmp-*")) and not list(tmp_path.glob(".versions.yml.tmp-*"))


def test_bad_input__at_least_twenty_distinct_cases() -> None:
    assert len(CASES) >= 20
    assert len({c.id for c in CASES}) == len(CASES) and len({c.input for c in CASES}) == len(CASES)


def documented_message(line: str, tmp: Path, data: Data) -> str:
    """The error line as docs/usage.md shows it: without the test's temporary folders."""
    for folder in (tmp / "in", tmp, data.fileset.parents[1]):
        line = line.replace(f"{folder}/", "")
    return line.replace("|", "\\|")


def docs_rows() -> dict[str, str]:
    """``input -> message`` of the table under "## Bad inputs" in docs/usage.md (backticks kept)."""
    text = (REPO / "docs" / "usage.md").read_text()
    section = text.split("## Bad inputs", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = re.split(r"(?<!\\)\|", line.strip())
        if len(cells) == 4 and not set(cells[1].strip()) <= set("-"):
            rows[cells[1].strip()] = cells[2].strip()
    return rows


def test_bad_input__docs_table_shows_the_real_messages(data: Data, tmp_path: Path) -> None:
    rows = docs_rows()
    for k, case in enumerate(CASES):
        if case.id.endswith("cuda") and torch.cuda.is_available():
            continue
        tmp = _mkdir(tmp_path / str(k))
        result, _, _ = run_case(case, tmp, data)
        message = documented_message(error_line(result, case), tmp, data)
        assert case.input in rows, f"docs/usage.md 'Bad inputs' has no row for {case.input!r}"
        assert rows[case.input] == f"`{message}`", f"{case.id}: docs say {rows[case.input]!r}, real: {message!r}"


# -- pipeline level --------------------------------------------------------------------------------

needs_nextflow = pytest.mark.skipif(nextflow_bin() is None, reason="Nextflow not installed (make setup)")


def run_main(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [nextflow_bin(), "run", str(REPO / "main.nf"), "-work-dir", str(tmp_path / "work"), *args]
    return subprocess.run(cmd, cwd=tmp_path, env=nextflow_env(tmp_path), capture_output=True, text=True,
                          timeout=300)


PIPELINE_PARAMS = [
    (["--n_models", "0"], "Parameter --n_models must be >= 1, not 0"),
    (["--thresholds", "99.99,100"], "Parameter --thresholds is malformed: '99.99,100'"),
    (["--methods", "ig;sm"], "Parameter --methods is malformed: 'ig;sm'"),
    (["--n_modles", "3"], "Parameter --n_modles is not a known parameter (did you mean --n_models?)"),
    (["--ig_steps", "0"], "Parameter --ig_steps must be >= 1, not 0"),
    (["--trait_type", "quantitative", "--balance", "paper"],
     "Parameter --balance paper balances cases and controls; use --balance auto or none with --trait_type quantitative"),
]


@pytest.mark.pipeline
@needs_nextflow
def test_bad_input__pipeline_parameters_each_named_before_any_task(tmp_path: Path) -> None:
    args = [a for pair, _ in PIPELINE_PARAMS for a in pair]
    proc = run_main(tmp_path, "-profile", "test", "--outdir", str(tmp_path / "results"), *args)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for _, message in PIPELINE_PARAMS:
        assert sum(message in line for line in output.splitlines()) >= 1, (message, output)
    assert "Traceback" not in output and "executor >" not in output and "Submitted process" not in output
    # Nextflow opens its trace file when the session starts, before main.nf validates: an empty
    # pipeline_info/ trace is all there may be, no result folder
    results = tmp_path / "results"
    assert not results.exists() or {p.name for p in results.iterdir()} <= {"pipeline_info"}
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


@pytest.mark.pipeline
@needs_nextflow
def test_bad_input__pipeline_data_error_is_one_line_and_not_retried(tmp_path: Path) -> None:
    """A bad ``--pheno_col`` is found by PREPARE: exit 1 is a data error (not 130-145), so the task
    is not retried, the run stops, its [ERROR] line is shown and no prepared/ folder is published."""
    pheno = REPO / "assets" / "testdata" / "cohort.pheno.tsv"
    proc = run_main(tmp_path, "--bfile", str(REPO / "assets" / "testdata" / "cohort"), "--pheno", str(pheno),
                    "--pheno_col", "T2D", "--outdir", str(tmp_path / "results"), "--skip_gwas",
                    "-with-trace", str(tmp_path / "trace.txt"))
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    errors = {ln.strip() for ln in output.splitlines() if ln.strip().startswith("[ERROR]")}
    assert len(errors) == 1, output
    assert errors.pop().endswith("cohort.pheno.tsv: no column 'T2D' (columns: phenotype); fix --pheno-col")
    assert "Traceback" not in output
    trace = pd.read_csv(tmp_path / "trace.txt", sep="\t")
    prepare = trace[trace["process"].str.endswith("PREPARE")]
    assert prepare["attempt"].tolist() == [1] and prepare["exit"].tolist() == [1]
    assert not (tmp_path / "results" / "prepared").exists()
    assert not trace["process"].str.endswith("TRAIN").any()
