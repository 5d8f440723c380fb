"""PLINK 1 binary file sets (``.bed/.bim/.fam``): validation, tables, chunked −1/0/1 genotype reading.

docs/method.md §1: the allele count of A1 (0/1/2, bed-reader ``count_A1=True``) minus 1 gives the −1/0/1
encoding; missing calls become 0 and are counted. Genotypes are read in blocks of SNPs straight into a
preallocated int8 matrix, so the peak memory stays close to the size of that matrix, and the per-SNP
and per-sample statistics QC needs (missing calls, A1 counts, homozygous calls) are gathered on the
way, in integer arithmetic on each block (never a float64 copy of the whole matrix).

Every check that fails raises :class:`~annpal.errors.InputError` with one line naming the file and the
fix.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from annpal.errors import InputError
from annpal.genome import normalise_chromosomes
from annpal.io.blocks import (
    DEFAULT_CHUNK_BYTES,
    GenotypeBlockStats,
    GenotypeSource,
    chunk_size,  # noqa: F401  (re-exported)
    encode_block,  # noqa: F401  (re-exported)
    fileset_paths,
    stream_genotypes,
)

log = logging.getLogger(__name__)

#: First two bytes of every PLINK 1 .bed file; the third is 0x01 (SNP-major) or 0x00 (sample-major).
BED_MAGIC = b"\x6c\x1b"
FAM_COLUMNS = ["FID", "IID", "PAT", "MAT", "SEX", "PHENO"]
BIM_COLUMNS = ["CHR", "SNP", "CM", "BP", "A1", "A2"]
#: bed-reader's int8 value for a missing call.
BED_MISSING_INT8 = -127


@dataclass(frozen=True)
class PlinkFileset:
    """Paths of one PLINK 1 binary file set and its dimensions (from the .fam and .bim line counts)."""

    bed: Path
    bim: Path
    fam: Path
    n_samples: int
    n_snps: int


def bfile_paths(prefix: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """``(PREFIX.bed, PREFIX.bim, PREFIX.fam)``; a trailing ``.bed/.bim/.fam`` on ``prefix`` is ignored."""
    return fileset_paths(prefix, (".bed", ".bim", ".fam"))


def _count_lines(path: Path) -> int:
    n = 0
    last = b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def open_fileset(prefix: str | os.PathLike[str]) -> PlinkFileset:
    """Check that a PLINK file set exists and that its three files belong together.

    Checks the presence of the three files, the .bed magic bytes, that the .bed is SNP-major, and that
    its size is exactly ``3 + n_snps · ceil(n_samples / 4)`` bytes for the .fam and .bim line counts.

    Raises
    ------
    InputError
        A file is missing, the .bed is not a PLINK 1 .bed, is sample-major, or its size disagrees with
        the .fam/.bim (a mismatched file set).
    """
    bed, bim, fam = bfile_paths(prefix)
    for path in (bed, bim, fam):
        if not path.is_file():
            raise InputError(
                f"{path}: not found; --bfile takes the prefix of a PLINK .bed/.bim/.fam file set "
                f"(e.g. --bfile data/cohort for data/cohort.bed, .bim and .fam)"
            )
    n_samples, n_snps = _count_lines(fam), _count_lines(bim)
    if n_samples == 0 or n_snps == 0:
        empty = fam if n_samples == 0 else bim
        raise InputError(f"{empty}: empty; regenerate the file set with plink --make-bed")
    with open(bed, "rb") as fh:
        head = fh.read(3)
    if head[:2] != BED_MAGIC:
        raise InputError(
            f"{bed}: not a PLINK 1 binary .bed (first bytes {head[:2].hex(' ') or 'none'}, expected 6c 1b); "
            f"convert it with plink --bfile/--vcf ... --make-bed"
        )
    if len(head) < 3 or head[2] != 1:
        mode = "sample-major" if len(head) == 3 and head[2] == 0 else "of unknown mode"
        raise InputError(
            f"{bed}: {mode} .bed file; rewrite it SNP-major with plink --bfile {bfile_paths(bed)[0].with_suffix('')} "
            f"--make-bed --out NEWPREFIX"
        )
    expected = 3 + n_snps * ((n_samples + 3) // 4)
    actual = bed.stat().st_size
    if actual != expected:
        raise InputError(
            f"{bed}: {actual} bytes but {fam.name} ({n_samples} samples) and {bim.name} ({n_snps} SNPs) "
            f"imply {expected}; the three files do not belong together or the .bed is truncated, "
            f"regenerate the file set with plink --make-bed"
        )
    return PlinkFileset(bed=bed, bim=bim, fam=fam, n_samples=n_samples, n_snps=n_snps)


def _read_whitespace_table(path: Path, columns: list[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, comment=None,
                            keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        # EmptyDataError: only blank lines; UnicodeDecodeError: not a text file
        raise InputError(
            f"{path}: cannot be parsed ({' '.join(str(exc).split())[:120]}); it needs {len(columns)} "
            f"whitespace-separated columns ({' '.join(columns)}) on every line"
        ) from None
    if frame.shape[1] != len(columns):
        raise InputError(
            f"{path}: {frame.shape[1]} columns, expected {len(columns)} ({' '.join(columns)}); "
            f"regenerate the file set with plink --make-bed"
        )
    frame.columns = columns
    return frame


def read_fam(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a .fam as strings: ``FID IID PAT MAT SEX PHENO`` (phenotype parsed later)."""
    return _read_whitespace_table(Path(path), FAM_COLUMNS)


def read_bim(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a .bim: ``CHR SNP CM BP A1 A2`` with ``CHR`` normalised and ``BP`` as int64.

    Raises
    ------
    InputError
        Wrong column count or a non-integer position.
    """
    path = Path(path)
    bim = _read_whitespace_table(path, BIM_COLUMNS)
    bp = pd.to_numeric(bim["BP"], errors="coerce")
    if bp.isna().any() or (bp % 1 != 0).any():
        line = int(np.flatnonzero(bp.isna() | (bp % 1 != 0))[0]) + 1
        raise InputError(f"{path}: line {line} has a non-integer position (column 4); fix or regenerate the .bim")
    bim["BP"] = bp.astype(np.int64)
    bim["CHR"] = normalise_chromosomes(bim["CHR"])
    return bim


def make_unique_ids(ids: pd.Series, chrom: pd.Series, bp: pd.Series) -> tuple[pd.Series, int, int]:
    """Replace missing IDs (``.``) by ``CHR:BP`` and suffix repeats with ``_dup2``, ``_dup3``, ...

    Returns the new IDs, the number of IDs filled in and the number renamed as duplicates.
    """
    ids = ids.astype(str).copy()
    missing = ids.isin([".", ""]).to_numpy()
    if missing.any():
        ids[missing] = chrom[missing].astype(str) + ":" + bp[missing].astype(str)
    occurrence = ids.groupby(ids).cumcount().to_numpy()
    dup = occurrence > 0
    if dup.any():
        taken = set(ids)
        new = ids.to_numpy(dtype=object)
        for i in np.flatnonzero(dup):
            k = occurrence[i] + 1
            while f"{new[i]}_dup{k}" in taken:
                k += 1
            new[i] = f"{new[i]}_dup{k}"
            taken.add(new[i])
        ids = pd.Series(new, index=ids.index, dtype=object)
    return ids, int(missing.sum()), int(dup.sum())


class BedSource(GenotypeSource):
    """A PLINK 1 file set as a :class:`~annpal.io.blocks.GenotypeSource` (A1 counted, −127 missing)."""

    format = "bfile"
    missing_code = BED_MISSING_INT8

    def __init__(self, fileset: PlinkFileset, *, num_threads: int | None = None):
        self.fileset = fileset
        self.path = fileset.bed
        self.sample_file, self.variant_file = fileset.fam, fileset.bim
        self._read = _block_reader(fileset, num_threads)

    @functools.cached_property
    def samples(self) -> pd.DataFrame:  # type: ignore[override]
        return read_fam(self.fileset.fam)

    @functools.cached_property
    def variants(self) -> pd.DataFrame:  # type: ignore[override]
        return read_bim(self.fileset.bim)

    @property
    def n_samples(self) -> int:
        return self.fileset.n_samples

    @property
    def n_snps(self) -> int:
        return self.fileset.n_snps

    def read_block(self, rows: np.ndarray, cols: np.ndarray, out: np.ndarray) -> None:
        self._read(rows, cols, out)

    @functools.cached_property
    def _bed_bytes(self) -> np.ndarray:
        """The .bed as a read-only ``SNPs × ceil(samples / 4)`` byte matrix (memory-mapped)."""
        n_bytes = (self.fileset.n_samples + 3) // 4
        return np.memmap(self.fileset.bed, dtype=np.uint8, mode="r", offset=3, shape=(self.fileset.n_snps, n_bytes))

    def read_encoded(self, rows: np.ndarray, cols: np.ndarray, out: np.ndarray, *, sample_missing: bool
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Fast path of :func:`annpal.io.blocks.stream_genotypes` when every sample is read.

        bed-reader writes the A1 counts straight into ``out`` (a C-ordered column block of the result,
        no block buffer and no transposed copy), two in-place passes encode them (``count & 3`` maps
        missing, −127 = 0x81, to 1, the heterozygote; minus 1 gives −1/0/1), and the per-SNP statistics
        are counted from the .bed's own bytes, a quarter of the data, 32 genotypes per 64-bit popcount.
        Returns ``(snp_missing, sample_missing, snp_sum, snp_hom)`` as :func:`annpal.io.blocks.encode_block`
        (``sample_missing`` zeros unless asked for), or ``None`` when it does not apply (a subset of
        samples, or numpy without ``bitwise_count``): the caller then takes the plain path.
        """
        if len(rows) != self.n_samples or not hasattr(np, "bitwise_count"):
            return None
        self._read(rows, cols, out)
        per_sample = np.zeros(len(rows), dtype=np.int64)
        if sample_missing:
            per_sample = np.count_nonzero(out == BED_MISSING_INT8, axis=1).astype(np.int64)
        np.bitwise_and(out, 3, out=out)
        np.subtract(out, 1, out=out)
        contiguous = bool(np.all(np.diff(cols) == 1))
        raw = self._bed_bytes[cols[0]:cols[-1] + 1] if contiguous else self._bed_bytes[cols]
        snp_missing, het, hom_a1, hom_a2 = bed_code_counts(raw, self.n_samples)
        return snp_missing, per_sample, hom_a1 - hom_a2, hom_a1 + hom_a2


def bed_code_counts(rows: np.ndarray, n_samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-SNP counts of missing, heterozygous, A1/A1 and A2/A2 calls from SNP-major .bed bytes.

    ``rows`` is SNPs × ceil(n_samples / 4) bytes. Each 2-bit code (low bits first) is 0 = A1/A1,
    1 = missing, 2 = heterozygous, 3 = A2/A2; the pad bits of the last byte are excluded by counting
    A1/A1 as what remains, once they are 0: PLINK writes them as 0, but a file need not, so they are
    masked off here and a stray pad bit is never counted as a call. The bytes are zero-padded to whole
    64-bit words; three popcounts per word (all bits, low bits, low-and-high pairs) give the four counts.
    """
    w, n_bytes = rows.shape
    padded = -(-n_bytes // 8) * 8
    partial = n_samples % 4  # samples coded in the last byte when it is not full
    if padded == n_bytes and rows.flags.c_contiguous and not partial:
        words = rows
    else:
        words = np.zeros((w, padded), dtype=np.uint8)
        words[:, :n_bytes] = rows
        if partial:
            words[:, n_bytes - 1] &= np.uint8((1 << (2 * partial)) - 1)
    x = words.view(np.uint64)
    low = x & np.uint64(0x5555555555555555)
    count = lambda bits: np.bitwise_count(bits).sum(axis=1, dtype=np.int64)  # noqa: E731
    hom_a2 = count(low & (x >> np.uint64(1)))  # code 3: both bits
    missing = count(low) - hom_a2  # code 1: low bit only
    het = count(x) - count(low) - hom_a2  # code 2: high bit only
    return missing, het, n_samples - missing - het - hom_a2, hom_a2


def open_bfile(prefix: str | os.PathLike[str], *, num_threads: int | None = None) -> BedSource:
    """:func:`open_fileset` (all checks) as a block-streaming genotype source."""
    return BedSource(open_fileset(prefix), num_threads=num_threads)


def _block_reader(fileset: PlinkFileset, num_threads: int | None):
    """A function ``read(rows, cols, view)`` filling ``view`` (int8, may be a strided slice of the result)
    with A1 counts, −127 for missing.

    bed-reader's ``open_bed.read`` allocates a fresh zeroed array per call; its Rust reader
    ``read_i8`` (the function ``open_bed.read`` itself calls) writes into a given array, strided views
    included, so blocks go straight into the preallocated matrix: no per-block buffer, no copy.
    """
    from bed_reader import get_num_threads

    threads = get_num_threads(num_threads or None)
    try:
        from bed_reader import read_i8
    except ImportError:  # pragma: no cover - older/newer bed-reader without the low-level reader
        from bed_reader import open_bed

        def read(rows: np.ndarray, cols: np.ndarray, view: np.ndarray) -> None:
            with open_bed(fileset.bed, iid_count=fileset.n_samples, sid_count=fileset.n_snps, count_A1=True,
                          num_threads=threads) as bed:
                view[...] = bed.read(index=(rows, cols), dtype="int8", order="C")

        return read

    def read(rows: np.ndarray, cols: np.ndarray, view: np.ndarray) -> None:
        read_i8(str(fileset.bed), {}, iid_count=fileset.n_samples, sid_count=fileset.n_snps, is_a1_counted=True,
                iid_index=rows, sid_index=cols, val=view, num_threads=threads)

    return read


def read_genotypes(
    fileset: PlinkFileset,
    *,
    sample_index: np.ndarray | None = None,
    snp_index: np.ndarray | None = None,
    num_threads: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> tuple[np.ndarray, GenotypeBlockStats]:
    """Genotypes of a PLINK file set as a C-ordered int8 matrix (samples × SNPs) of −1/0/1, missing → 0.

    :func:`annpal.io.blocks.stream_genotypes` on a :class:`BedSource`; see there for the parameters.
    """
    return stream_genotypes(BedSource(fileset, num_threads=num_threads), sample_index=sample_index,
                            snp_index=snp_index, chunk_bytes=chunk_bytes)


def read_columns(fileset: PlinkFileset, snp_index: np.ndarray, *, sample_index: np.ndarray | None = None,
                 num_threads: int | None = None) -> np.ndarray:
    """A few SNP columns as −1/0/1 int8 (missing → 0), in the order of ``snp_index``."""
    return read_genotypes(fileset, sample_index=sample_index, snp_index=snp_index, num_threads=num_threads)[0]


class LazyGenotypes:
    """Read-on-demand view of a file set's genotypes: ``g[:, cols]`` reads just those SNP columns.

    Lets column-sampling code (the phenotype simulator) run on genome-wide data without loading the
    whole matrix. ``snp_index`` maps column ``j`` of this view to .bim row ``snp_index[j]``.
    """

    def __init__(self, fileset: PlinkFileset, snp_index: np.ndarray, *, num_threads: int | None = None):
        self.fileset = fileset
        self.snp_index = np.asarray(snp_index, dtype=np.intp)
        self.num_threads = num_threads
        self.shape = (fileset.n_samples, len(self.snp_index))
        self.dtype = np.dtype(np.int8)

    def __getitem__(self, key: tuple[slice, np.ndarray]) -> np.ndarray:
        rows, cols = key
        if rows != slice(None):
            raise IndexError("LazyGenotypes supports g[:, columns] only")
        cols = np.atleast_1d(np.asarray(cols, dtype=np.intp))
        return read_columns(self.fileset, self.snp_index[cols], num_threads=self.num_threads)


def write_plink(
    prefix: str | os.PathLike[str],
    a1_counts: np.ndarray,
    *,
    fam: pd.DataFrame,
    bim: pd.DataFrame,
) -> None:
    """Write a SNP-major PLINK 1 file set with bed-reader's ``to_bed``, each file atomically.

    Parameters
    ----------
    a1_counts
        samples × SNPs, A1 allele counts 0/1/2 (int8; −127 or NaN for missing).
    fam, bim
        Tables with :data:`FAM_COLUMNS` and :data:`BIM_COLUMNS`.
    """
    from bed_reader import to_bed

    from annpal.cli import atomic_path

    bed_path, bim_path, fam_path = bfile_paths(prefix)
    properties = {
        "fid": fam["FID"].astype(str).tolist(), "iid": fam["IID"].astype(str).tolist(),
        "father": fam["PAT"].astype(str).tolist(), "mother": fam["MAT"].astype(str).tolist(),
        "sex": fam["SEX"].astype(int).tolist(), "pheno": fam["PHENO"].astype(str).tolist(),
        "chromosome": bim["CHR"].astype(str).tolist(), "sid": bim["SNP"].astype(str).tolist(),
        "cm_position": bim["CM"].astype(float).tolist(), "bp_position": bim["BP"].astype(int).tolist(),
        "allele_1": bim["A1"].astype(str).tolist(), "allele_2": bim["A2"].astype(str).tolist(),
    }
    with contextlib.ExitStack() as stack:
        tmp_bed = stack.enter_context(atomic_path(bed_path))
        tmp_bim = stack.enter_context(atomic_path(bim_path))
        tmp_fam = stack.enter_context(atomic_path(fam_path))
        to_bed(tmp_bed, a1_counts, properties=properties, count_A1=True, fam_filepath=tmp_fam,
               bim_filepath=tmp_bim)
