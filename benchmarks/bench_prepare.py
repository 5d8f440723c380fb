"""Benchmark PREPARE (bin/annpal-prepare) on a generated 5 000 × 100 000 PLINK file set.

Ratios measured in the same run (prepare_no_write: the library's read + encode + QC + split, without
writing the 500 MB genotypes.npy and the tables, to separate disk speed from the reading itself):
  wall time  PREPARE (read, encode, QC, split, write genotypes.npy and tables)  /  a bare bed-reader
             ``open_bed(...).read(dtype="int8")`` of the same file           (goal <= 2)
  peak RSS   PREPARE's peak resident memory  /  size of the int8 samples × SNPs matrix  (goal <= 2.5)
  CPU time   user + system seconds of the whole process, PREPARE / bare read: the work done, which other
             jobs on a shared machine disturb far less than the wall time
Each measurement runs in its own Python subprocess (peak memory from ``resource.getrusage``'s
``ru_maxrss``), after a warm-up read so both see the file in the page cache. Work time excludes the
interpreter start and imports; the whole-process time is reported beside it.

Usage: python benchmarks/bench_prepare.py [--samples 5000 --snps 100000 --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

BARE = """
import json, resource, sys, time
from bed_reader import open_bed
t0 = time.perf_counter()
with open_bed(sys.argv[1], count_A1=True) as bed:
    g = bed.read(dtype="int8")
work = time.perf_counter() - t0
print(json.dumps({"work_s": work, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
                  "shape": list(g.shape)}))
"""

PREPARE = """
import json, os, resource, sys, time
sys.argv = ["annpal-prepare"] + sys.argv[1:]
sys.path.insert(0, os.path.dirname(BIN_PATH))  # bin/_annpal_env, as when the script runs from bin/
import importlib.machinery, importlib.util
loader = importlib.machinery.SourceFileLoader("annpal_prepare", BIN_PATH)
spec = importlib.util.spec_from_loader(loader.name, loader)
module = importlib.util.module_from_spec(spec)
loader.exec_module(module)
t0 = time.perf_counter()
try:
    module.main(sys.argv[1:], standalone_mode=False)
except SystemExit as exc:
    if exc.code:
        raise
work = time.perf_counter() - t0
print(json.dumps({"work_s": work, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2])}))
"""


LIBRARY = """
import json, resource, sys, time
from annpal.dataset import prepare_dataset
t0 = time.perf_counter()
ds = prepare_dataset(sys.argv[1])
work = time.perf_counter() - t0
print(json.dumps({"work_s": work, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2])}))
"""


def generate(prefix: Path, n_samples: int, n_snps: int, *, seed: int = 0) -> None:
    """Random genotypes (MAF uniform in 0.05-0.5, 0.1 % missing) and a 1/2 phenotype with 20 % cases."""
    from bed_reader import to_bed

    rng = np.random.default_rng(seed)
    maf = rng.uniform(0.05, 0.5, n_snps).astype(np.float32)
    val = np.empty((n_samples, n_snps), dtype=np.int8)
    step = 5000
    for start in range(0, n_snps, step):  # in blocks, to keep the generator's own memory small
        stop = min(start + step, n_snps)
        u = rng.random((n_samples, stop - start), dtype=np.float32)
        p = maf[start:stop]
        block = (u < p * p).astype(np.int8) + (u < 1 - (1 - p) ** 2)  # HWE: P(2)=p², P(>=1)=1-(1-p)²
        block[rng.random(block.shape, dtype=np.float32) < 0.001] = -127
        val[:, start:stop] = block
    pheno = np.where(rng.random(n_samples) < 0.2, "2", "1")
    chrom = np.repeat(np.arange(1, 23), int(np.ceil(n_snps / 22)))[:n_snps]
    bp = np.arange(n_snps) * 1000 + 1
    props = {"pheno": pheno.tolist(), "chromosome": chrom.astype(str).tolist(), "bp_position": bp.tolist(),
             "sid": [f"rs{k + 1}" for k in range(n_snps)]}
    to_bed(f"{prefix}.bed", val, properties=props, count_A1=True)


def measure(code: str, args: list[str]) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = total
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--snps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "prepare.json"))
    parser.add_argument("--generate-only", metavar="PREFIX", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_only:
        generate(Path(args.generate_only), args.samples, args.snps)
        return

    tmp = Path(tempfile.mkdtemp(prefix="bench_prepare_"))
    try:
        prefix = tmp / "bench"
        t0 = time.perf_counter()
        # In a child process: Linux carries a process's peak RSS across fork+exec into ru_maxrss of
        # its children, so the generator's memory must never live in this (parent) process.
        subprocess.run([sys.executable, __file__, "--generate-only", str(prefix), "--samples", str(args.samples),
                        "--snps", str(args.snps)], check=True)
        gen_s = time.perf_counter() - t0
        matrix_bytes = args.samples * args.snps
        bare_code = BARE
        prep_code = f"BIN_PATH = {str(REPO / 'bin' / 'annpal-prepare')!r}\n" + PREPARE
        measure(bare_code, [f"{prefix}.bed"])  # warm the page cache
        bare, prep, lib = [], [], []
        for r in range(args.repeats):
            bare.append(measure(bare_code, [f"{prefix}.bed"]))
            lib.append(measure(LIBRARY, [str(prefix)]))
            out_dir = tmp / f"prepared{r}"
            prep.append(measure(prep_code, ["--bfile", str(prefix), "--out-dir", str(out_dir)]))
            shutil.rmtree(out_dir)
        med = statistics.median
        rows = {
            name: {"work_s": med(x["work_s"] for x in runs), "process_s": med(x["process_s"] for x in runs),
                   "cpu_s": med(x["cpu_s"] for x in runs), "peak_rss_mb": med(x["maxrss_kb"] for x in runs) / 1024}
            for name, runs in (("bare_read", bare), ("prepare_no_write", lib), ("prepare", prep))
        }
        ratios = {
            "prepare_over_bare_wall_work": rows["prepare"]["work_s"] / rows["bare_read"]["work_s"],
            "prepare_over_bare_wall_process": rows["prepare"]["process_s"] / rows["bare_read"]["process_s"],
            "prepare_no_write_over_bare_wall_work": rows["prepare_no_write"]["work_s"] / rows["bare_read"]["work_s"],
            "prepare_over_bare_cpu": rows["prepare"]["cpu_s"] / rows["bare_read"]["cpu_s"],
            "prepare_peak_over_int8_matrix": rows["prepare"]["peak_rss_mb"] * 2**20 / matrix_bytes,
            "bare_peak_over_int8_matrix": rows["bare_read"]["peak_rss_mb"] * 2**20 / matrix_bytes,
        }
        result = {
            "benchmark": "prepare", "n_samples": args.samples, "n_snps": args.snps, "repeats": args.repeats,
            "int8_matrix_mb": matrix_bytes / 2**20, "generate_s": gen_s, "rows": rows, "ratios": ratios,
            "goals": {"wall": 2.0, "memory": 2.5}, "cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0], "machine": platform.platform(),
            "python": platform.python_version(),
        }
        print(f"PREPARE benchmark: {args.samples} samples x {args.snps} SNPs "
              f"(int8 matrix {matrix_bytes / 2**20:.0f} MiB), median of {args.repeats}, {os.cpu_count()} CPUs")
        print(f"{'':18}{'work s':>9}{'process s':>11}{'CPU s':>8}{'peak MiB':>10}")
        for name, row in rows.items():
            print(f"{name:18}{row['work_s']:9.2f}{row['process_s']:11.2f}{row['cpu_s']:8.2f}{row['peak_rss_mb']:10.0f}")
        print(f"wall ratio PREPARE / bare read: {ratios['prepare_over_bare_wall_work']:.2f} (work), "
              f"{ratios['prepare_over_bare_wall_process']:.2f} (whole process); goal <= 2")
        print(f"wall ratio read+QC without writing / bare read: {ratios['prepare_no_write_over_bare_wall_work']:.2f}")
        print(f"CPU-time ratio PREPARE / bare read (whole process, user + system): {ratios['prepare_over_bare_cpu']:.2f}")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall ratios need a quiet machine)")
        print(f"peak memory / int8 matrix: PREPARE {ratios['prepare_peak_over_int8_matrix']:.2f} "
              f"(bare read {ratios['bare_peak_over_int8_matrix']:.2f}); goal <= 2.5")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
