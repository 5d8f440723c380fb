"""Reading and writing genotype files: PLINK 1 (bed), PLINK 2 (pgen), BGEN and VCF.

Every reader is a :class:`~annpal.io.blocks.GenotypeSource` streamed in SNP blocks by
:func:`~annpal.io.blocks.stream_genotypes`; :func:`open_genotypes` opens whichever one was given.
"""

from __future__ import annotations

import os

from annpal.io.blocks import GenotypeSource, stream_genotypes
from annpal.io.plink import (
    LazyGenotypes,
    PlinkFileset,
    bfile_paths,
    open_bfile,
    open_fileset,
    read_bim,
    read_columns,
    read_fam,
    read_genotypes,
    write_plink,
)

#: The genotype input options, in the order they are listed in messages.
GENOTYPE_FORMATS = ("bfile", "pfile", "bgen", "vcf")


def open_genotypes(
    *,
    bfile: str | os.PathLike[str] | None = None,
    pfile: str | os.PathLike[str] | None = None,
    bgen: str | os.PathLike[str] | None = None,
    sample: str | os.PathLike[str] | None = None,
    vcf: str | os.PathLike[str] | None = None,
    bgen_min_prob: float | None = None,
    num_threads: int | None = None,
) -> GenotypeSource:
    """Open the one genotype input given (PLINK 1 prefix, PLINK 2 prefix, BGEN file or VCF file).

    Parameters
    ----------
    bfile, pfile, bgen, vcf
        Exactly one of them.
    sample
        Oxford .sample file of ``bgen`` (optional when the BGEN stores sample IDs).
    bgen_min_prob
        Minimum probability of a BGEN hard call (default :data:`annpal.io.bgen.DEFAULT_MIN_PROB`).
    num_threads
        Reader threads where the reader uses them (bed-reader).

    Raises
    ------
    ValueError
        None or several inputs given, or ``sample`` without ``bgen``.
    annpal.errors.InputError
        The input fails its format's checks.
    """
    given = [name for name, value in zip(GENOTYPE_FORMATS, (bfile, pfile, bgen, vcf), strict=True) if value is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one genotype input (--{', --'.join(GENOTYPE_FORMATS)}); got "
                         f"{', '.join('--' + g for g in given) or 'none'}")
    if sample is not None and bgen is None:
        raise ValueError("--sample belongs to --bgen; drop it or give --bgen")
    if bfile is not None:
        return open_bfile(bfile, num_threads=num_threads)
    if pfile is not None:
        from annpal.io.pgen import open_pfile

        return open_pfile(pfile)
    if bgen is not None:
        from annpal.io.bgen import DEFAULT_MIN_PROB, open_bgen

        return open_bgen(bgen, sample=sample, min_prob=DEFAULT_MIN_PROB if bgen_min_prob is None else bgen_min_prob)
    from annpal.io.vcf import open_vcf

    return open_vcf(vcf)


__all__ = [
    "GENOTYPE_FORMATS", "GenotypeSource", "LazyGenotypes", "PlinkFileset", "bfile_paths", "open_bfile",
    "open_fileset", "open_genotypes", "read_bim", "read_columns", "read_fam", "read_genotypes",
    "stream_genotypes", "write_plink",
]
