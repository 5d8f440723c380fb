"""The block-streaming interface every genotype reader shares, and the one driver that uses it.

A reader (PLINK 1 bed, PLINK 2 pgen, BGEN, VCF) is a :class:`GenotypeSource`: a sample table, a
variant table, and ``read_block(rows, cols, out)``, which fills a samples × SNPs int8 block with the
count of each variant's A1 allele (0/1/2) or the reader's own missing code. :func:`stream_genotypes`
walks the requested SNPs in blocks of a fixed byte size, encodes each block to −1/0/1 with missing → 0
(docs/method.md §1) while gathering the integer per-SNP / per-sample statistics QC
needs, and copies it into the result, which may be a memory-mapped ``genotypes.npy`` (PREPARE writes the
matrix in place). Memory beyond the result is two block buffers, whatever the format.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: Default size of one block of SNPs (bytes of int8 genotypes).
DEFAULT_CHUNK_BYTES = 32 << 20
#: Variant table columns every reader provides (PLINK .bim order; A1 is the counted allele).
VARIANT_COLUMNS = ["CHR", "SNP", "CM", "BP", "A1", "A2"]


def fileset_paths(prefix: str | os.PathLike[str], extensions: tuple[str, ...]) -> tuple[Path, ...]:
    """The files of a PLINK-style file set, ``PREFIX + ext`` for each extension; one of those extensions
    at the end of ``prefix`` is ignored (``data/cohort.bed`` means ``data/cohort``)."""
    text = str(prefix)
    for ext in extensions:
        if text.endswith(ext):
            text = text[: -len(ext)]
    return tuple(Path(text + ext) for ext in extensions)


class GenotypeSource(abc.ABC):
    """One genotype input: tables plus block reads of A1 allele counts.

    Attributes
    ----------
    format
        ``bfile``, ``pfile``, ``bgen`` or ``vcf`` (the annpal-prepare option that opened it).
    path
        The genotype file, for messages.
    samples
        One row per sample in file order: ``FID IID`` (strings) and ``PHENO`` (text as stored, or
        ``None`` for formats that carry no phenotype).
    variants
        One row per variant in file order: :data:`VARIANT_COLUMNS`, ``CHR`` normalised
        (:func:`annpal.genome.normalise_chromosomes`), ``BP`` int64.
    has_family_ids
        False when the format has a single sample ID (VCF, BGEN without a .sample file): the
        phenotype file is then matched on IID alone.
    missing_code
        The int8 value ``read_block`` writes for a missing call.
    sample_file, variant_file
        The files the sample and variant tables came from (for messages).
    """

    format: str = ""
    path: Path
    samples: pd.DataFrame
    variants: pd.DataFrame
    has_family_ids: bool = True
    missing_code: int = -127
    sample_file: Path
    variant_file: Path

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    @property
    def n_snps(self) -> int:
        return len(self.variants)

    @abc.abstractmethod
    def read_block(self, rows: np.ndarray, cols: np.ndarray, out: np.ndarray) -> None:
        """Fill ``out`` (``len(rows) × len(cols)`` int8, F-ordered) with A1 counts.

        ``rows`` are increasing sample indices, ``cols`` increasing variant indices (the driver sorts
        them, so sequential formats never seek backwards within one pass).
        """

    def close(self) -> None:  # noqa: B027  (a deliberate no-op default, not an abstract hook)
        """Release open files and temporary files (no-op by default)."""

    def __enter__(self) -> GenotypeSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class GenotypeBlockStats:
    """Integer statistics gathered while reading (over the samples read, missing calls excluded)."""

    snp_missing: np.ndarray  # missing calls per SNP
    snp_sum: np.ndarray  # sum of (A1 count − 1) over called genotypes per SNP
    snp_hom: np.ndarray  # homozygous calls per SNP (value ±1)
    sample_missing: np.ndarray  # missing calls per sample


def chunk_size(n_samples: int, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """SNPs per block so that one int8 block is about ``chunk_bytes``."""
    return max(1, chunk_bytes // max(1, n_samples))


def encode_block(block: np.ndarray, *, scratch: np.ndarray | None = None, missing: int = -127
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """In place: int8 A1 counts (0/1/2, ``missing`` for a missing call) → −1/0/1 with missing → 0.

    ``block`` is samples × SNPs, C- or F-contiguous. Returns per-SNP missing counts, per-sample missing
    counts, per-SNP sums of the encoded values and per-SNP homozygous-call counts, all from integer
    arithmetic on the block. ``scratch`` (int8, at least ``block.size`` elements) avoids allocating
    temporaries for every block.
    """
    n, w = block.shape
    transposed = block.flags.f_contiguous and not block.flags.c_contiguous
    b = block.T if transposed else block  # C-contiguous: (SNPs × samples) or (samples × SNPs)
    if not b.flags.c_contiguous:
        raise ValueError("encode_block needs a C- or F-contiguous block")
    snp_axis = 0 if transposed else 1
    buf = np.empty(b.size, dtype=np.int8) if scratch is None else scratch.reshape(-1)[: b.size]
    mask = buf.view(np.bool_).reshape(b.shape)
    np.equal(b, missing, out=mask)
    snp_missing = np.zeros(w, dtype=np.int64)
    sample_missing = np.zeros(n, dtype=np.int64)
    flat = np.flatnonzero(mask)
    if len(flat):
        # Missing calls are rare: index them instead of reducing a full boolean block twice.
        i, j = np.divmod(flat, b.shape[1])
        snp_idx, sample_idx = (i, j) if transposed else (j, i)
        snp_missing = np.bincount(snp_idx, minlength=w).astype(np.int64)
        sample_missing = np.bincount(sample_idx, minlength=n).astype(np.int64)
        b[i, j] = 1  # count 1 - 1 = 0: the heterozygous, allele-neutral value
    np.subtract(b, 1, out=b)
    reduce_axis = 1 - snp_axis
    snp_sum = b.sum(axis=reduce_axis, dtype=np.int32).astype(np.int64)
    absolute = buf.reshape(b.shape)
    np.abs(b, out=absolute)
    snp_hom = absolute.sum(axis=reduce_axis, dtype=np.int32).astype(np.int64)
    return snp_missing, sample_missing, snp_sum, snp_hom


def copy_tiled(src: np.ndarray, dst: np.ndarray, *, tile: int = 512) -> None:
    """``dst[...] = src`` in square tiles: an F-ordered block into a C-ordered matrix transposes the
    memory layout, and tiles keep both sides in cache (about 3× faster than one strided copy)."""
    n, w = src.shape
    for a in range(0, n, tile):
        for b in range(0, w, tile):
            dst[a:a + tile, b:b + tile] = src[a:a + tile, b:b + tile]


def _blocks(cols: np.ndarray, step: int):
    """``(sorted source columns, destination columns, contiguous destination slice or None)`` per block."""
    order = np.argsort(cols, kind="stable")
    for start in range(0, len(cols), step):
        dest = order[start:start + step]
        contiguous = bool(np.all(np.diff(dest) == 1))
        yield cols[dest], dest, (slice(int(dest[0]), int(dest[-1]) + 1) if contiguous else None)


def stream_genotypes(
    source: GenotypeSource,
    *,
    sample_index: np.ndarray | None = None,
    snp_index: np.ndarray | None = None,
    out: np.ndarray | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    sample_missing: bool = True,
    fast: bool = True,
) -> tuple[np.ndarray, GenotypeBlockStats]:
    """Read genotypes as a C-ordered int8 matrix (samples × SNPs) of −1/0/1, missing → 0.

    Blocks of SNPs are read in file order (ascending variant index) into one reused F-ordered buffer,
    encoded and counted there (per-SNP reductions are then contiguous), and copied into their columns
    of the result; memory beyond the result is two block buffers.

    Parameters
    ----------
    source
        An opened reader (:func:`annpal.io.open_genotypes`).
    sample_index
        Increasing sample rows to read (default: all).
    snp_index
        Variant rows to read, in the column order wanted (default: all, file order).
    out
        Where to write (``len(sample_index) × len(snp_index)`` int8, C order), e.g. a memory map of the
        final ``genotypes.npy``; allocated when ``None``.
    chunk_bytes
        Size of one block of SNPs processed at a time; bounds the memory used beyond the result.
    sample_missing
        Count missing calls per sample (``stats.sample_missing``; zeros when False and a reader's fast
        path skips them).
    fast
        Use a reader's fast path (``read_encoded``, PLINK 1 only) where it applies; ``False`` forces the
        plain path, the reference the fast path is tested against.

    Returns
    -------
    genotypes, stats
        The matrix and integer per-SNP / per-sample statistics over the samples read.
    """
    rows = np.arange(source.n_samples) if sample_index is None else np.asarray(sample_index)
    cols = np.arange(source.n_snps) if snp_index is None else np.asarray(snp_index)
    rows, cols = rows.astype(np.intp, copy=False), cols.astype(np.intp, copy=False)
    if np.any(np.diff(rows) <= 0):
        raise ValueError("sample_index must be strictly increasing")
    n, m = len(rows), len(cols)
    read_encoded = getattr(source, "read_encoded", None) if fast else None
    if out is None:
        out = np.empty((n, m), dtype=np.int8)
        if read_encoded is not None:
            # The fast path writes column blocks of this C-ordered matrix: one SNP touches a page per few
            # samples, and first-touch page faults in that order cost more than one sequential fill.
            out.fill(0)
    elif out.shape != (n, m) or out.dtype != np.int8:
        raise ValueError(f"out is {out.dtype} {out.shape}, expected int8 {(n, m)}")
    stats = GenotypeBlockStats(snp_missing=np.zeros(m, np.int64), snp_sum=np.zeros(m, np.int64),
                               snp_hom=np.zeros(m, np.int64), sample_missing=np.zeros(n, np.int64))
    if n == 0 or m == 0:
        return out, stats
    step = min(chunk_size(n, chunk_bytes=chunk_bytes), m)
    buffers: list[np.ndarray] = []  # the plain path's two block buffers, allocated on first use
    for src_cols, dest, dest_slice in _blocks(cols, step):
        counted = None
        if read_encoded is not None and dest_slice is not None:
            counted = read_encoded(rows, np.ascontiguousarray(src_cols), out[:, dest_slice],
                                   sample_missing=sample_missing)
        if counted is None:
            buffers = buffers or [np.empty(n * step, dtype=np.int8), np.empty(n * step, dtype=np.int8)]
            counted = _plain_block(source, rows, src_cols, dest, dest_slice, out, buffers)
        stats.snp_missing[dest], per_sample, stats.snp_sum[dest], stats.snp_hom[dest] = counted
        stats.sample_missing += per_sample
    return out, stats


def _plain_block(source: GenotypeSource, rows: np.ndarray, src_cols: np.ndarray, dest: np.ndarray,
                 dest_slice: slice | None, out: np.ndarray, buffers: list[np.ndarray]):
    """The plain path for one block: read into an F-ordered buffer, encode and count there, copy out."""
    n = len(rows)
    block = buffers[0][: n * len(dest)].reshape((n, len(dest)), order="F")
    source.read_block(rows, np.ascontiguousarray(src_cols), block)
    counted = encode_block(block, scratch=buffers[1], missing=source.missing_code)
    if dest_slice is not None:
        copy_tiled(block, out[:, dest_slice])
    else:
        out[:, dest] = block
    return counted


__all__ = [
    "DEFAULT_CHUNK_BYTES", "GenotypeBlockStats", "GenotypeSource", "VARIANT_COLUMNS", "chunk_size", "copy_tiled",
    "encode_block", "fileset_paths", "stream_genotypes",
]
