"""VCF / BCF files (plain, bgzipped or BCF) through ``cyvcf2``, reading the ``GT`` field.

The counted allele A1 is ALT and A2 is REF, as in plink2's import, so a .bed exported with
``plink2 --export vcf`` gives exactly the matrix of the original. A call with any missing allele
(``./.``, ``.``, and the half-call ``./1``) is missing; a haploid call counts as homozygous (``1`` → two
ALT copies), as PLINK stores it. Phasing is ignored. Multi-allelic records (several ALT alleles) are
refused with the fix; a record without ALT (``.``) is kept and is monomorphic.

VCF sample IDs are single IDs: they are taken as IIDs and a phenotype file is matched on its IID column.

A VCF is read sequentially, twice: once for the variant table (without parsing the samples) and once
for the genotypes, in file order (:func:`annpal.io.blocks.stream_genotypes` asks for ascending variants).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from annpal.errors import InputError
from annpal.genome import normalise_chromosomes
from annpal.io.blocks import VARIANT_COLUMNS, GenotypeSource
from annpal.io.pgen import check_biallelic

#: int8 value written for a missing call.
VCF_MISSING_INT8 = -127


def _open(path: Path, samples: list[str] | None = None):
    import cyvcf2

    try:
        return cyvcf2.VCF(str(path), samples=samples, lazy=True, threads=1)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot be opened as VCF/BCF ({' '.join(str(exc).split())[:100]}); "
                         f"check the file (bcftools view -h {path})") from None


def read_vcf_variants(path: Path) -> pd.DataFrame:
    """The variant table (:data:`~annpal.io.blocks.VARIANT_COLUMNS`, A1 = ALT) from one pass without samples."""
    chrom, pos, ids, ref, alt = [], [], [], [], []
    reader = _open(path, samples=[])
    try:
        for record in reader:
            chrom.append(record.CHROM)
            pos.append(record.POS)
            ids.append(record.ID or ".")
            ref.append(record.REF)
            alt.append(",".join(record.ALT) or ".")
    except Exception as exc:  # cyvcf2 raises plain Exceptions for malformed records
        raise InputError(f"{path}: malformed record after {len(pos)} variants ({' '.join(str(exc).split())[:100]}); "
                         f"check it with bcftools view {path}") from None
    finally:
        reader.close()
    if not pos:
        raise InputError(f"{path}: no variant records; give a VCF with genotypes")
    table = pd.DataFrame({"CHR": normalise_chromosomes(pd.Series(chrom, dtype=str)), "SNP": ids, "CM": "0",
                          "BP": np.asarray(pos, dtype=np.int64), "A1": alt, "A2": ref})
    check_biallelic(table["A1"], table["SNP"], path=path,
                    fix=f"split them with bcftools norm -m - {path} or drop them with bcftools view -M 2")
    return table[VARIANT_COLUMNS]


def alt_counts(genotype: np.ndarray) -> np.ndarray:
    """ALT counts (int8, :data:`VCF_MISSING_INT8` where missing) from cyvcf2's ``genotype.array()``.

    ``genotype`` is samples × (ploidy + 1): allele indices (−1 missing, −2 the end of a shorter
    genotype, i.e. haploid) and a last phasing column.
    """
    first = genotype[:, 0]
    second = genotype[:, 1] if genotype.shape[1] > 2 else first
    second = np.where(second == -2, first, second)  # haploid: homozygous
    count = (first == 1).astype(np.int8) + (second == 1)
    return np.where((first < 0) | (second < 0), VCF_MISSING_INT8, count).astype(np.int8)


class VcfSource(GenotypeSource):
    """A VCF as a :class:`~annpal.io.blocks.GenotypeSource` (ALT counted from GT)."""

    format = "vcf"
    has_family_ids = False
    missing_code = VCF_MISSING_INT8

    def __init__(self, path: Path):
        self.path = self.sample_file = self.variant_file = path
        reader = _open(path)
        try:
            names = list(reader.samples)
            has_gt = reader.contains("GT")
        finally:
            reader.close()
        if not names:
            raise InputError(f"{path}: no sample columns; annpal needs individual genotypes (GT)")
        if not has_gt:
            raise InputError(f"{path}: no FORMAT/GT field in the header; annpal reads hard calls from GT")
        dup = pd.Series(names).duplicated()
        if dup.any():
            raise InputError(f"{path}: duplicated sample IDs ({', '.join(pd.unique(np.asarray(names)[dup])[:3])}); "
                             f"rename them, e.g. bcftools reheader -s new_names.txt")
        self.samples = pd.DataFrame({"FID": names, "IID": names, "PHENO": None})
        self.variants = read_vcf_variants(path)
        self._reader = None
        self._rows: np.ndarray | None = None
        self._next = 0  # index of the record the open reader yields next
        self._last, self._last_col = np.empty(0, dtype=np.int8), -1  # the last record read, as ALT counts

    def _restart(self, rows: np.ndarray) -> None:
        if self._reader is not None:
            self._reader.close()
        subset = None if len(rows) == self.n_samples else self.samples["IID"].iloc[rows].tolist()
        self._reader = _open(self.path, samples=subset)
        self._rows, self._next, self._last_col = rows.copy(), 0, -1

    def read_block(self, rows: np.ndarray, cols: np.ndarray, out: np.ndarray) -> None:
        if (self._rows is None or not np.array_equal(self._rows, rows)
                or (cols[0] < self._next and cols[0] != self._last_col)):
            self._restart(rows)
        for j, col in enumerate(cols):
            if col != self._last_col:  # a repeated column reuses the record just read
                while self._next <= col:
                    record = next(self._reader)
                    self._next += 1
                self._last, self._last_col = alt_counts(record.genotype.array()), col
            out[:, j] = self._last

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def open_vcf(path: str | os.PathLike[str]) -> VcfSource:
    """Check a VCF/BCF and open it for block reads.

    Raises
    ------
    InputError
        Missing or unreadable file, no samples or no GT, duplicated sample IDs, multi-allelic records.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: not found; --vcf takes a VCF or BCF file (plain or bgzipped)")
    return VcfSource(path)


__all__ = ["VcfSource", "alt_counts", "open_vcf", "read_vcf_variants"]
