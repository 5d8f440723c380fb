#!/usr/bin/env bash
# A throw-away one-node Slurm cluster on this machine, for trying the `slurm` profile without a real
# cluster (tests/test_slurm.py uses it; humans can too).
#
#   scripts/slurm-local.sh install        apt-get install slurm-wlm munge (root, Debian/Ubuntu)
#   scripts/slurm-local.sh start DIR      write DIR/etc/slurm.conf, start munged, slurmctld, slurmd,
#                                         wait until the node is idle; PIDs go to DIR/pids
#   scripts/slurm-local.sh stop DIR       stop exactly the daemons listed in DIR/pids
#   scripts/slurm-local.sh status DIR     sinfo/squeue against this cluster
#
# After `start`, point Slurm's commands (and Nextflow, which calls sbatch/squeue/scancel) at it:
#   export SLURM_CONF=DIR/etc/slurm.conf
#   nextflow run main.nf -profile test,slurm --outdir results
#
# Everything lives under DIR: config, munge key and socket, state and spool folders, logs. Nothing in
# /etc, /run or /var is touched, and a system munged/slurmd (if any) keeps running, because this munged
# listens on its own socket (AuthInfo=socket=...) and the Slurm daemons on free ports.
# Settings chosen so that no cgroup, systemd or database is needed: ProctrackType=proctrack/linuxproc,
# TaskPlugin=task/none, no accounting; SelectType=select/cons_tres with CR_Core_Memory so that the
# `cpus`/`memory` Nextflow asks for are really scheduled against the node's real size (`slurmd -C`).
# Env: SLURM_LOCAL_TIMEOUT (seconds to wait for the idle node, default 60);
#      SLURM_LOCAL_FAKE_GPU=1 declares one GPU backed by /dev/null (GresTypes=gpu) so that jobs asking
#      for --gres=gpu:1 (-profile gpu) are scheduled and see CUDA_VISIBLE_DEVICES; no real GPU.
set -euo pipefail

die() { echo "slurm-local: $*" >&2; exit 1; }
log() { echo "slurm-local: $*" >&2; }

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# A TCP port nobody listens on (connect refused), starting at $1.
free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

cmd_install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
      && command -v sbatch >/dev/null; then
    log "slurm-wlm and munge already installed"; return 0
  fi
  [[ $(id -u) -eq 0 ]] || die "installing slurm-wlm and munge needs root (apt-get); run as root or install them yourself"
  command -v apt-get >/dev/null || die "no apt-get on this machine; install slurm-wlm and munge with its package manager"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt run (a parallel install) may hold the dpkg lock: wait for it rather than fail.
  apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null \
    || die "apt-get update failed (no access to the Debian mirror?)"
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
    || die "apt-get install slurm-wlm munge failed"
  log "installed $(slurmctld -V)"
}

# Start one daemon in the foreground, in the background of this shell, and record its PID.
launch() {
  local name=$1; shift
  setsid "$@" >>"$dir/log/$name.out" 2>&1 </dev/null &
  local pid=$!
  echo "$name $pid" >>"$dir/pids"
  log "started $name (pid $pid)"
}

cmd_start() {
  local sbin
  for sbin in munged slurmctld slurmd sinfo sbatch; do
    command -v "$sbin" >/dev/null || die "$sbin not found; run '$0 install' (root) first"
  done
  [[ -s "$dir/pids" ]] && die "$dir/pids exists: a cluster from this folder may still run; '$0 stop $dir' first"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # munged refuses group/other-writable folders on the path of its key and socket; other users (a
  # non-root `nextflow run`) need to traverse to the socket and read slurm.conf, nothing more.
  chmod 711 "$dir"
  mkdir -p "$dir"/{etc,munge,state,spool,log,run}
  chmod 700 "$dir"/{state,log,run}
  chmod 755 "$dir/spool"   # slurmd puts job scripts here; the job's user must read them
  chmod 711 "$dir/munge"
  chmod 755 "$dir/etc"
  : >"$dir/pids"
  trap 'log "start failed; stopping what was started"; cmd_stop || true' ERR

  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  local socket="$dir/munge/munge.socket"
  launch munged munged --foreground --force --socket="$socket" --key-file="$dir/munge/munge.key" \
    --log-file="$dir/log/munged.log" --pid-file="$dir/run/munged.pid" --seed-file="$dir/munge/munged.seed"
  local i
  for i in $(seq 50); do [[ -S $socket ]] && break; sleep 0.1; done
  [[ -S $socket ]] || { tail -n 20 "$dir/log/munged".* >&2; false; }

  local host node_line ctld_port slurmd_port user
  host=$(hostname -s)
  user=$(id -un)
  # The node's real CPUs/sockets/cores/memory, as slurmd itself detects them (a larger claim would
  # drain the node, a smaller one would leave cores unused).
  node_line=$(slurmd -C | head -n 1 | sed -E "s/^NodeName=[^ ]+//")
  local gres_line="" gres_node=""
  if [[ ${SLURM_LOCAL_FAKE_GPU:-0} == 1 ]]; then
    # slurmd counts GPUs by their device files; without one it reports 0 and the node is INVAL.
    gres_line="GresTypes=gpu"
    gres_node="Gres=gpu:1"
    echo "NodeName=$host Name=gpu File=/dev/null" >"$dir/etc/gres.conf"
  fi
  ctld_port=$(free_port 6817)
  slurmd_port=$(free_port $((ctld_port + 1)))
  cat >"$dir/etc/slurm.conf" <<CONF
# Written by scripts/slurm-local.sh: a one-node cluster for tests. Not for production.
ClusterName=annpal-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
$gres_line
NodeName=$host NodeAddr=127.0.0.1 NodeHostname=$host $node_line $gres_node State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  export SLURM_CONF="$dir/etc/slurm.conf"
  # -D: stay in the foreground so that the PID recorded is the daemon's own; -i/-c: fresh state.
  launch slurmctld slurmctld -D -i -c -f "$SLURM_CONF"
  launch slurmd slurmd -D -f "$SLURM_CONF" -N "$host"

  local timeout=${SLURM_LOCAL_TIMEOUT:-60} state=
  for i in $(seq $((timeout * 2))); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -n 1 || true)
    [[ $state == idle ]] && break
    sleep 0.5
  done
  if [[ $state != idle ]]; then
    log "node not idle after ${timeout}s (state: '${state:-no answer}'); daemon logs:"
    tail -n 15 "$dir"/log/*.log "$dir"/log/*.out >&2 || true
    false
  fi
  trap - ERR
  log "node $host idle: $(sinfo -h -N -o '%C cpus (alloc/idle/other/total), %m MB')"
  cat "$dir/pids"
  echo "export SLURM_CONF=$SLURM_CONF"
}

cmd_stop() {
  [[ -f "$dir/pids" ]] || { log "no $dir/pids: nothing to stop"; return 0; }
  export SLURM_CONF="$dir/etc/slurm.conf"
  # Jobs still queued or running on this cluster only (our own SLURM_CONF) go first.
  if [[ -f $SLURM_CONF ]] && command -v scancel >/dev/null; then
    timeout 10 scancel --user="$(id -un)" 2>/dev/null || true
  fi
  local name pid left=()
  # Reverse start order: slurmd, slurmctld, then munged, which both still need while shutting down.
  while read -r name pid; do
    [[ -n $pid ]] || continue
    # Only a live process whose command is still the daemon we started (guards against PID reuse).
    if [[ -r /proc/$pid/comm ]] && [[ $(cat "/proc/$pid/comm") == "$name"* ]]; then
      kill -TERM "$pid" 2>/dev/null && left+=("$pid") && log "stopping $name (pid $pid)"
    fi
  done < <(tac "$dir/pids")
  local i p alive
  for i in $(seq 100); do
    alive=()
    for p in "${left[@]}"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
    [[ ${#alive[@]} -eq 0 ]] && break
    sleep 0.1
  done
  for p in "${alive[@]}"; do log "pid $p ignored SIGTERM; sending SIGKILL"; kill -KILL "$p" 2>/dev/null || true; done
  rm -f "$dir/pids"
}

cmd_status() {
  export SLURM_CONF="$dir/etc/slurm.conf"
  [[ -f $SLURM_CONF ]] || die "no $SLURM_CONF: start the cluster first"
  cat "$dir/pids" 2>/dev/null || true
  sinfo -N -l
  squeue
}

[[ $# -ge 1 ]] || usage
action=$1
case $action in
  install) cmd_install ;;
  start | stop | status)
    [[ $# -eq 2 ]] || usage
    dir=$2
    "cmd_$action" ;;
  *) usage ;;
esac
