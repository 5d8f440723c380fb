#!/usr/bin/env bash
# Best-effort install of the Debian packages that optional tests need:
#   chromium (report opens in a real headless browser), plink2 (benchmark comparator),
#   slurm-wlm + munge (the one-node Slurm test), podman + runc + mmdebstrap (the container test).
# Skips quietly when not root or apt is unavailable; the tests that need a missing tool skip
# themselves and say why.
set -uo pipefail
want=()
command -v chromium >/dev/null || want+=(chromium)
command -v plink2 >/dev/null || want+=(plink2)
command -v slurmctld >/dev/null || want+=(slurm-wlm munge)
# the container test (tests/test_podman.py): podman with runc (crun fails on hybrid cgroups), and
# mmdebstrap for the local Debian base image when no image registry is reachable
command -v podman >/dev/null || want+=("podman runc")   # one apt call, so apt picks runc over crun
command -v runc >/dev/null || want+=(runc)
command -v mmdebstrap >/dev/null || want+=(mmdebstrap)
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
  # shellcheck disable=SC2086  # "podman runc" is two packages
  apt-get install -y -qq --no-install-recommends $p >/dev/null 2>&1 \
    && echo "install-system-deps: installed $p" >&2 \
    || echo "install-system-deps: could not install $p (tests needing it will skip)" >&2
done
exit 0
