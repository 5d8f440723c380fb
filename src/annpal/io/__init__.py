"""Reading and writing genotype files (PLINK 1 binary file sets)."""

from annpal.io.plink import (
    LazyGenotypes,
    PlinkFileset,
    bfile_paths,
    open_fileset,
    read_bim,
    read_columns,
    read_fam,
    read_genotypes,
    write_plink,
)

__all__ = [
    "LazyGenotypes", "PlinkFileset", "bfile_paths", "open_fileset", "read_bim", "read_columns", "read_fam",
    "read_genotypes", "write_plink",
]
