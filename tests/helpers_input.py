"""Small PLINK file sets for the input tests (test_plink, test_dataset, test_simulate, test_bin_input)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
from bed_reader import to_bed


def write_fileset(prefix: Path, a1_counts: np.ndarray, *, chrom=None, bp=None, ids=None, pheno=None,
                  fid=None, iid=None) -> Path:
    """Write ``prefix.bed/.bim/.fam`` from A1 counts (samples × SNPs; NaN = missing) and return prefix."""
    n, m = a1_counts.shape
    chrom = ["1"] * m if chrom is None else [str(c) for c in chrom]
    bp = list(range(1000, 1000 + 100 * m, 100)) if bp is None else list(bp)
    ids = [f"rs{k + 1}" for k in range(m)] if ids is None else list(ids)
    pheno = ["-9"] * n if pheno is None else [str(p) for p in pheno]
    fid = [f"F{i}" for i in range(n)] if fid is None else list(fid)
    iid = [f"I{i}" for i in range(n)] if iid is None else list(iid)
    props = {"fid": fid, "iid": iid, "father": ["0"] * n, "mother": ["0"] * n, "sex": [1] * n, "pheno": pheno,
             "chromosome": chrom, "sid": ids, "cm_position": [0.0] * m, "bp_position": bp,
             "allele_1": ["A"] * m, "allele_2": ["G"] * m}
    prefix.parent.mkdir(parents=True, exist_ok=True)
    to_bed(f"{prefix}.bed", np.asarray(a1_counts, dtype=np.float32), properties=props)
    return prefix


def random_counts(n: int, m: int, *, seed: int = 0, missing_rate: float = 0.0) -> np.ndarray:
    """Random A1 counts 0/1/2 as float32 with NaN for missing calls."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.1, 0.5, size=m)
    counts = rng.binomial(2, p, size=(n, m)).astype(np.float32)
    if missing_rate:
        counts[rng.random((n, m)) < missing_rate] = np.nan
    return counts


def case_control(n: int, *, n_cases: int, seed: int = 0) -> np.ndarray:
    """PLINK 1/2 phenotype with exactly ``n_cases`` cases in random positions."""
    rng = np.random.default_rng(seed)
    pheno = np.ones(n, dtype=int)
    pheno[rng.choice(n, n_cases, replace=False)] = 2
    return pheno


def write_pheno(path: Path, fid, iid, values, *, column: str = "trait", header: bool = True) -> Path:
    frame = pd.DataFrame({"FID": list(fid), "IID": list(iid), column: list(values)})
    frame.to_csv(path, sep="\t", index=False, header=header)
    return path


#: plink2 converts the PLINK 1 test data to PGEN, BGEN and VCF (Debian package plink2, installed by
#: scripts/install-system-deps.sh); tests that need it skip without it.
PLINK2 = shutil.which("plink2")
#: plink2 --export/--make-pgen arguments and the annpal-prepare arguments of each converted format.
PLINK2_FORMATS = {
    "pfile": (["--make-pgen"], lambda out: ["--pfile", str(out)]),
    "bgen": (["--export", "bgen-1.2", "bits=8", "id-paste=iid"], lambda out: ["--bgen", f"{out}.bgen"]),
    "bgen_sample": (["--export", "bgen-1.2", "bits=8", "id-paste=iid"],
                    lambda out: ["--bgen", f"{out}.bgen", "--sample", f"{out}.sample"]),
    "vcf": (["--export", "vcf", "bgz", "id-paste=iid"], lambda out: ["--vcf", f"{out}.vcf.gz"]),
}


def plink2_convert(bfile: Path, out: Path, fmt: str, *extra: str) -> list[str]:
    """Convert a PLINK 1 file set with plink2 and return the annpal-prepare genotype arguments."""
    export, args = PLINK2_FORMATS[fmt]
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [PLINK2, "--bfile", str(bfile), *export, *extra, "--out", str(out), "--threads", "1", "--silent"]
    subprocess.run(cmd, check=True, capture_output=True)
    return args(out)
