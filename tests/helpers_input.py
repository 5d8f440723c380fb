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


def write_bgen(path: Path, probs: list[np.ndarray], *, alleles: list[list[str]] | None = None,
               samples: list[str] | None = None, phased: bool = False, layout: int = 2) -> Path:
    """A minimal zlib-compressed BGEN v1.2 file, written by hand (plink2 cannot write every case we test).

    ``probs[v]`` is samples × values for variant ``v``: 3 genotype probabilities for an unphased
    biallelic diploid (A1A1, A1A2, A2A2), 6 for a triallelic one, or, when ``phased``, 4 haplotype
    probabilities (h1: A1, A2; h2: A1, A2). A NaN row marks the sample missing. 8-bit probabilities,
    rounded down (a set of stored values must not sum above 1).
    """
    import struct
    import zlib

    n = probs[0].shape[0]
    alleles = alleles or [["A", "G"]] * len(probs)
    sample_block = b""
    if samples is not None:
        ids = b"".join(struct.pack("<H", len(s)) + s.encode() for s in samples)
        sample_block = struct.pack("<II", 8 + len(ids), n) + ids
    flags = (layout << 2) | 1 | ((1 << 31) if samples is not None else 0)  # 1: zlib
    header = struct.pack("<III4sI", 20, len(probs), n, b"bgen", flags)
    body = [struct.pack("<I", len(header) + len(sample_block)), header, sample_block]
    for v, p in enumerate(probs):
        name = f"rs{v + 1}".encode()
        variant = struct.pack("<H", len(name)) + name + struct.pack("<H", len(name)) + name + struct.pack("<H1s", 1, b"1")
        variant += struct.pack("<IH", 1000 * (v + 1), len(alleles[v]))
        variant += b"".join(struct.pack("<I", len(a)) + a.encode() for a in alleles[v])
        missing = np.isnan(p).any(axis=1)
        ploidy = np.where(missing, 0x82, 2).astype(np.uint8)  # bit 7: missing
        stored = np.nan_to_num(p[:, [0, 2]] if phased else p[:, :-1])  # the last value of each set is implied
        data = struct.pack("<IHBB", n, len(alleles[v]), 2, 2) + ploidy.tobytes() + struct.pack("<BB", int(phased), 8)
        data += np.floor(stored * 255 + 1e-6).astype(np.uint8).tobytes()
        packed = zlib.compress(data)
        body += [variant, struct.pack("<II", len(packed) + 4, len(data)), packed]
    path.write_bytes(b"".join(body))
    return path


def write_pfile(prefix: Path, a1_counts: np.ndarray, *, fid, iid, pheno=None, alt: list[str] | None = None) -> Path:
    """``prefix.pgen/.pvar/.psam`` with pgenlib's writer: ALT counts = ``a1_counts`` (NaN missing)."""
    import pgenlib

    n, m = a1_counts.shape
    writer = pgenlib.PgenWriter(bytes(Path(f"{prefix}.pgen")), n, m, False)
    for j in range(m):
        writer.append_biallelic(np.nan_to_num(a1_counts[:, j], nan=-9).astype(np.int8))
    writer.close()
    alt = alt or ["A"] * m
    Path(f"{prefix}.pvar").write_text("#CHROM\tPOS\tID\tREF\tALT\n" + "".join(
        f"1\t{1000 + 100 * j}\trs{j + 1}\tG\t{alt[j]}\n" for j in range(m)))
    pheno = ["-9"] * n if pheno is None else [str(p) for p in pheno]
    Path(f"{prefix}.psam").write_text("#FID\tIID\tSEX\tPHENO1\n" + "".join(
        f"{f}\t{i}\t1\t{p}\n" for f, i, p in zip(fid, iid, pheno, strict=True)))
    return prefix


def write_vcf(path: Path, a1_counts: np.ndarray, *, samples, alt: list[str] | None = None) -> Path:
    """A plain-text VCF with GT = ALT counts ``a1_counts`` (NaN → ``./.``)."""
    n, m = a1_counts.shape
    alt = alt or ["A"] * m
    gt = {0.0: "0/0", 1.0: "0/1", 2.0: "1/1"}
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=1>",
             '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
             "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples])]
    for j in range(m):
        calls = [gt.get(float(c), "./.") for c in a1_counts[:, j]]
        lines.append("\t".join(["1", str(1000 + 100 * j), f"rs{j + 1}", "G", alt[j], ".", ".", ".", "GT", *calls]))
    path.write_text("\n".join(lines) + "\n")
    return path
