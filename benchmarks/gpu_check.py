#!/usr/bin/env python3
"""GPU check: paper-scale training epochs (dense vs sparse input-dropout kernel, fp32 and bf16), fast IG and
PM of one paper-scale model, peak device memory; one table. Run through ``benchmarks/gpu_check.sh``.

Paper scale: 290 522 SNPs, H1 290, H2 29, batch 256, input dropout 0.99, 7 000 training samples (about
27 steps per epoch) + 300 validation samples, random int8 genotypes. Each training row is the second of
two epochs (the first warms up kernels and caches). Attribution runs on ``--attr-rows`` of the model's
case rows with the fast IG (hidden-space quadrature, ``annpal.attribution.firstlayer``), captum's IG on a
few rows for the ratio, and PM's exact fast path.

``--small`` runs the same steps at a toy size on the CPU (seconds), so the script is tested without a
GPU (tests/test_gpu_check.py). On the CPU ``bf16`` is ignored by training (it says so in the log) and the
memory column is the process's peak RSS instead of the device's peak allocation.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import _paper_dataset  # noqa: E402

from annpal.attribution import mas_for_model  # noqa: E402
from annpal.model import ModelConfig  # noqa: E402
from annpal.train import TrainConfig, train_model  # noqa: E402

PAPER = {"snps": 290_522, "h1": 290, "h2": 29, "train": 7_000, "val": 300, "attr_rows": 512, "captum_rows": 16}
SMALL = {"snps": 3_000, "h1": 30, "h2": 3, "train": 600, "val": 100, "attr_rows": 64, "captum_rows": 4}


class Meter:
    """Wall time and peak memory of one phase: device allocation on CUDA, process RSS on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> Meter:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mib = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        self.seconds = time.perf_counter() - self.t0


def train_rows(ds, size: dict, device: torch.device, emit) -> object:
    """One epoch per kernel and precision; returns the last model trained (sparse, bf16)."""
    config = ModelConfig(n_snps=size["snps"], h1=size["h1"], h2=size["h2"], input_dropout=0.99)
    result = None
    for kernel in ("dense", "sparse"):
        for bf16 in (False, True):
            recipe = TrainConfig(epochs=2, batch_size=256, device=str(device), bf16=bf16,
                                 input_dropout_kernel=kernel, checkpoint_every=1000)
            with Meter(device) as m:
                result = train_model(ds, seed=1, model_config=config, train_config=recipe)
            steps = -(-result.meta["n_train_balanced"] // 256)
            epoch_s = float(result.history["seconds"].iloc[-1])
            emit(f"train epoch {kernel} {'bf16' if bf16 else 'fp32'}", epoch_s, m.peak_mib,
                 f"{steps} steps, {1000 * epoch_s / steps:.1f} ms/step incl. validation; "
                 f"1000 epochs {1000 * epoch_s / 3600:.2f} h")
    return result


def attribution_rows(ds, result, size: dict, device: torch.device, emit) -> None:
    model = result.model.to(device).eval()
    rows = np.asarray(result.meta["case_rows"][: size["attr_rows"]])
    few = rows[: size["captum_rows"]]
    runs = [("IG fast", "ig", "fast", rows), ("IG captum", "ig", "captum", few), ("PM fast", "pm", None, rows)]
    per_row = {}
    for name, method, impl, r in runs:
        kwargs = {"impl": impl} if impl else {"pm_seed": 1}
        with Meter(device) as m:
            mas_for_model(model, ds.genotypes, rows=r, method=method, batch_size=64, memory_bytes=4 << 30,
                          **kwargs)
        per_row[name] = m.seconds / r.size
        note = f"{r.size} rows, {1000 * per_row[name]:.2f} ms/row"
        if name == "IG captum":
            note += f"; fast IG {per_row[name] / per_row['IG fast']:.0f}x faster per row"
        emit(name, m.seconds, m.peak_mib, note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="toy size on the CPU (for tests)")
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --small)")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    size = SMALL if args.small else PAPER
    device = torch.device(args.device or ("cpu" if args.small else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device visible; run with --small for the CPU version")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    mem = "peak GPU MiB" if device.type == "cuda" else "peak RSS MiB"
    print(f"gpu_check on {name}: {size['snps']} SNPs, H1 {size['h1']}, H2 {size['h2']}, "
          f"{size['train']} + {size['val']} samples", flush=True)
    print(f"{'phase':<24}{'seconds':>9}{mem:>14}  note", flush=True)
    rows = []

    def emit(phase: str, seconds: float, peak_mib: float, note: str) -> None:
        rows.append({"phase": phase, "seconds": seconds, "peak_mib": peak_mib, "note": note})
        print(f"{phase:<24}{seconds:>9.2f}{peak_mib:>14.0f}  {note}", flush=True)

    with Meter(device) as m:
        ds = _paper_dataset(size["snps"], size["train"], size["val"])
    emit("synthetic data", m.seconds, m.peak_mib, f"{ds.genotypes.nbytes / 2**20:.0f} MiB int8")
    result = train_rows(ds, size, device, emit)
    attribution_rows(ds, result, size, device, emit)
    if args.out:
        Path(args.out).write_text(json.dumps({"device": name, "size": size, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
