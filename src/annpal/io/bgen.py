"""BGEN files (layout 2, i.e. BGEN v1.2 and v1.3, with an optional Oxford ``.sample`` file) through ``cbgen``.

Hard calls from genotype probabilities. For each sample and variant the most probable of the three
diploid genotypes is called when its probability is at least ``min_prob`` (default
:data:`DEFAULT_MIN_PROB`); below that, or where the BGEN marks the sample missing, the call is missing
(→ 0 in the encoded matrix, counted like any missing call). ``min_prob`` must exceed 0.5, so a passing
genotype is always unique. This is the "most likely genotype above a threshold" rule of qctool and of
many imputation QC pipelines; dosages are not rounded, so a sample split 0.5/0.5 between two genotypes
is missing rather than forced to one of them.

The counted allele A1 is the *first* allele of each variant and A2 the second: the order
``plink2 --export bgen-1.2`` writes by default (ALT first), so a .bed converted to BGEN gives exactly
the matrix of the original. For files that list the reference allele first (UK Biobank's imputed
data, ``ref-first``), A1 is the reference allele and the −1/0/1 values are the negative of the
ALT-counting VCF/PGEN encoding; the method is unaffected (the encoding is symmetric in the two homozygotes).

Refused, each with the fix: layouts other than 2 (``cbgen`` cannot index layout 1, BGEN v1.1), phased probabilities or ploidy other than 2
(convert to PGEN with plink2), multi-allelic variants, sample files that disagree with the IDs stored
in the BGEN.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from annpal.errors import InputError
from annpal.genome import normalise_chromosomes
from annpal.io.blocks import VARIANT_COLUMNS, GenotypeSource

#: Default minimum probability of the called genotype.
DEFAULT_MIN_PROB = 0.9
#: int8 value written for a missing call.
BGEN_MISSING_INT8 = -127
#: Layouts cbgen reads (header flags bits 2-5); it fails on layout 1 (BGEN v1.1).
SUPPORTED_LAYOUTS = (2,)
_COMPRESSION = {0: "none", 1: "zlib", 2: "zstd"}


def read_bgen_header(path: Path) -> dict[str, int | bool]:
    """Variant and sample counts, layout, compression and whether sample IDs are stored.

    Raises
    ------
    InputError
        Not a BGEN file, or a layout / compression annpal does not read.
    """
    fix = (f"rewrite it with plink2 --bgen {path} ref-unknown [--sample FILE.sample] --export bgen-1.2 bits=8 "
           f"--out NEWPREFIX")
    with open(path, "rb") as fh:
        head = fh.read(24)
        if len(head) < 24:
            raise InputError(f"{path}: too short for a BGEN file; check the file or {fix}")
        offset, header_len, n_variants, n_samples, magic = struct.unpack("<IIII4s", head[:20])
        if magic not in (b"bgen", b"\0\0\0\0") or header_len < 20 or header_len > offset:
            raise InputError(f"{path}: not a BGEN file (bad header); check the file or {fix}")
        fh.seek(4 + header_len - 4)
        (flags,) = struct.unpack("<I", fh.read(4))
    layout, compression = (flags >> 2) & 0xF, flags & 0x3
    if layout not in SUPPORTED_LAYOUTS or compression not in _COMPRESSION:
        what = f"layout {layout}" if layout not in SUPPORTED_LAYOUTS else f"compression code {compression}"
        raise InputError(f"{path}: unsupported BGEN {what} (annpal reads layout 2, i.e. BGEN v1.2/v1.3); {fix}")
    return {"n_variants": n_variants, "n_samples": n_samples, "layout": layout,
            "compression": _COMPRESSION[compression], "has_sample_ids": bool(flags >> 31)}


def read_sample_file(path: Path) -> pd.DataFrame:
    """An Oxford ``.sample`` file as ``FID IID`` (``ID_1``, ``ID_2``): header line, type line, then samples."""
    try:
        frame = pd.read_csv(path, sep=r"\s+", dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be parsed as an Oxford .sample file ({' '.join(str(exc).split())[:100]}); "
                         f"it needs a header line ID_1 ID_2 ..., a type line 0 0 ..., then one line per sample") from None
    if list(frame.columns[:2]) != ["ID_1", "ID_2"] or frame.empty:
        raise InputError(f"{path}: not an Oxford .sample file (first header fields {' '.join(frame.columns[:2])}, "
                         f"expected ID_1 ID_2); give the .sample file that belongs to the BGEN")
    frame = frame.iloc[1:]  # the type line (0 0 0 D ...)
    return pd.DataFrame({"FID": frame["ID_1"].to_numpy(), "IID": frame["ID_2"].to_numpy()})


def _samples(path: Path, sample: Path | None, header: dict, bgen) -> tuple[pd.DataFrame, bool]:
    stored = [s.decode() for s in bgen.read_samples()] if header["has_sample_ids"] else None
    if sample is None:
        if stored is None:
            raise InputError(f"{path}: stores no sample IDs; give its Oxford sample file with --sample FILE.sample")
        return pd.DataFrame({"FID": stored, "IID": stored}), False
    table = read_sample_file(sample)
    if len(table) != header["n_samples"]:
        raise InputError(f"{sample}: {len(table)} samples but {path.name} holds {header['n_samples']}; "
                         f"give the .sample file written with this BGEN")
    if stored is not None:
        bad = np.flatnonzero((np.asarray(stored) != table["IID"].to_numpy())
                             & (np.asarray(stored) != table["FID"].to_numpy()))
        if len(bad):
            i = int(bad[0])
            raise InputError(
                f"{sample}: sample IDs disagree with those stored in {path.name} ({len(bad)} rows; first: row "
                f"{i + 1} is {table['FID'].iloc[i]} {table['IID'].iloc[i]}, the BGEN has {stored[i]}); give the "
                f".sample file written with this BGEN, or none to use the stored IDs")
    return table, True


def _variants(path: Path, bgen, metafile: Path) -> tuple[pd.DataFrame, np.ndarray]:
    import cbgen

    bgen.create_metafile(metafile)
    parts = []
    with cbgen.bgen_metafile(metafile) as mf:
        for k in range(mf.npartitions):
            v = mf.read_partition(k).variants
            parts.append(pd.DataFrame({
                "rsid": v.rsid.astype(str), "id": v.id.astype(str), "chrom": v.chromosome.astype(str),
                "pos": v.position.astype(np.int64), "nalleles": v.nalleles.astype(np.int64),
                "alleles": v.allele_ids.astype(str), "offset": v.offset.astype(np.uint64),
            }))
    table = pd.concat(parts, ignore_index=True)
    snp = table["rsid"].where(table["rsid"] != "", table["id"]).replace("", ".")
    multi = (table["nalleles"] != 2).to_numpy()
    if multi.any():
        i = int(np.flatnonzero(multi)[0])
        raise InputError(
            f"{path}: {int(multi.sum())} variants without exactly 2 alleles (first: {snp.iloc[i]} with "
            f"{table['nalleles'].iloc[i]}); annpal reads biallelic variants only, drop them with plink2 --bgen "
            f"{path} ref-unknown --max-alleles 2 --export bgen-1.2 bits=8 --out NEWPREFIX")
    alleles = table["alleles"].str.split(",", n=1, expand=True)
    variants = pd.DataFrame({"CHR": normalise_chromosomes(table["chrom"]), "SNP": snp.to_numpy(), "CM": "0",
                             "BP": table["pos"].to_numpy(), "A1": alleles[0], "A2": alleles[1]})
    return variants[VARIANT_COLUMNS], table["offset"].to_numpy()


def hard_calls(probabilities: np.ndarray, *, min_prob: float) -> np.ndarray:
    """A1 (first-allele) counts from ``samples × 3`` unphased diploid probabilities, −127 where missing.

    Genotype order is (A1A1, A1A2, A2A2), so the count is ``2 − argmax``; a call needs probability
    ``≥ min_prob``; NaN rows (missing in the BGEN) are missing.
    """
    best = np.argmax(probabilities, axis=1)
    confident = np.take_along_axis(probabilities, best[:, None], axis=1)[:, 0] >= min_prob
    return np.where(confident, 2 - best, BGEN_MISSING_INT8).astype(np.int8)


class BgenSource(GenotypeSource):
    """A BGEN file as a :class:`~annpal.io.blocks.GenotypeSource` (first allele counted, hard calls)."""

    format = "bgen"
    missing_code = BGEN_MISSING_INT8

    def __init__(self, path: Path, sample: Path | None, *, min_prob: float = DEFAULT_MIN_PROB):
        import cbgen

        if not 0.5 < min_prob <= 1:
            raise ValueError(f"min_prob {min_prob}: must be in (0.5, 1]")
        header = read_bgen_header(path)
        self.path = self.variant_file = path
        self.min_prob = min_prob
        self._tmp = Path(tempfile.mkdtemp(prefix="annpal_bgen_"))
        try:
            self._bgen = cbgen.bgen_file(path)
            self.samples, self.has_family_ids = _samples(path, sample, header, self._bgen)
            self.samples["PHENO"] = None
            self.sample_file = sample if sample is not None else path
            self.variants, self._offsets = _variants(path, self._bgen, self._tmp / "bgen.metafile")
        except RuntimeError as exc:  # cbgen's only error type: an unreadable or corrupt file
            self.close()
            raise InputError(f"{path}: cannot be read ({' '.join(str(exc).split())[:100]}); check the file, e.g. "
                             f"with plink2 --bgen {path} ref-unknown --make-pgen --out NEWPREFIX") from None
        except BaseException:
            self.close()
            raise

    def read_block(self, rows: np.ndarray, cols: np.ndarray, out: np.ndarray) -> None:
        everyone = len(rows) == self.n_samples
        for j, col in enumerate(cols):
            try:
                genotype = self._bgen.read_genotype(int(self._offsets[col]), precision=32)
            except RuntimeError as exc:
                raise InputError(f"{self.path}: variant {self.variants['SNP'].iloc[col]} cannot be read ({exc}); "
                                 f"check the file, e.g. with plink2 --bgen {self.path} ref-unknown --make-pgen "
                                 f"--out NEWPREFIX") from None
            probs = genotype.probability
            if genotype.phased or probs.shape[1] != 3:
                kind = "phased" if genotype.phased else f"{probs.shape[1]} probabilities per sample"
                raise InputError(
                    f"{self.path}: variant {self.variants['SNP'].iloc[col]} is {kind}; annpal reads unphased "
                    f"diploid biallelic BGEN only, convert with plink2 --bgen {self.path} ref-unknown --make-pgen "
                    f"--out NEWPREFIX and use --pfile NEWPREFIX")
            out[:, j] = hard_calls(probs if everyone else probs[rows], min_prob=self.min_prob)

    def close(self) -> None:
        bgen = getattr(self, "_bgen", None)
        if bgen is not None:
            bgen.close()
        shutil.rmtree(self._tmp, ignore_errors=True)


def open_bgen(path: str | os.PathLike[str], *, sample: str | os.PathLike[str] | None = None,
              min_prob: float = DEFAULT_MIN_PROB) -> BgenSource:
    """Check a BGEN file (and its ``.sample``) and open it for block reads.

    Raises
    ------
    InputError
        A file is missing, the header is not BGEN or has an unsupported layout, sample IDs are absent or
        disagree with the .sample file, or a variant is multi-allelic.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: not found; --bgen takes a .bgen file (with --sample FILE.sample when the "
                         f"BGEN stores no sample IDs)")
    if sample is not None and not Path(sample).is_file():
        raise InputError(f"{sample}: not found; --sample takes the Oxford .sample file of {path.name}")
    return BgenSource(path, Path(sample) if sample is not None else None, min_prob=min_prob)


__all__ = ["DEFAULT_MIN_PROB", "BgenSource", "hard_calls", "open_bgen", "read_bgen_header", "read_sample_file"]
