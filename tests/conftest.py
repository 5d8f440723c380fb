"""Shared test helpers: load ``bin/`` commands, small synthetic datasets, the Nextflow launcher."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from annpal.prepared import PreparedDataset, write_prepared

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / "bin"
# The commands import bin/_annpal_env.py first (Python finds it beside the script when run as one).
sys.path.insert(0, str(BIN))


def load_bin(name: str):
    """Import ``bin/<name>`` (a file without ``.py``) and return its Click command ``main``."""
    path = BIN / name
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module.main


def make_genotypes(n_samples: int, n_snps: int, *, seed: int = 0, ld_block: int = 5) -> np.ndarray:
    """Random −1/0/1 genotypes with LD: SNPs in blocks of ``ld_block`` copy a block haplotype with 10 %
    of calls resampled, so neighbours correlate strongly within a block and weakly across blocks."""
    rng = np.random.default_rng(seed)
    maf = rng.uniform(0.05, 0.5, size=n_snps)
    g = np.empty((n_samples, n_snps), dtype=np.int8)
    for start in range(0, n_snps, ld_block):
        stop = min(start + ld_block, n_snps)
        base = rng.binomial(2, maf[start], size=n_samples) - 1
        for j in range(start, stop):
            fresh = rng.binomial(2, maf[j], size=n_samples) - 1
            keep = rng.random(n_samples) < 0.9
            g[:, j] = np.where(keep, base, fresh)
    return g


def make_prepared(path: Path, *, n_samples: int = 400, n_snps: int = 300, n_chrom: int = 2,
                  causal: tuple[int, ...] = (10, 150), seed: int = 0, n_val_per_class: int = 40,
                  trait_type: str = "binary") -> PreparedDataset:
    """Write a small prepared dataset with a real signal at ``causal`` SNP indices into ``path``
    (``trait_type="quantitative"``: the score itself is the trait, ``2 · n_val_per_class`` random
    validation samples)."""
    rng = np.random.default_rng(seed)
    g = make_genotypes(n_samples, n_snps, seed=seed)
    score = sum(1.5 * g[:, c].astype(float) for c in causal) + rng.normal(0, 1, n_samples)
    label = (score > np.quantile(score, 0.6)).astype(np.int8)
    split = np.array(["train"] * n_samples, dtype=object)
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(label == cls))[:n_val_per_class]
        split[idx] = "val"
    qc = {"synthetic": True, "causal": list(causal)}
    if trait_type == "quantitative":
        label = score
        qc["phenotype"] = {"trait_type": "quantitative"}
    samples = pd.DataFrame({"FID": [f"F{i}" for i in range(n_samples)],
                            "IID": [f"I{i}" for i in range(n_samples)], "label": label, "split": split})
    per = int(np.ceil(n_snps / n_chrom))
    chrom = np.repeat(np.arange(1, n_chrom + 1), per)[:n_snps]
    bp = np.concatenate([np.arange(1, per + 1) * 10_000 for _ in range(n_chrom)])[:n_snps]
    af = (g.astype(float) + 1).mean(axis=0) / 2
    variants = pd.DataFrame({"index": np.arange(n_snps), "CHR": chrom.astype(str), "BP": bp,
                             "SNP": [f"rs{1000 + i}" for i in range(n_snps)], "A1": "A", "A2": "G",
                             "MAF": np.minimum(af, 1 - af), "MISSING": 0.0})
    ds = PreparedDataset(genotypes=g, samples=samples, variants=variants,
                         qc=qc)
    path.mkdir(parents=True, exist_ok=True)
    write_prepared(path, ds)
    return ds


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory) -> Path:
    """A 400 × 300 prepared dataset on 2 chromosomes with causal SNPs 10 and 150."""
    path = tmp_path_factory.mktemp("prepared") / "prepared"
    make_prepared(path)
    return path


def snapshot_checkout(dest: Path) -> Path:
    """Copy the checkout's tracked and untracked, non-ignored files (``git ls-files``) to ``dest``:
    a tree that stays the same while the checkout changes. Skips the test outside a git checkout."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=REPO, capture_output=True, text=True)
    if listing.returncode != 0:
        pytest.skip(f"not a git checkout, cannot snapshot the tree: {listing.stderr.strip()}")
    for rel in filter(None, listing.stdout.split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def nextflow_bin() -> str | None:
    """The project's Nextflow launcher (installed by ``make``), else one on PATH."""
    local = REPO / ".tools" / "nextflow" / "bin" / "nextflow"
    if local.exists():
        return str(local)
    return shutil.which("nextflow")


def nextflow_env(tmp: Path) -> dict[str, str]:
    """Environment for a test's ``nextflow run``: the venv's Python first on PATH, offline."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("NXF_HOME", str(REPO / ".tools" / "nextflow" / "home"))
    env["NXF_OFFLINE"] = "true"
    env["NXF_ANSI_LOG"] = "false"
    return env
