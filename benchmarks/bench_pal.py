"""Benchmark CALL_PAL + PVALUES (annpal.ld / annpal.pal / annpal.null) against the authors' loops.

Measured in one run:

1. Authors' mock scale (their 1_mock_genome_generator.py: 1 000 samples × 20 000 SNPs, 10 models):
   PAL and rank-matched P-values (B draws) for θ = 99.99 and 99.95, with the authors' loops from
   4_get_pal.py and 7_get_amas_pvals.py (re-implemented verbatim, run once per θ as their scripts are)
   against annpal (band rows of detected SNPs, PAL for both θ, P-values for both θ sharing the draws).
   If ``--authors-draws`` < ``--draws`` the authors' P-value time is measured for that many draws and
   scaled linearly (each of their draws costs the same), and the table says so.
   Also checked: given the same draws, annpal's P-values equal the authors' exactly. Speed-ups are
   given in CPU time (``time.process_time``, all threads) and wall time: the machines this runs on are
   shared, so wall time can be inflated by other work (the load average is recorded).
2. Paper scale (10 × 290 522 MAS, 2 000 × 290 522 int8 genotypes memory-mapped, LD blocks): annpal's
   time and peak memory (``VmHWM`` of a fresh subprocess; its ``ru_maxrss`` would include the parent's,
   inherited across fork/exec, and the memory-mapped genotype pages it touched count as resident) for the full ``M × 2w`` band, for
   CALL_PAL + PVALUES (B draws) and for the null fit with the tail comparison.

Usage: python benchmarks/bench_pal.py [--draws 100 --authors-draws 100 --skip-paper]
Writes benchmarks/results/pal.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import halfnorm

from annpal.ld import banded_abs_r
from annpal.null import amas_pvalues
from annpal.pal import call_pal, detected_union

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from authors_reference import authors_pal  # noqa: E402  (4_get_pal.py, shared with the tests)

THRESHOLDS = [("99.99", 99.99), ("99.95", 99.95)]


# --- the authors' code, as in their scripts (loops unchanged) ---------------------------------------
def authors_pal_faithful(df: np.ndarray, mas_list: np.ndarray, thresh: float):
    """4_get_pal.py as they run it (no chromosome fix): AMAS and PAL."""
    _, amas, pal_amas, _ = authors_pal(df, mas_list, thresh)
    return amas, pal_amas


def authors_pvalues(df: np.ndarray, mas_main: np.ndarray, amas: np.ndarray, pal_amas: np.ndarray, thresh: float,
                    scale: float, boot_num: int, draws: np.ndarray | None = None) -> np.ndarray:
    err = []
    for boot in range(boot_num):
        mas_list = halfnorm.rvs(scale=scale, size=mas_main.shape) if draws is None else draws[boot]
        array1, array2 = mas_main, mas_list
        corrected = np.zeros_like(array2)
        for i in range(array1.shape[0]):
            sorted_indices_desc = np.argsort(-array1[i])
            sorted_array2_desc = np.sort(array2[i])[::-1]
            corrected[i, sorted_indices_desc] = sorted_array2_desc
        amas_boot, _ = _authors_boot_amas(df, corrected, thresh)
        err.append([np.sum(amas_boot > amas[pal_amas[x]]) for x in range(len(pal_amas))])
    err = np.array(err)
    return np.sum(err, axis=0) / (err.shape[0] * mas_main.shape[1])


def _authors_boot_amas(df: np.ndarray, mas_list: np.ndarray, thresh: float):
    # The body of their bootstrap loop is the PAL script again (detection, LD loop, Counter, AMAS).
    return authors_pal_faithful(df, mas_list, thresh)


# --- data -------------------------------------------------------------------------------------------
def mock_genomes(rng: np.random.Generator, n_snps: int = 20000, causal: int = 20, n_half: int = 500) -> np.ndarray:
    """1_mock_genome_generator.py with a seeded generator."""
    control_p, case_p = [0.10, 0.45, 0.45], [0.90, 0.05, 0.05]
    controls = rng.choice([-1, 0, 1], size=(n_half, n_snps), p=control_p)
    cases = np.hstack([rng.choice([-1, 0, 1], size=(n_half, causal), p=case_p),
                       rng.choice([-1, 0, 1], size=(n_half, n_snps - causal), p=control_p)])
    return np.vstack([controls, cases]).astype(np.int8)


def mock_mas(rng: np.random.Generator, n_models: int, n_snps: int, hot: np.ndarray) -> np.ndarray:
    base = rng.exponential(1.0, n_snps)
    base[hot] += 15.0
    mas = base[None, :] * rng.lognormal(0.0, 0.5, (n_models, n_snps))
    return mas / mas.sum(axis=1, keepdims=True)


def ld_genotypes(path: Path, n_samples: int, n_snps: int, *, seed: int, block: int = 10, chunk: int = 20000) -> None:
    """int8 −1/0/1 genotypes with LD blocks (copies of a block haplotype, 10 % of calls resampled)."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.int8, shape=(n_samples, n_snps))
    for start in range(0, n_snps, chunk):
        stop = min(start + chunk, n_snps)
        width = stop - start
        base = (rng.random((n_samples, -(-width // block))) < 0.3).astype(np.int8) + \
               (rng.random((n_samples, -(-width // block))) < 0.3).astype(np.int8) - 1
        g = np.repeat(base, block, axis=1)[:, :width]
        fresh = rng.random((n_samples, width)) < 0.1
        g[fresh] = rng.integers(-1, 2, size=int(fresh.sum()), dtype=np.int8)
        out[:, start:stop] = g
    out.flush()
    del out


# --- stages run in subprocesses for peak memory ------------------------------------------------------
STAGE = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np
    from annpal.ld import banded_abs_r
    from annpal.null import amas_pvalues, fit_null
    from annpal.pal import call_pal, detected_union
    stage, folder, draws = sys.argv[1], sys.argv[2], int(sys.argv[3])
    g = np.load(f"{folder}/genotypes.npy", mmap_mode="r")
    chrom = np.load(f"{folder}/chrom.npy")
    mas = np.load(f"{folder}/mas.npy")
    thresholds = [("99.99", 99.99), ("99.95", 99.95)]
    out = {}
    t0 = time.perf_counter()
    if stage == "band":
        band = banded_abs_r(g, chromosomes=chrom, window=20)
        out["band_mb"] = band.nbytes / 2**20
    elif stage == "pal_pvalues":
        rows = detected_union(mas, thetas=[t for _, t in thresholds])
        band = banded_abs_r(g, chromosomes=chrom, window=20, snps=rows)
        t1 = time.perf_counter()
        res = call_pal(mas, band=band, thresholds=thresholds)
        out["pal_s"] = time.perf_counter() - t0
        out["ld_rows"] = int(rows.size)
        out["n_pal"] = {r.label: int(r.pal.sum()) for r in res}
        t2 = time.perf_counter()
        pv = amas_pvalues(mas, thresholds=thresholds, counts=[r.counts for r in res], sigma=1.0 / mas.shape[1],
                          n_draws=draws, seed=1)
        out["pvalues_s"] = time.perf_counter() - t2
        out["n_tested"] = {p.label: int(p.index.size) for p in pv}
    elif stage == "null_fit":
        null = np.abs(np.random.default_rng(3).standard_normal(mas.shape)) / mas.shape[1]
        t0 = time.perf_counter()
        fit = fit_null(null, tail_fraction=0.1)
        out["best"] = fit.best
        out["warning"] = fit.warning
    out["work_s"] = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = ru.ru_utime + ru.ru_stime
    # ru_maxrss is inherited from the parent across fork/exec on Linux; VmHWM belongs to this process.
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            out["peak_rss_mb"] = int(line.split()[1]) / 1024
    print(json.dumps(out))
""")


def timed(fn) -> dict[str, float]:
    """Wall and CPU seconds of ``fn()``; CPU time is the fairer measure on a shared, loaded machine."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return {"wall_s": time.perf_counter() - w, "cpu_s": time.process_time() - c}


def run_stage(stage: str, folder: Path, draws: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", STAGE, stage, str(folder), str(draws)], capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=100)
    ap.add_argument("--authors-draws", type=int, default=5)
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--paper-snps", type=int, default=290522)
    ap.add_argument("--paper-samples", type=int, default=2000)
    ap.add_argument("--skip-paper", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)  # np.corrcoef on monomorphic columns in the authors' loop

    # ---- mock scale ----
    rng = np.random.default_rng(2024)
    df = mock_genomes(rng)
    n_snps = df.shape[1]
    mas = mock_mas(rng, args.models, n_snps, hot=np.arange(20))
    df_int = df.astype(int)  # as their scripts load it
    chrom = np.ones(n_snps, dtype=np.int64)
    sigma = 1.0 / n_snps
    np.random.seed(1)  # noqa: NPY002 -- the authors draw with halfnorm.rvs on the global RNG

    authors = {}

    def authors_pal_both() -> None:
        for label, theta in THRESHOLDS:
            authors[label] = authors_pal_faithful(df_int, mas, theta)

    def authors_pv_both() -> None:
        for label, theta in THRESHOLDS:
            amas, pal = authors[label]
            authors_pvalues(df_int, mas, amas, pal, theta, sigma, args.authors_draws)

    res_box: list = []

    def ours_pal() -> None:
        rows = detected_union(mas, thetas=[t for _, t in THRESHOLDS])
        band = banded_abs_r(df, chromosomes=chrom, window=20, snps=rows)
        res_box.append(call_pal(mas, band=band, thresholds=THRESHOLDS))

    def ours_pv() -> None:
        amas_pvalues(mas, thresholds=THRESHOLDS, counts=[r.counts for r in res_box[0]], sigma=sigma,
                     n_draws=args.draws, seed=1)

    a_pal = timed(authors_pal_both)
    a_pv = timed(authors_pv_both)
    scale = args.draws / args.authors_draws
    a_pv = {k: v * scale for k, v in a_pv.items()}
    o_pal = timed(ours_pal)
    o_pv = timed(ours_pv)
    res = res_box[0]

    # Same draws → same P-values (and same PAL) as the authors.
    check_draws = halfnorm.rvs(scale=sigma, size=(3, *mas.shape), random_state=np.random.default_rng(9))
    identical = True
    for (label, theta), r in zip(THRESHOLDS, res, strict=True):
        amas, pal = authors[label]
        identical &= bool(np.array_equal(r.amas, amas) and np.array_equal(np.flatnonzero(r.pal), pal))
        ref = authors_pvalues(df_int, mas, amas, pal, theta, sigma, 3, draws=check_draws)
        (ours,) = amas_pvalues(mas, thresholds=[(label, theta)], counts=[r.counts], sigma=sigma, draws=check_draws)
        identical &= bool(np.array_equal(ours.p_value, ref))

    mock = {
        "samples": df.shape[0], "snps": n_snps, "models": args.models, "draws": args.draws,
        "authors_draws_measured": args.authors_draws, "authors_pvalues_scaled": args.authors_draws != args.draws,
        "authors_pal": a_pal, "authors_pvalues": a_pv, "ours_pal": o_pal, "ours_pvalues": o_pv,
        "speedup_cpu": {"pal": a_pal["cpu_s"] / o_pal["cpu_s"], "pvalues": a_pv["cpu_s"] / o_pv["cpu_s"],
                        "total": (a_pal["cpu_s"] + a_pv["cpu_s"]) / (o_pal["cpu_s"] + o_pv["cpu_s"])},
        "speedup_wall": {"pal": a_pal["wall_s"] / o_pal["wall_s"], "pvalues": a_pv["wall_s"] / o_pv["wall_s"],
                         "total": (a_pal["wall_s"] + a_pv["wall_s"]) / (o_pal["wall_s"] + o_pv["wall_s"])},
        "load_average": list(os.getloadavg()),
        "identical_to_authors_given_same_draws": identical,
        "n_pal": {r.label: int(r.pal.sum()) for r in res},
    }
    print(f"mock scale ({df.shape[0]} samples × {n_snps} SNPs, {args.models} models, θ = 99.99 and 99.95, "
          f"B = {args.draws}); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    scaled = f"  (authors measured at B={args.authors_draws}, scaled ×{scale:g})" if mock["authors_pvalues_scaled"] else ""
    print(f"{'step':<10}{'authors cpu s':>14}{'annpal cpu s':>14}{'speed-up':>10}{'(wall)':>10}")
    for name, a, o in (("PAL", a_pal, o_pal), ("P-values", a_pv, o_pv),
                       ("total", {k: a_pal[k] + a_pv[k] for k in a_pal}, {k: o_pal[k] + o_pv[k] for k in o_pal})):
        print(f"{name:<10}{a['cpu_s']:>14.3f}{o['cpu_s']:>14.4f}{a['cpu_s'] / o['cpu_s']:>9.0f}×"
              f"{a['wall_s'] / o['wall_s']:>9.0f}×")
    print(scaled.strip())
    print(f"identical PAL/AMAS/P-values given the same draws: {identical}")

    paper = None
    if not args.skip_paper:
        with tempfile.TemporaryDirectory(prefix="bench_pal_") as tmp:
            folder = Path(tmp)
            t0 = time.perf_counter()
            ld_genotypes(folder / "genotypes.npy", args.paper_samples, args.paper_snps, seed=5)
            per = -(-args.paper_snps // 22)
            np.save(folder / "chrom.npy", np.repeat(np.arange(1, 23), per)[: args.paper_snps])
            prng = np.random.default_rng(6)
            np.save(folder / "mas.npy", mock_mas(prng, args.models, args.paper_snps,
                                                  hot=prng.choice(args.paper_snps, 30, replace=False)))
            gen_s = time.perf_counter() - t0
            band = run_stage("band", folder, args.draws)
            pal = run_stage("pal_pvalues", folder, args.draws)
            null = run_stage("null_fit", folder, args.draws)
        geno_mb = args.paper_samples * args.paper_snps / 2**20
        paper = {"samples": args.paper_samples, "snps": args.paper_snps, "models": args.models, "draws": args.draws,
                 "genotypes_mb": geno_mb, "generate_s": gen_s, "full_band": band, "pal_pvalues": pal, "null_fit": null}
        print(f"\npaper scale ({args.paper_samples} × {args.paper_snps} int8 memmap = {geno_mb:.0f} MiB, "
              f"{args.models} × {args.paper_snps} MAS, B = {args.draws})")
        print(f"{'stage':<44}{'wall s':>10}{'cpu s':>8}{'peak RSS MiB':>14}")
        print(f"{'full ±20 band (M × 40 float32)':<44}{band['work_s']:>10.2f}{band['cpu_s']:>8.1f}{band['peak_rss_mb']:>14.0f}")
        print(f"{'CALL_PAL (band rows of detected SNPs, 2 θ)':<44}{pal['pal_s']:>10.2f}{'':>8}{'':>14}")
        print(f"{'PVALUES draws (2 θ, shared draws)':<44}{pal['pvalues_s']:>10.2f}{pal['cpu_s']:>8.1f}{pal['peak_rss_mb']:>14.0f}")
        print(f"{'null fit + tail comparison (2.9 M values)':<44}{null['work_s']:>10.2f}{null['cpu_s']:>8.1f}{null['peak_rss_mb']:>14.0f}")

    out = {"machine": {"python": platform.python_version(), "numpy": np.__version__, "cpu": platform.processor(),
                       "cores": os.cpu_count()},
           "mock": mock, "paper": paper}
    results = REPO / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "pal.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
