#!/usr/bin/env bash
# Best-effort install of the Debian packages that optional tests need:
#   chromium (report opens in a real headless browser), plink2 (benchmark comparator),
#   slurm-wlm + munge (the one-node Slurm test). Skips quietly when not root or apt is unavailable;
# the tests that need a missing tool skip themselves and say why.
set -uo pipefail
want=()
command -v chromium >/dev/null || want+=(chromium)
command -v plink2 >/dev/null || want+=(plink2)
command -v slurmctld >/dev/null || want+=(slurm-wlm munge)
[[ ${#want[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "install-system-deps: not root or no apt-get; skipping ${want[*]} (tests needing them will skip)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
stamp=/var/lib/apt/periodic/annpal-update-stamp
if [[ ! -f $stamp ]] || [[ $(find "$stamp" -mmin +720 2>/dev/null) ]]; then
  apt-get update -qq >/dev/null 2>&1 && mkdir -p "$(dirname $stamp)" && touch $stamp
fi
for p in "${want[@]}"; do
  apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 \
    && echo "install-system-deps: installed $p" >&2 \
    || echo "install-system-deps: could not install $p (tests needing it will skip)" >&2
done
exit 0
