"""Same inputs and seeds twice on CPU → byte-identical result tables (issue 11, item 6).

The bin chain prepare → train (real and null) → attribute (ig, sm, pm) → merge-mas → call-pal →
pvalues runs twice on a tiny PLINK file set: once in this process (CliRunner) and once in a fresh
Python process (another hash seed, nothing shared), and every ``.tsv`` and ``.npy`` file of the two
runs is compared byte for byte (``history.tsv`` without its wall-time column), the trained weights
with ``torch.equal``. At pipeline level, tests/test_pipeline.py already compares the tables of a
parallel run with a ``maxForks 1`` run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from conftest import REPO, load_bin
from helpers_input import case_control, random_counts, write_fileset

from annpal.model import load_model

METHODS = ("ig", "sm", "pm")
REAL_SEEDS, NULL_SEEDS = (1, 2), (1, 2)


def invoke(name: str, *args) -> None:
    result = CliRunner().invoke(load_bin(name), [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, f"{name}: {result.output}"


def run_chain(root: Path) -> None:
    """The whole bin chain on a tiny file set under ``root`` (also called in a subprocess)."""
    root.mkdir(parents=True, exist_ok=True)
    prefix = write_fileset(root / "cohort", random_counts(160, 80, seed=7), chrom=[1] * 40 + [2] * 40,
                           pheno=case_control(160, n_cases=60, seed=7))
    invoke("annpal-prepare", "--bfile", prefix, "--val-cases", 12, "--val-controls", 12, "--split-seed", 3,
           "--allow-few-samples",  # 48 training cases: deliberately tiny
           "--out-dir", root / "prepared")
    models = {}
    for kind, seeds in (("real", REAL_SEEDS), ("null", NULL_SEEDS)):
        for seed in seeds:
            out = root / "train" / f"{kind}_s{seed}"
            extra = ["--null", "--permute-seed", 100_000 + seed] if kind == "null" else []
            invoke("annpal-train", "--dataset", root / "prepared", "--seed", seed, *extra, "--epochs", 4,
                   "--batch-size", 32, "--lr", 1e-3, "--input-dropout", 0.5, "--h1", 8, "--h2", 4,
                   "--device", "cpu", "--threads", 1, "--out-dir", out)
            models[(kind, seed)] = out
    for method in METHODS:
        for kind in ("real", "null"):
            folders = []
            for (k, seed), model in models.items():
                if k != kind:
                    continue
                out = root / "attribution" / f"{method}_{kind}_s{seed}"
                invoke("annpal-attribute", "--dataset", root / "prepared", "--model", model / "model.pt",
                       "--method", method, "--n-steps", 8, "--batch-size", 16, "--device", "cpu", "--threads", 1,
                       "--out-dir", out)
                folders.append(out)
            invoke("annpal-merge-mas", "--method", method, "--kind", kind, "--out-dir",
                   root / "mas" / f"{method}_{kind}", *reversed(folders))  # order must not matter
        real = root / "mas" / f"{method}_real" / "mas_matrix.npy"
        invoke("annpal-call-pal", "--dataset", root / "prepared", "--mas", real, "--method", method,
               "--thresholds", "99,95", "--ld-window", 5, "--out-dir", root / "pal" / method)
        invoke("annpal-pvalues", "--mas", real,
               "--null-mas", root / "mas" / f"{method}_null" / "mas_matrix.npy",
               "--scores", root / "pal" / method / "scores.tsv", "--draws", 5, "--seed", 1, "--all-snps",
               "--out-dir", root / "pvalues" / method)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("determinism")
    here, there = base / "in_process", base / "subprocess"
    run_chain(here)
    code = (f"import sys; sys.path.insert(0, {str(REPO / 'tests')!r}); from pathlib import Path; "
            f"from test_determinism import run_chain; run_chain(Path({str(there)!r}))")
    env = dict(os.environ, PYTHONHASHSEED="12345", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return here, there


def result_files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.suffix in (".tsv", ".npy"))


def test_determinism__same_files_in_both_runs(two_runs) -> None:
    here, there = two_runs
    files = result_files(here)
    assert files == result_files(there)
    expected = {"genotypes.npy", "samples.tsv", "variants.tsv", "history.tsv", "mas.npy", "mas_matrix.npy",
                "models.tsv", "scores.tsv", "pal.tsv", "pvalues.tsv", "null_fit.tsv"}
    assert {p.name for p in files} >= expected


def test_determinism__tsv_and_npy_byte_identical(two_runs) -> None:
    here, there = two_runs
    different = []
    for rel in result_files(here):
        if rel.name == "history.tsv":  # its `seconds` column is wall time
            a, b = (pd.read_csv(r / rel, sep="\t").drop(columns="seconds") for r in (here, there))
            same = a.equals(b)
        else:
            same = (here / rel).read_bytes() == (there / rel).read_bytes()
        if not same:
            different.append(str(rel))
    assert not different


def test_determinism__model_weights_identical(two_runs) -> None:
    here, there = two_runs
    for model in sorted(here.glob("train/*/model.pt")):
        a = load_model(model)[0].state_dict()
        b = load_model(there / model.relative_to(here))[0].state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), model.parent.name


def test_determinism__pvalues_not_trivial(two_runs) -> None:
    """Guard against comparing empty tables: the chain produced real rows."""
    here, _ = two_runs
    for method in METHODS:
        assert len(pd.read_csv(here / "pvalues" / method / "pvalues.tsv", sep="\t")) > 0
        assert len(pd.read_csv(here / "pal" / method / "scores.tsv", sep="\t")) == 80
