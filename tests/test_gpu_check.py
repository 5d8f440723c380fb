"""benchmarks/gpu_check.sh --small: the GPU check runs end to end on the CPU at a toy size."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO

PHASES = ["synthetic data", "train epoch dense fp32", "train epoch dense bf16", "train epoch sparse fp32",
          "train epoch sparse bf16", "IG fast", "IG captum", "PM fast"]


def test_gpu_check__small_on_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--small", "--out", str(out)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    table = res.stdout.splitlines()
    assert table[1].split()[:2] == ["phase", "seconds"]
    assert [line[:24].strip() for line in table[2:]] == PHASES
    rows = json.loads(out.read_text())["rows"]
    assert [r["phase"] for r in rows] == PHASES
    assert all(r["seconds"] > 0 and r["peak_mib"] > 0 for r in rows)
