"""The prepared dataset: the one artifact every step after PREPARE reads (docs/architecture.md).

A folder holding

``genotypes.npy``
    int8, samples × SNPs, C order, values −1/0/1 (A1 count − 1; missing → 0), memory-mappable.
``samples.tsv``
    ``FID IID label split`` — label 1 = case, 0 = control (a quantitative trait: its value); split
    ``train`` or ``val``; row order = rows of the matrix.
``variants.tsv``
    ``index CHR BP SNP A1 A2 MAF MISSING`` — one row per column of the matrix, sorted by chromosome
    and position; ``CHR`` is an integer for autosomes (1-22), ``X``/``Y``/``MT`` as text otherwise.
``qc.json``
    What was read, removed and why (counts only, never sample IDs).

The format lives here alone: PREPARE writes it with :func:`write_prepared`, everything else reads it
with :func:`load_prepared`.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from annpal import results
from annpal.errors import InputError

#: File names and columns, declared in :mod:`annpal.results`.
GENOTYPES, SAMPLES, VARIANTS, QC = (a.filename for a in (results.GENOTYPES, results.SAMPLES, results.VARIANTS,
                                                          results.QC))
SAMPLE_COLUMNS = results.SAMPLES.names
VARIANT_COLUMNS = results.VARIANTS.names


@dataclass
class PreparedDataset:
    """Genotypes (int8 −1/0/1, possibly a read-only memmap) with their sample and variant tables."""

    genotypes: np.ndarray
    samples: pd.DataFrame
    variants: pd.DataFrame
    qc: dict[str, Any]
    path: Path | None = None

    @property
    def trait_type(self) -> str:
        """``binary`` or ``quantitative``, as annpal-prepare read the phenotype (``qc.json``; datasets
        written before trait types existed are binary)."""
        return str(self.qc.get("phenotype", {}).get("trait_type", "binary"))

    @property
    def quantitative(self) -> bool:
        return self.trait_type == "quantitative"

    @property
    def labels(self) -> np.ndarray:
        """Case (1) / control (0) per sample as int8; for a quantitative trait its values as float64."""
        return self.samples["label"].to_numpy(dtype=np.float64 if self.quantitative else np.int8)

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
    g = dataset.genotypes
    target = (d / GENOTYPES).resolve()
    written = isinstance(g, np.memmap) and g.filename is not None and Path(g.filename).resolve() == target
    if not written:  # PREPARE writes the matrix in place (create_genotypes_npy); everything else saves it here
        results.write(results.GENOTYPES, d / GENOTYPES, np.asarray(g, dtype=np.int8))
    results.write(results.SAMPLES, d / SAMPLES, dataset.samples[SAMPLE_COLUMNS])
    variants = dataset.variants.copy()
    variants["index"] = np.arange(len(variants))
    results.write(results.VARIANTS, d / VARIANTS, variants[VARIANT_COLUMNS])
    results.write(results.QC, d / QC, dataset.qc)


def create_genotypes_npy(path: str | os.PathLike[str], shape: tuple[int, int]) -> np.memmap:
    """A writable memory map of a new int8 C-ordered ``genotypes.npy`` of ``shape`` (filled by the caller).

    PREPARE streams the matrix straight into it, so the matrix is never built in memory and then saved.
    The pages are allocated up front with ``madvise(MADV_POPULATE_WRITE)`` (Linux >= 5.14) where the
    system has it: one call instead of a page fault, and a block allocation in the new sparse file, per
    4 KiB written (measured about 3x faster writes into the map).
    """
    genotypes = np.lib.format.open_memmap(path, mode="w+", dtype=np.int8, shape=tuple(int(s) for s in shape))
    backing = getattr(genotypes, "_mmap", None)
    if backing is not None and genotypes.size:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            backing.madvise(getattr(mmap, "MADV_POPULATE_WRITE", 23))  # 23: its value in Linux's headers
    return genotypes


def shrink_genotypes_npy(path: str | os.PathLike[str], shape: tuple[int, int]) -> np.memmap:
    """Cut a ``genotypes.npy`` whose first ``shape[0]·shape[1]`` bytes already hold the smaller matrix
    (C order) down to ``shape``: rewrite the header's shape in place (same header length) and truncate.

    Returns the result as a read-only memory map. Every writable map of the file must be closed first.
    """
    path = Path(path)
    shape = (int(shape[0]), int(shape[1]))
    with open(path, "r+b") as fh:
        version = np.lib.format.read_magic(fh)
        if version != (1, 0):
            raise ValueError(f"{path}: npy format {version}, expected 1.0")
        np.lib.format.read_array_header_1_0(fh)
        data_start = fh.tell()
        fields = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.int8)), "fortran_order": False, "shape": shape}
        header = "{" + "".join(f"{key!r}: {fields[key]!r}, " for key in sorted(fields)) + "}"
        room = data_start - 10  # magic (6) + version (2) + header length (2)
        if len(header) + 1 > room:
            raise ValueError(f"{path}: new header does not fit")
        fh.seek(10)
        fh.write((header + " " * (room - len(header) - 1) + "\n").encode("latin1"))
        fh.truncate(data_start + shape[0] * shape[1])
    return results.read(results.GENOTYPES, path, mmap=True)


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
    genotypes = results.read(results.GENOTYPES, d / GENOTYPES, mmap=mmap)
    samples = results.read(results.SAMPLES, d / SAMPLES)
    variants = results.read(results.VARIANTS, d / VARIANTS)
    if genotypes.dtype != np.int8:
        raise InputError(f"{d / GENOTYPES}: expected a 2-D int8 matrix; {results.GENOTYPES.fix()}")
    if genotypes.shape != (len(samples), len(variants)):
        raise InputError(
            f"{d}: genotypes.npy is {genotypes.shape[0]}×{genotypes.shape[1]} but samples.tsv has "
            f"{len(samples)} rows and variants.tsv {len(variants)}; re-run annpal-prepare"
        )
    qc = results.read(results.QC, d / QC)
    return PreparedDataset(genotypes=genotypes, samples=samples, variants=variants, qc=qc, path=d)
