"""PLINK 2 file sets (``.pgen/.pvar/.psam``) through ``pgenlib``, plink2's own reader.

The counted allele A1 is the ALT allele and A2 the REF allele: the convention plink2 itself follows
when it writes a .bed (``--make-bed`` puts ALT in column 5 of the .bim), so a .bed converted with
``plink2 --make-pgen`` gives exactly the matrix of the original. Hard calls are read as plink2 stored
them (for a .pgen made from dosages, plink2's ``--hard-call-threshold`` already applied). Multi-allelic
variants (a comma in ALT) are refused: ``pgenlib`` would count only the first ALT allele.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from annpal.errors import InputError
from annpal.genome import normalise_chromosomes
from annpal.io.blocks import VARIANT_COLUMNS, GenotypeSource, fileset_paths

#: pgenlib's int8 value for a missing hard call.
PGEN_MISSING_INT8 = -9


def pfile_paths(prefix: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """``(PREFIX.pgen, PREFIX.pvar, PREFIX.psam)``; a trailing extension on ``prefix`` is ignored."""
    return fileset_paths(prefix, (".pgen", ".pvar", ".psam"))


def _header_and_body(path: Path) -> tuple[list[str] | None, int]:
    """The ``#``-header's column names (``None`` when there is none) and the number of lines before the body."""
    skip = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("##"):
                skip += 1
                continue
            if line.startswith("#"):
                return line[1:].split(), skip + 1
            return None, skip
    return None, skip


def _read_table(path: Path, skip: int, names: list[str], what: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, sep=r"\s+", header=None, skiprows=skip, dtype=str, keep_default_na=False,
                            na_filter=False, names=names, engine="c")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: cannot be parsed as a {what} ({' '.join(str(exc).split())[:100]}); "
                         f"regenerate it with plink2 --make-pgen") from None
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame(columns=names)
    if frame.empty:
        raise InputError(f"{path}: no rows; regenerate the file set with plink2 --make-pgen")
    return frame


def read_psam(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, bool]:
    """Samples of a .psam (or a headerless .fam) as ``FID IID PHENO`` strings.

    Returns the table and whether it has family IDs (a ``#FID`` column, or .fam layout). ``PHENO`` is
    the ``PHENO1`` column when there is one, else ``None`` (the phenotype then has to come from --pheno).
    """
    path = Path(path)
    header, skip = _header_and_body(path)
    if header is None:  # .fam layout
        names = ["FID", "IID", "PAT", "MAT", "SEX", "PHENO1"]
    else:
        names = header
        if "IID" not in names:
            raise InputError(f"{path}: header has no IID column (found {' '.join(names[:6])}); "
                             f"regenerate the .psam with plink2 --make-pgen")
    frame = _read_table(path, skip, names, ".psam")
    has_fid = "FID" in frame.columns
    samples = pd.DataFrame({"FID": frame["FID"] if has_fid else frame["IID"], "IID": frame["IID"]})
    samples["PHENO"] = frame["PHENO1"] if "PHENO1" in frame.columns else None
    return samples, has_fid


def read_pvar(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Variants of a .pvar (or a headerless .bim) as :data:`~annpal.io.blocks.VARIANT_COLUMNS`.

    A1 = ALT (the counted allele), A2 = REF; ``CM`` is 0 when absent.

    Raises
    ------
    InputError
        Missing required columns, a non-integer position, or multi-allelic variants.
    """
    path = Path(path)
    header, skip = _header_and_body(path)
    if header is None:  # .bim layout: CHR ID CM POS ALT REF
        header = ["CHROM", "ID", "CM", "POS", "ALT", "REF"]
    missing = [c for c in ("CHROM", "POS", "ID", "REF", "ALT") if c not in header]
    if missing:
        raise InputError(f"{path}: header lacks {', '.join(missing)}; a .pvar needs #CHROM POS ID REF ALT")
    frame = _read_table(path, skip, header, ".pvar")
    bp = pd.to_numeric(frame["POS"], errors="coerce")
    if bp.isna().any() or (bp % 1 != 0).any():
        line = skip + int(np.flatnonzero((bp.isna() | (bp % 1 != 0)).to_numpy())[0]) + 1
        raise InputError(f"{path}: line {line} has a non-integer POS; fix or regenerate the .pvar")
    check_biallelic(frame["ALT"], frame["ID"], path=path,
                    fix=f"drop them with plink2 --pfile {pfile_paths(path)[0].with_suffix('')} --max-alleles 2 "
                        f"--make-pgen --out NEWPREFIX, or split them first (bcftools norm -m -)")
    cm = frame["CM"] if "CM" in frame.columns else "0"
    return pd.DataFrame({
        "CHR": normalise_chromosomes(frame["CHROM"]), "SNP": frame["ID"], "CM": cm, "BP": bp.astype(np.int64),
        "A1": frame["ALT"], "A2": frame["REF"],
    })[VARIANT_COLUMNS]


def check_biallelic(alt: pd.Series, ids: pd.Series, *, path: Path, fix: str) -> None:
    """Refuse multi-allelic variants (a comma in ALT), naming the first and how to remove them."""
    multi = alt.str.contains(",", regex=False).to_numpy()
    if multi.any():
        first = int(np.flatnonzero(multi)[0])
        raise InputError(
            f"{path}: {int(multi.sum())} multi-allelic variants (first: {ids.iloc[first]} with ALT "
            f"{alt.iloc[first]}); annpal reads biallelic variants only, {fix}"
        )


class PgenSource(GenotypeSource):
    """A PLINK 2 file set as a :class:`~annpal.io.blocks.GenotypeSource` (ALT counted, −9 missing)."""

    format = "pfile"
    missing_code = PGEN_MISSING_INT8

    def __init__(self, pgen: Path, pvar: Path, psam: Path):
        import pgenlib

        self.path, self.sample_file, self.variant_file = pgen, psam, pvar
        self.samples, self.has_family_ids = read_psam(psam)
        self.variants = read_pvar(pvar)
        try:
            self._reader = pgenlib.PgenReader(bytes(pgen))
        except RuntimeError as exc:
            message = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise InputError(f"{pgen}: cannot be read ({' '.join(message.split())[:120]}); regenerate the file set "
                             f"with plink2 --make-pgen") from None
        counts = {"samples": (self._reader.get_raw_sample_ct(), len(self.samples), psam.name),
                  "variants": (self._reader.get_variant_ct(), len(self.variants), pvar.name)}
        for what, (in_pgen, in_table, table) in counts.items():
            if in_pgen != in_table:
                self._reader.close()
                raise InputError(f"{pgen}: {in_pgen} {what} but {table} lists {in_table}; the files do not belong "
                                 f"together, regenerate them with plink2 --make-pgen")
        self._subset: np.ndarray | None = None

    def read_block(self, rows: np.ndarray, cols: np.ndarray, out: np.ndarray) -> None:
        if self._subset is None or not np.array_equal(self._subset, rows):
            self._subset = rows.copy()
            everyone = len(rows) == self.n_samples
            self._reader.change_sample_subset(None if everyone else rows.astype(np.uint32))
        variant_major = out.T  # C-contiguous (SNPs × samples): pgenlib's own layout
        if np.all(np.diff(cols) == 1):  # one run of variants
            self._reader.read_range(int(cols[0]), int(cols[-1]) + 1, variant_major)
        else:
            self._reader.read_list(cols.astype(np.uint32), variant_major)

    def close(self) -> None:
        self._reader.close()


def open_pfile(prefix: str | os.PathLike[str]) -> PgenSource:
    """Check a PLINK 2 file set and open it for block reads.

    Raises
    ------
    InputError
        A file is missing (a compressed ``.pvar.zst`` is named with the fix), a table cannot be parsed,
        the three files disagree, or a variant is multi-allelic.
    """
    pgen, pvar, psam = pfile_paths(prefix)
    for path in (pgen, pvar, psam):
        if not path.is_file():
            zst = Path(f"{path}.zst")
            hint = (f"; {zst.name} is compressed, decompress it with zstd -d {zst}" if zst.is_file() else
                    "; --pfile takes the prefix of a PLINK 2 .pgen/.pvar/.psam file set (e.g. --pfile "
                    "data/cohort for data/cohort.pgen, .pvar and .psam)")
            raise InputError(f"{path}: not found{hint}")
    return PgenSource(pgen, pvar, psam)


__all__ = ["PgenSource", "check_biallelic", "open_pfile", "pfile_paths", "read_psam", "read_pvar"]
