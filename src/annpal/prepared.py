"""The prepared dataset: the one artifact every step after PREPARE reads (DESIGN.md).

A folder holding

``genotypes.npy``
    int8, samples × SNPs, C order, values −1/0/1 (A1 count − 1; missing → 0), memory-mappable.
``samples.tsv``
    ``FID IID label split`` — label 1 = case, 0 = control; split ``train`` or ``val``; row order = rows
    of the matrix.
``variants.tsv``
    ``index CHR BP SNP A1 A2 MAF MISSING`` — one row per column of the matrix, sorted by chromosome
    and position; ``CHR`` is an integer for autosomes (1-22), ``X``/``Y``/``MT`` as text otherwise.
``qc.json``
    What was read, removed and why (counts only, never sample IDs).

The format lives here alone: PREPARE writes it with :func:`write_prepared`, everything else reads it
with :func:`load_prepared`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from annpal.errors import InputError

GENOTYPES, SAMPLES, VARIANTS, QC = "genotypes.npy", "samples.tsv", "variants.tsv", "qc.json"
SAMPLE_COLUMNS = ["FID", "IID", "label", "split"]
VARIANT_COLUMNS = ["index", "CHR", "BP", "SNP", "A1", "A2", "MAF", "MISSING"]


@dataclass
class PreparedDataset:
    """Genotypes (int8 −1/0/1, possibly a read-only memmap) with their sample and variant tables."""

    genotypes: np.ndarray
    samples: pd.DataFrame
    variants: pd.DataFrame
    qc: dict[str, Any]
    path: Path | None = None

    @property
    def labels(self) -> np.ndarray:
        """Case (1) / control (0) per sample, int8."""
        return self.samples["label"].to_numpy(dtype=np.int8)

    @property
    def train_mask(self) -> np.ndarray:
        return (self.samples["split"] == "train").to_numpy()

    @property
    def val_mask(self) -> np.ndarray:
        return (self.samples["split"] == "val").to_numpy()

    @property
    def chromosomes(self) -> np.ndarray:
        """Chromosome label of each SNP as strings (for same-chromosome tests)."""
        return self.variants["CHR"].astype(str).to_numpy()

    @property
    def positions(self) -> np.ndarray:
        return self.variants["BP"].to_numpy(dtype=np.int64)

    @property
    def n_samples(self) -> int:
        return int(self.genotypes.shape[0])

    @property
    def n_snps(self) -> int:
        return int(self.genotypes.shape[1])


def write_prepared(directory: str | os.PathLike[str], dataset: PreparedDataset) -> None:
    """Write ``dataset`` into ``directory`` (which must exist; callers write into a temporary folder
    and rename it when complete, see :func:`annpal.cli.atomic_path`)."""
    d = Path(directory)
    g = np.ascontiguousarray(dataset.genotypes, dtype=np.int8)
    np.save(d / GENOTYPES, g)
    dataset.samples[SAMPLE_COLUMNS].to_csv(d / SAMPLES, sep="\t", index=False)
    variants = dataset.variants.copy()
    variants["index"] = np.arange(len(variants))
    variants[VARIANT_COLUMNS].to_csv(d / VARIANTS, sep="\t", index=False, float_format="%.6g")
    (d / QC).write_text(json.dumps(dataset.qc, indent=2, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(type(obj).__name__)


def load_prepared(directory: str | os.PathLike[str], *, mmap: bool = True) -> PreparedDataset:
    """Read a prepared dataset folder; genotypes are memory-mapped read-only unless ``mmap=False``.

    Raises
    ------
    InputError
        A file is missing or the tables disagree with the matrix shape.
    """
    d = Path(directory)
    for name in (GENOTYPES, SAMPLES, VARIANTS, QC):
        if not (d / name).is_file():
            raise InputError(f"{d / name}: missing; point to a folder written by annpal-prepare")
    genotypes = np.load(d / GENOTYPES, mmap_mode="r" if mmap else None)
    samples = pd.read_csv(d / SAMPLES, sep="\t", dtype={"FID": str, "IID": str, "split": str})
    variants = pd.read_csv(d / VARIANTS, sep="\t", dtype={"CHR": str, "SNP": str, "A1": str, "A2": str})
    if genotypes.dtype != np.int8 or genotypes.ndim != 2:
        raise InputError(f"{d / GENOTYPES}: expected a 2-D int8 matrix; re-run annpal-prepare")
    if genotypes.shape != (len(samples), len(variants)):
        raise InputError(
            f"{d}: genotypes.npy is {genotypes.shape[0]}×{genotypes.shape[1]} but samples.tsv has "
            f"{len(samples)} rows and variants.tsv {len(variants)}; re-run annpal-prepare"
        )
    qc = json.loads((d / QC).read_text())
    return PreparedDataset(genotypes=genotypes, samples=samples, variants=variants, qc=qc, path=d)
