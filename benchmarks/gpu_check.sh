#!/usr/bin/env bash
# GPU check for a lent device (issue 15): one paper-scale training epoch per input-dropout kernel (dense,
# sparse) in fp32 and bf16, fast IG / captum IG / PM of one paper-scale model, peak GPU memory; prints
# one table (and writes it as JSON with --out FILE). Finishes in under 8 minutes on one GPU (it stops
# itself at 7.5 minutes, keeping the rows printed so far).
#
#   bash benchmarks/gpu_check.sh                      # on a machine with CUDA
#   bash benchmarks/gpu_check.sh --small              # toy size on the CPU, seconds (tests use this)
#   bash benchmarks/gpu_check.sh --out results.json
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$here/../.venv/bin/python" ]]; then python="$here/../.venv/bin/python"; else python="python3"; fi
fi
exec timeout --signal=INT 450 "$python" "$here/gpu_check.py" "$@"
