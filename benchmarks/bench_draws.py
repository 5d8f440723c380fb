#!/usr/bin/env python3
"""Input-dropout draws of one paper-scale training batch: torch's serial generator against
``annpal.counter_rng.draw_batch`` (Philox4x64-10, parallel segments), in the same run.

Paper scale: 290 522 SNPs, batch 256, input dropout 0.99 (about 744 000 survivors), noise σ 0.5, over an
int8 genotype matrix of ``--rows`` training rows (1 000 and 7 300: 0.3 and 2.1 GB, so the genotype gather
is a random read of main memory). Timed, each the median of ``--repeats`` interleaved rounds, wall and
process CPU time:

* ``torch``: what ``FusedInputKernel.survivors`` did before ``counter_rng``:
  ``input_dropout.survivor_positions`` (geometric gaps from torch's mt19937 generator), one
  ``torch.normal_`` per survivor, then ``fused_input._decode_survivors`` (decode, gather, CSR); each phase
  is also timed alone;
* ``draw_batch``: the whole replacement (fresh output arrays); ``out=``: into reused output buffers (no
  page faults); ``1 thread``: the same on one numba thread; ``sigma 0``: without noise;
* ``gather floor``: a numba loop that only reads the survivors' genotypes (addresses precomputed), on the
  same threads: the memory cost any method pays for this layout.

Usage: ``python benchmarks/bench_draws.py [--threads 2] [--rows 1000 7300] [--repeats 15]``; writes
``benchmarks/results/draws.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np
import torch

from annpal import fused_input  # noqa: F401  (first: sets numba's threading layer as in training)
from annpal.counter_rng import draw_batch, warm_up
from annpal.input_dropout import survivor_positions

RESULTS = Path(__file__).resolve().parent / "results"
N_SNPS, BATCH, P, SIGMA = 290_522, 256, 0.99, 0.5


@numba.njit(parallel=True, nogil=True)
def _decode_survivors(pos: np.ndarray, batch: int, n_snps: int, x_flat: np.ndarray, rows: np.ndarray,
                      noise: np.ndarray, scale: np.float32, snp: np.ndarray, sample: np.ndarray,
                      values: np.ndarray, crow: np.ndarray) -> None:  # pragma: no cover - compiled
    """The baseline's decode step, as ``fused_input`` had it before ``counter_rng`` (commit a74f0f4)."""
    n = pos.size
    for s in numba.prange(n):
        j = np.int64(math.floor(pos[s] / batch))
        i = np.int64(pos[s] - j * batch)
        snp[s] = j
        sample[s] = i
        v = np.float32(x_flat[rows[i] * n_snps + j])
        if noise.size:
            v = v - noise[s]
        values[s] = v * scale
        prev = np.int64(math.floor(pos[s - 1] / batch)) if s > 0 else -1
        for k in range(prev + 1, j + 1):
            crow[k] = s
    last = np.int64(math.floor(pos[n - 1] / batch)) if n > 0 else -1
    for k in numba.prange(last + 1, n_snps + 1):
        crow[k] = n


@numba.njit(parallel=True, nogil=True)
def _gather(x_flat: np.ndarray, where: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    for k in numba.prange(where.size):
        out[k] = np.float32(x_flat[where[k]])


def genotypes(n_rows: int, seed: int = 0) -> np.ndarray:
    """A random int8 genotype matrix (0/1/2), flattened, filled in slices to bound temporary memory."""
    rng = np.random.default_rng(seed)
    x = np.empty(n_rows * N_SNPS, np.int8)
    step = 200 * N_SNPS
    for lo in range(0, x.size, step):
        hi = min(x.size, lo + step)
        x[lo:hi] = rng.integers(0, 3, size=hi - lo, dtype=np.int8)
    return x


def torch_phases(x: np.ndarray, rows: np.ndarray, gen: torch.Generator) -> dict[str, Callable[[], Any]]:
    """The torch path, whole and by phase (positions, noise, decode), as FusedInputKernel.survivors."""
    n_cells, scale = N_SNPS * BATCH, np.float32(1.0 / (1.0 - P))
    pos = survivor_positions(n_cells, P, gen).numpy()
    noise = torch.empty(pos.size).normal_(0.0, SIGMA, generator=gen).numpy()

    def decode(pos: np.ndarray = pos, noise: np.ndarray = noise) -> None:
        n = pos.size
        out = (np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.float32), np.empty(N_SNPS + 1, np.int64))
        _decode_survivors(pos, BATCH, N_SNPS, x, rows, noise, scale, *out)

    def whole() -> None:
        p = survivor_positions(n_cells, P, gen).numpy()
        decode(p, torch.empty(p.size).normal_(0.0, SIGMA, generator=gen).numpy())

    return {"torch (whole)": whole,
            "  positions": lambda: survivor_positions(n_cells, P, gen),
            "  noise": lambda: torch.empty(pos.size).normal_(0.0, SIGMA, generator=gen),
            "  decode + gather": decode}


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def bench_rows(n_rows: int, repeats: int, threads: int) -> dict[str, Any]:
    x = genotypes(n_rows)
    rows = np.sort(np.random.default_rng(1).choice(n_rows, BATCH, replace=False)).astype(np.int64)
    gen = torch.Generator().manual_seed(0)
    keys = iter(range(10**6))
    snp, sample, _, _ = draw_batch(0, x, N_SNPS, rows, P, SIGMA, 100.0)
    where, out = rows[sample] * N_SNPS + snp, np.empty(snp.size, np.float32)
    cases = torch_phases(x, rows, gen)
    bufs = (np.empty(800_000, np.int32), np.empty(800_000, np.int32), np.empty(800_000, np.float32),
            np.empty(N_SNPS + 1, np.int64))
    cases["draw_batch"] = lambda: draw_batch(next(keys), x, N_SNPS, rows, P, SIGMA, 1.0 / (1.0 - P))
    cases["draw_batch, out="] = lambda: draw_batch(next(keys), x, N_SNPS, rows, P, SIGMA, 1.0 / (1.0 - P), out=bufs)
    cases["draw_batch, 1 thread"] = lambda: (numba.set_num_threads(1),
                                             draw_batch(next(keys), x, N_SNPS, rows, P, SIGMA, 1.0 / (1.0 - P)))
    cases["draw_batch, sigma 0"] = lambda: draw_batch(next(keys), x, N_SNPS, rows, P, 0.0, 1.0 / (1.0 - P))
    cases["gather floor"] = lambda: _gather(x, where, out)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()  # warm
    for _ in range(repeats):
        for name, fn in cases.items():
            numba.set_num_threads(threads)
            times[name].append(timed(fn))
    res = {name: {"wall_ms": 1e3 * float(np.median([w for w, _ in t])),
                  "cpu_ms": 1e3 * float(np.median([c for _, c in t])),
                  "min_wall_ms": 1e3 * float(min(w for w, _ in t))} for name, t in times.items()}
    res["survivors"] = int(snp.size)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", type=int, nargs="+", default=[1000, 7300])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    warm_up()
    res: dict[str, Any] = {"n_snps": N_SNPS, "batch": BATCH, "p": P, "sigma": SIGMA, "threads": args.threads,
                           "threading_layer": None, "load_before": os.getloadavg()[0], "by_rows": {},
                           "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    for n_rows in args.rows:
        r = bench_rows(n_rows, args.repeats, args.threads)
        res["by_rows"][str(n_rows)] = r
        print(f"\nn_rows {n_rows} ({n_rows * N_SNPS / 1e9:.2f} GB int8), {r['survivors']} survivors, "
              f"{args.threads} threads, median of {args.repeats}")
        print(f"{'':22s} {'wall ms':>9s} {'CPU ms':>9s} {'min wall':>9s}")
        for name, t in r.items():
            if isinstance(t, dict):
                print(f"{name:22s} {t['wall_ms']:9.2f} {t['cpu_ms']:9.2f} {t['min_wall_ms']:9.2f}")
        speed = r["torch (whole)"]["wall_ms"] / r["draw_batch"]["wall_ms"]
        print(f"draw_batch is {speed:.1f}x faster than the torch path (wall)")
        r["speedup_wall"] = speed
        r["speedup_cpu"] = r["torch (whole)"]["cpu_ms"] / r["draw_batch"]["cpu_ms"]
    res["threading_layer"] = numba.threading_layer()
    res["load_after"] = os.getloadavg()[0]
    print(f"\nthreading layer {res['threading_layer']}, 1-min load {res['load_before']:.2f} → {res['load_after']:.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "draws.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
