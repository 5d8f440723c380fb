"""Attribution benchmarks at the authors' mock scale (20 000 SNPs, hidden 20/2, ~200 case samples).

1. Permutation importance: our exact fast path against the per-feature loop, both float64, and against
   the authors' ``3b_get_pm_mas.py`` loop as written (float32, ``(n, 1, M)`` inputs). The loops take
   minutes over all 20 000 features, so they run on the first ``--loop-features`` features and their
   time is extrapolated linearly to all features (each feature costs one identical forward pass); the
   table says so. Max |difference| is measured on the features both computed.
2. Integrated gradients throughput (samples × steps / s): our batched call (batches of 64, captum
   ``internal_batch_size`` from the memory budget, capped at 1 000 rows on CPU; and all samples in one
   batch) against the authors' single call (``internal_batch_size=1000``,
   ``return_convergence_delta=True``) in the same run.

Run: ``.venv/bin/python benchmarks/bench_attribution.py`` → table on stdout,
``benchmarks/results/attribution.json``.

``--paper-scale``: every method at the paper's genome-wide size (290 522 SNPs, H1 290, H2 29, 240 case
samples, ``--threads 2``), each variant in its own child process through ``mas_for_model`` (the path
``annpal-attribute`` takes): wall, user and sys time (getrusage), achieved GFLOP/s against a plain matmul
of the same shapes timed in the same child, peak RSS, CPU seconds (user + sys). Each child first reuses freed
memory as annpal-attribute does (``--no-heap-reuse`` leaves glibc's default, to see what that saves). captum IG runs on 16 cases and SmoothGrad on 64, and
the PM code from before issue 20 on the first 20 000 SNPs; their times are scaled linearly to 240 cases /
all SNPs (each case and each SNP costs the same), which the table notes. ``--check`` adds fast vs captum
IG on the same 16 cases and old vs new PM on the same SNPs. Writes
``benchmarks/results/attribution_paper_scale.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from captum.attr import IntegratedGradients

from annpal.attribution import (
    CPU_MAX_IG_ROWS,
    draw_replacement_genotypes,
    fast_integrated_gradients,
    ig_internal_batch_size,
    integrated_gradients,
    keep_freed_memory,
    mas_for_model,
    permutation_importance,
    permutation_importance_reference,
)
from annpal.model import AnnClassifier, ModelConfig
from annpal.provenance import versions

RESULTS = Path(__file__).resolve().parent / "results" / "attribution.json"


def _mock_genotypes(n: int, m: int, seed: int) -> np.ndarray:
    """Like the authors' 1_mock_genome_generator.py cases: 20 causal columns, the rest control-like."""
    rng = np.random.default_rng(seed)
    g = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(n, m), p=[0.10, 0.45, 0.45])
    g[:, :20] = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(n, 20), p=[0.90, 0.05, 0.05])
    return g


def _authors_pm_loop(model: AnnClassifier, g: np.ndarray, r: np.ndarray, n_features: int) -> np.ndarray:
    """3b_get_pm_mas.py's inner loop (float32, (n, 1, M) inputs), kept per sample for comparison."""
    x_test = torch.reshape(torch.from_numpy(g.astype(int)), (g.shape[0], 1, g.shape[1])).float()
    with torch.no_grad():
        y_hat_test = model(x_test)
    temp1 = y_hat_test.flatten().detach().cpu().numpy()
    out = np.empty((g.shape[0], n_features))
    for i in range(n_features):
        x_test_temp = x_test.clone()
        x_test_temp[:, :, i] = torch.tensor(r).view(r.shape[0], 1)
        with torch.no_grad():
            y_hat_test1 = model(x_test_temp)
        out[:, i] = np.abs(temp1 - y_hat_test1.flatten().detach().cpu().numpy())
    return out


def _timed(fn, repeats: int = 1):
    best, value = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def bench_pm(model: AnnClassifier, g: np.ndarray, *, loop_features: int, memory_gb: float) -> dict:
    n, m = g.shape
    r = draw_replacement_genotypes(n, seed=1)
    t_fast, fast = _timed(lambda: permutation_importance(model, g, r, memory_bytes=int(memory_gb * 2**30)),
                          repeats=2)
    cols = np.arange(loop_features)
    t_ref, ref = _timed(lambda: permutation_importance_reference(model, g, r, features=cols))
    t_auth, auth = _timed(lambda: _authors_pm_loop(model, g, r, loop_features))
    scale = m / loop_features
    return {
        "n_samples": n, "n_snps": m, "loop_features_timed": loop_features,
        "loop_time_extrapolated": True,
        "fast_s": t_fast,
        "reference_f64_s_subset": t_ref, "reference_f64_s_all_extrapolated": t_ref * scale,
        "authors_f32_s_subset": t_auth, "authors_f32_s_all_extrapolated": t_auth * scale,
        "speedup_vs_reference_f64": t_ref * scale / t_fast,
        "speedup_vs_authors_loop": t_auth * scale / t_fast,
        "max_abs_diff_fast_vs_reference_f64": float(np.abs(fast[:, :loop_features] - ref).max()),
        "max_abs_diff_fast_vs_authors_f32": float(np.abs(fast[:, :loop_features] - auth).max()),
        "max_score": float(fast.max()),
    }


def bench_ig(model: AnnClassifier, g: np.ndarray, *, n_steps: int, batch_size: int, memory_gb: float
             ) -> dict:
    n, m = g.shape

    def authors():
        inpt = torch.reshape(torch.tensor(g.astype(int)), (n, 1, m)).float()
        baseline = torch.zeros(n, 1, m)
        attributions, _ = IntegratedGradients(model).attribute(
            inpt, baseline, target=None, return_convergence_delta=True, n_steps=n_steps,
            internal_batch_size=1000)
        return np.abs(attributions.view(n, m).detach().numpy())

    def ours(bs: int):
        out = np.empty((n, m), dtype=np.float32)
        for s in range(0, n, bs):
            batch = g[s:s + bs]
            ibs = ig_internal_batch_size(n_snps=m, batch_samples=batch.shape[0], n_steps=n_steps,
                                         memory_bytes=int(memory_gb * 2**30), max_rows=CPU_MAX_IG_ROWS)
            out[s:s + bs] = integrated_gradients(model, batch, n_steps=n_steps, internal_batch_size=ibs)
        return out

    # Interleaved best-of-3: the machine may be shared, so alternate the variants to expose them to
    # the same load.
    t_auth = t_ours = t_all = float("inf")
    for _ in range(3):
        t, a = _timed(authors)
        t_auth = min(t_auth, t)
        t, o = _timed(lambda: ours(batch_size))
        t_ours = min(t_ours, t)
        t, o_all = _timed(lambda: ours(n))
        t_all = min(t_all, t)
    work = n * n_steps
    return {
        "n_samples": n, "n_snps": m, "n_steps": n_steps, "batch_size": batch_size,
        "internal_batch_size_ours": ig_internal_batch_size(
            n_snps=m, batch_samples=batch_size, n_steps=n_steps, memory_bytes=int(memory_gb * 2**30),
            max_rows=CPU_MAX_IG_ROWS),
        "internal_batch_size_ours_all_samples": ig_internal_batch_size(
            n_snps=m, batch_samples=n, n_steps=n_steps, memory_bytes=int(memory_gb * 2**30),
            max_rows=CPU_MAX_IG_ROWS),
        "authors_s": t_auth, "ours_s": t_ours, "ours_all_samples_s": t_all,
        "authors_samples_steps_per_s": work / t_auth, "ours_samples_steps_per_s": work / t_ours,
        "ours_all_samples_samples_steps_per_s": work / t_all,
        "ratio_ours_over_authors": t_auth / t_ours,
        "ratio_ours_all_samples_over_authors": t_auth / t_all,
        "max_rel_diff": float(max(np.abs(o - a).max(), np.abs(o_all - a).max()) / np.abs(a).max()),
    }


# --- paper scale (--paper-scale) ------------------------------------------------------------------
#
# One child process per variant (a fresh process, so each gets its own peak-memory figure); each child
# builds the same seeded paper-scale model and cases, times one variant with getrusage (wall, user and
# sys over all threads) and prints one JSON line.

PAPER_SNPS, PAPER_CASES = 290_522, 240
RESULTS_PAPER = Path(__file__).resolve().parent / "results" / "attribution_paper_scale.json"


def _pm_before(net: AnnClassifier, g: np.ndarray, r: np.ndarray, *, memory_bytes: int, features: int
               ) -> np.ndarray:
    """The PM fast path as it was before issue 20 (commit e45d2d2), restricted to the first ``features``
    columns: fresh (samples × block × H1) tensors per block, sized from the whole memory budget."""
    h1, h2 = net.first_linear.out_features, net.layers[4].out_features
    per_feature = (3 * h1 + 3 * h2 + 6) * 8
    weight_t = net.first_linear.weight.detach().t()
    out = np.empty((g.shape[0], features))
    with torch.no_grad():
        x = torch.from_numpy(g).double()
        rr = torch.as_tensor(r, dtype=torch.float64)
        z = net.first_linear(x)
        f0 = net.forward_from_preactivation(z)[:, 0]
        block = int(min(max(memory_bytes // (per_feature * g.shape[0]), 1), g.shape[1]))
        for a in range(0, features, block):
            b = min(features, a + block)
            z_blk = torch.addcmul(z[:, None, :], (rr[:, None] - x[:, a:b])[:, :, None], weight_t[None, a:b, :])
            f = net.forward_from_preactivation(z_blk)[..., 0]
            out[:, a:b] = (f - f0[:, None]).abs_().cpu().numpy()
    return out


def _usage() -> tuple[float, float, float]:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), u.ru_utime, u.ru_stime


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _paper_inputs(n_cases: int) -> tuple[AnnClassifier, np.ndarray]:
    torch.manual_seed(0)
    model = AnnClassifier(ModelConfig(n_snps=PAPER_SNPS)).eval()  # H1 290, H2 29 (paper's divisors)
    g = np.random.default_rng(0).integers(-1, 2, size=(n_cases, PAPER_SNPS)).astype(np.int8)
    return model, g


def _matmul_gflops(a_shape: tuple[int, int], b_shape: tuple[int, int], dtype: torch.dtype, reps: int
                   ) -> tuple[float, float]:
    """GFLOP per wall second and per CPU second (all threads) of a plain torch.mm of the given shapes,
    best of 3 rounds of ``reps``. Per CPU second is what a shared machine still measures fairly."""
    a, b = torch.randn(*a_shape, dtype=dtype), torch.randn(*b_shape, dtype=dtype)
    best_wall = best_cpu = float("inf")
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            torch.mm(a, b)
        best_wall, best_cpu = min(best_wall, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    flop = 2 * a_shape[0] * a_shape[1] * b_shape[1] * reps / 1e9
    return flop / best_wall, flop / best_cpu


#: name -> (method, impl, cases timed, FLOP per case (× M·H1 unless noted), matmul shapes and dtype).
#: FLOP models: fast forms 4·M·H1 per case (W1·x and the product back); captum saliency and DeepLIFT
#: about 6·M·H1 (forward, input gradient, and DeepLIFT's reference half / captum's weight gradients);
#: captum IG 6·K·M·H1; SmoothGrad 4·S·M·H1; PM 2·M·(H1 + H1·H2 + H2) per case in float64.
def _variants(n_steps: int, sg_samples: int) -> dict[str, dict]:
    h1, h2, m = 290, 29, PAPER_SNPS
    dense32 = {"mm": ((64, m), (m, h1)), "dtype": torch.float32, "reps": 3}
    return {
        "sm_fast": {"method": "sm", "impl": "fast", "cases": PAPER_CASES, "flop": 4 * m * h1, **dense32},
        "sm_captum": {"method": "sm", "impl": "captum", "cases": PAPER_CASES, "flop": 6 * m * h1, **dense32},
        "ig_fast": {"method": "ig", "impl": "fast", "cases": PAPER_CASES, "flop": 4 * m * h1, **dense32},
        "ig_captum": {"method": "ig", "impl": "captum", "cases": 16, "flop": 6 * n_steps * m * h1, **dense32},
        "dl_fast": {"method": "dl", "impl": "fast", "cases": PAPER_CASES, "flop": 4 * m * h1, **dense32},
        "dl_captum": {"method": "dl", "impl": "captum", "cases": PAPER_CASES, "flop": 6 * m * h1, **dense32},
        "sg": {"method": "sg", "impl": "auto", "cases": 64, "flop": 4 * sg_samples * m * h1, **dense32},
        "pm": {"method": "pm", "impl": "auto", "cases": PAPER_CASES, "flop": 2 * m * (h1 + h1 * h2 + h2),
               "mm": ((1633, h1), (h1, h2)), "dtype": torch.float64, "reps": 300},
        "pm_before": {"method": "pm", "impl": "before", "cases": PAPER_CASES, "features": 20_000,
                      "flop": 2 * m * (h1 + h1 * h2 + h2), "mm": ((1633, h1), (h1, h2)),
                      "dtype": torch.float64, "reps": 300},
    }


def _child(name: str, args: argparse.Namespace) -> dict:
    """Time one variant in this (fresh) process; returns its record."""
    torch.set_num_threads(args.threads)
    spec = _variants(args.n_steps, args.sg_samples)[name]
    # As annpal-attribute does; not for the code from before issue 20, which ran without it.
    heap_reuse = keep_freed_memory() if spec["impl"] != "before" and not args.no_heap_reuse else False
    model, g = _paper_inputs(PAPER_CASES)
    rows = np.arange(spec["cases"])
    rss_before = _peak_mib()
    memory = int(args.memory_gb * 2**30)
    t0, u0, s0 = _usage()
    extra: dict = {}
    if spec["impl"] == "before":
        net = copy.deepcopy(model).double()
        r = draw_replacement_genotypes(PAPER_CASES, seed=1)
        outs = [_pm_before(net, g[s:s + 64], r[s:s + 64], memory_bytes=memory, features=spec["features"])
                for s in range(0, PAPER_CASES, 64)]
        scale = PAPER_SNPS / spec["features"]
        extra["max_abs_diff_vs_new"] = float(np.abs(np.vstack(outs) - np.vstack([
            permutation_importance(net, g[s:s + 64], r[s:s + 64], memory_bytes=memory)[:, :spec["features"]]
            for s in range(0, PAPER_CASES, 64)])).max()) if args.check else None
    else:
        mas_for_model(model, g, rows=rows, method=spec["method"], impl=spec["impl"], n_steps=args.n_steps,
                      batch_size=64, memory_bytes=memory, pm_seed=1, sg_samples=args.sg_samples,
                      sg_sigma=0.3, sg_seed=1)
        scale = PAPER_CASES / spec["cases"]
    t1, u1, s1 = _usage()
    if name == "ig_captum" and args.check:  # fast and captum IG on the same model and cases
        fast = fast_integrated_gradients(model, g[:16], n_steps=args.n_steps)
        ref = integrated_gradients(model, g[:16], n_steps=args.n_steps, internal_batch_size=1000)
        extra["max_rel_diff_fast_vs_captum"] = float(np.abs(fast - ref).max() / np.abs(ref).max())
    wall, user, sys_ = (t1 - t0) * scale, (u1 - u0) * scale, (s1 - s0) * scale
    flop = spec["flop"] * PAPER_CASES
    mm, mm_cpu = _matmul_gflops(*spec["mm"], spec["dtype"], spec["reps"])
    return {"variant": name, "method": spec["method"], "impl": spec["impl"], "cases_timed": spec["cases"],
            "features_timed": spec.get("features", PAPER_SNPS), "scaled_by": scale, "wall_s": wall,
            "user_s": user, "sys_s": sys_, "sys_pct_of_wall": 100 * sys_ / wall, "gflop": flop / 1e9,
            "gflops_achieved": flop / wall / 1e9, "matmul_gflops_same_shapes": mm,
            "pct_of_matmul": 100 * flop / wall / 1e9 / mm, "gflop_per_cpu_s": flop / (user + sys_) / 1e9,
            "matmul_gflop_per_cpu_s": mm_cpu, "pct_of_matmul_per_cpu_s": 100 * flop / (user + sys_) / 1e9 / mm_cpu,
            "peak_rss_mib": _peak_mib(),
            "rss_before_mib": rss_before, "threads": args.threads, "heap_reuse": heap_reuse,
            "cpu_s": user + sys_, **extra}


def paper_scale(args: argparse.Namespace) -> None:
    """Run every variant in its own child process and write the table and JSON."""
    names = list(_variants(args.n_steps, args.sg_samples)) if not args.only else args.only.split(",")
    rows = []
    for name in names:
        cmd = [sys.executable, __file__, "--child", name, "--threads", str(args.threads),
               "--n-steps", str(args.n_steps), "--sg-samples", str(args.sg_samples),
               "--memory-gb", str(args.memory_gb)] + (["--check"] if args.check else []) + \
            (["--no-heap-reuse"] if args.no_heap_reuse else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(_paper_row(rows[-1]), flush=True)
    by = {r["variant"]: r for r in rows}
    summary = {}
    if "ig_fast" in by and "ig_captum" in by:
        summary["ig_fast_speedup_vs_captum"] = by["ig_captum"]["wall_s"] / by["ig_fast"]["wall_s"]
    if "ig_fast" in by and "ig_captum" in by:
        summary["ig_fast_cpu_ratio_vs_captum"] = by["ig_captum"]["cpu_s"] / by["ig_fast"]["cpu_s"]
    if "pm" in by and "pm_before" in by:
        summary["pm_speedup_vs_before"] = by["pm_before"]["wall_s"] / by["pm"]["wall_s"]
        summary["pm_cpu_ratio_vs_before"] = by["pm_before"]["cpu_s"] / by["pm"]["cpu_s"]
    load = os.getloadavg()[0]
    record = {"rows": rows, "summary": summary, "n_snps": PAPER_SNPS, "n_cases": PAPER_CASES, "h1": 290,
              "h2": 29, "n_steps": args.n_steps, "sg_samples": args.sg_samples, "threads": args.threads,
              "load_average_1min_at_end": load, "versions": versions()}
    print(json.dumps(summary), f"load average at the end {load:.1f}")
    args.out = RESULTS_PAPER if args.out == RESULTS else args.out
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


def _paper_row(r: dict) -> str:
    note = f"timed on {r['cases_timed']} cases × {r['features_timed']} SNPs, ×{r['scaled_by']:.2f}" \
        if r["scaled_by"] != 1 else ""
    return (f"| {r['variant']} | {r['wall_s']:.1f} | {r['user_s']:.1f} | {r['sys_s']:.1f} | "
            f"{r['sys_pct_of_wall']:.0f} % | {100 * r['sys_s'] / r['cpu_s']:.0f} % | {r['gflops_achieved']:.1f} | "
            f"{r['gflop_per_cpu_s']:.1f} | {r['matmul_gflop_per_cpu_s']:.1f} | {r['pct_of_matmul_per_cpu_s']:.0f} % | "
            f"{r['peak_rss_mib']:.0f} | {note} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-samples", type=int, default=200)
    ap.add_argument("--n-snps", type=int, default=20_000)
    ap.add_argument("--loop-features", type=int, default=200,
                    help="features the per-feature loops run on (time extrapolated to all)")
    ap.add_argument("--n-steps", type=int, default=100)
    ap.add_argument("--memory-gb", type=float, default=2.0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--paper-scale", action="store_true",
                    help="every method at paper scale (290 522 SNPs, H1 290, H2 29, 240 cases) instead")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (--paper-scale)")
    ap.add_argument("--sg-samples", type=int, default=20, help="SmoothGrad noisy copies (--paper-scale)")
    ap.add_argument("--only", default="", help="comma-separated variants (--paper-scale)")
    ap.add_argument("--check", action="store_true",
                    help="also compare fast vs captum IG and new vs old PM at paper scale (--paper-scale)")
    ap.add_argument("--no-heap-reuse", action="store_true",
                    help="leave glibc's allocator as it is (--paper-scale; annpal-attribute reuses freed memory)")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args)))
        return
    if args.paper_scale:
        print("| variant | wall s | user s | sys s | sys/wall | sys/CPU | GFLOP/s (wall) | GFLOP per CPU-s | "
              "matmul GFLOP per CPU-s | of matmul | peak MiB | note |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        paper_scale(args)
        return

    torch.manual_seed(0)
    # The authors' mock network: H1 = 20 000 // 1000 = 20, H2 = 20 000 // 10 000 = 2.
    model = AnnClassifier(ModelConfig(n_snps=args.n_snps, input_dropout=0.5)).eval()
    g = _mock_genotypes(args.n_samples, args.n_snps, seed=0)

    pm = bench_pm(model, g, loop_features=args.loop_features, memory_gb=args.memory_gb)
    ig = bench_ig(model, g, n_steps=args.n_steps, batch_size=64, memory_gb=args.memory_gb)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the end: {load:.1f} (timings on a shared machine are noisy; ratios are "
          "measured in the same run)")
    print(f"PM, {pm['n_samples']} samples × {pm['n_snps']} SNPs, H1/H2 = "
          f"{model.first_linear.out_features}/{model.layers[4].out_features}, {torch.get_num_threads()} threads")
    print(f"  loops timed on {pm['loop_features_timed']} features, extrapolated linearly to all")
    print(f"  {'variant':<34}{'seconds (all SNPs)':>20}{'speed-up of fast':>18}")
    print(f"  {'fast path (float64)':<34}{pm['fast_s']:>20.2f}{'1.0':>18}")
    print(f"  {'reference loop (float64)':<34}{pm['reference_f64_s_all_extrapolated']:>20.1f}"
          f"{pm['speedup_vs_reference_f64']:>17.0f}×")
    print(f"  {'authors loop (float32)':<34}{pm['authors_f32_s_all_extrapolated']:>20.1f}"
          f"{pm['speedup_vs_authors_loop']:>17.0f}×")
    print(f"  max |fast − reference| = {pm['max_abs_diff_fast_vs_reference_f64']:.2e}, "
          f"max |fast − authors f32| = {pm['max_abs_diff_fast_vs_authors_f32']:.2e} "
          f"(max score {pm['max_score']:.2e})")
    print(f"IG, {ig['n_samples']} samples × {ig['n_steps']} steps × {ig['n_snps']} SNPs")
    print(f"  {'variant':<34}{'seconds':>10}{'samples×steps/s':>18}")
    print(f"  {'authors (internal batch 1000)':<34}{ig['authors_s']:>10.2f}"
          f"{ig['authors_samples_steps_per_s']:>18.0f}")
    print(f"  {'ours (batch 64, internal ' + str(ig['internal_batch_size_ours']) + ')':<34}"
          f"{ig['ours_s']:>10.2f}{ig['ours_samples_steps_per_s']:>18.0f}")
    print(f"  {'ours (batch ' + str(ig['n_samples']) + ', internal ' + str(ig['internal_batch_size_ours_all_samples']) + ')':<34}"
          f"{ig['ours_all_samples_s']:>10.2f}{ig['ours_all_samples_samples_steps_per_s']:>18.0f}")
    print(f"  ours / authors throughput = {ig['ratio_ours_over_authors']:.2f}× (batch 64), "
          f"{ig['ratio_ours_all_samples_over_authors']:.2f}× (all samples in one batch), "
          f"max relative difference {ig['max_rel_diff']:.1e}")

    record = {"pm": pm, "ig": ig, "threads": torch.get_num_threads(), "machine": platform.processor()
              or platform.machine(), "device": "cpu",
              "load_average_1min_at_end": load, "versions": versions()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
