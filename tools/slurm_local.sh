#!/usr/bin/env bash
# A one-node Slurm on this machine, for tests: `tools/slurm_local.sh start|stop|status|install`.
#
# start   installs Debian's slurmctld, slurmd, slurm-client and munge with apt-get when they are missing,
#         writes a one-node slurm.conf for this machine (its CPUs and memory, one default partition,
#         proctrack/linuxproc, task/none, no accounting) into a state folder, starts munged (own key and
#         socket), slurmctld and slurmd as root, waits until `sinfo` shows the node idle, and prints the
#         `export SLURM_CONF=...` line that clients need. Starting a running cluster is a no-op.
# stop    cancels the cluster's jobs, then stops exactly the daemons it started (by its pid files) and waits
#         for them to exit.
# status  prints the daemons' state and `sinfo`/`squeue`.
# install only installs the packages when missing (what `start` does first).
#
# It never touches /etc/slurm: it refuses to run where a real cluster is configured (/etc/slurm/slurm.conf
# exists, or SLURM_CONF points at another file). Needs root (the daemons run as root, SlurmUser=root).
# Settings: ITT_SLURM_DIR (state folder, default /tmp/itt-slurm), ITT_SLURM_PORT (slurmctld port, default
# 6817; slurmd uses the next one), ITT_SLURM_TIMEOUT (seconds to wait for the idle node, default 60).
set -euo pipefail

DIR=${ITT_SLURM_DIR:-/tmp/itt-slurm}
PORT=${ITT_SLURM_PORT:-6817}
TIMEOUT=${ITT_SLURM_TIMEOUT:-60}
CONF=$DIR/slurm.conf
SOCK=$DIR/munge/munge.socket
PACKAGES=(slurmctld slurmd slurm-client munge)
DAEMONS=(slurmd slurmctld munged)   # stop order; start order is the reverse

die() { echo "slurm_local: $*" >&2; exit 1; }
say() { echo "slurm_local: $*" >&2; }
cpus() { env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc; }   # GNU nproc obeys OMP_NUM_THREADS; the node gets all
pidfile() { case $1 in munged) echo "$DIR/munge/munged.pid" ;; *) echo "$DIR/run/$1.pid" ;; esac; }

# The pid a daemon's pid file names, if that process is alive and is that daemon (a reused pid is not).
running_pid() {
  local f; f=$(pidfile "$1")
  [ -s "$f" ] || return 1
  local pid; pid=$(tr -dc 0-9 <"$f")
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
  [ "$(cat "/proc/$pid/comm")" = "$1" ] || return 1
  echo "$pid"
}

check_not_a_real_cluster() {
  if [ -n "${SLURM_CONF:-}" ] && [ "$SLURM_CONF" != "$CONF" ]; then
    die "SLURM_CONF points at $SLURM_CONF, not at this script's $CONF: a Slurm is configured here; refusing."
  fi
  for f in /etc/slurm/slurm.conf /etc/slurm-llnl/slurm.conf; do
    [ -e "$f" ] && die "$f exists: this machine has a configured Slurm; refusing to start a local one next to it."
  done
  return 0
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "packages missing (${missing[*]}) and not root: cannot apt-get install them."
  command -v apt-get >/dev/null || die "packages missing (${missing[*]}) and apt-get is not available."
  say "installing ${missing[*]} with apt-get"
  # Keep the packages' init scripts from starting system daemons (munged on /etc/munge): only ours run.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; own_policy=1; fi
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}")
  local rc=0
  "${apt[@]}" >"$DIR/apt.log" 2>&1 || { apt-get update -q >>"$DIR/apt.log" 2>&1 && "${apt[@]}" >>"$DIR/apt.log" 2>&1; } || rc=$?
  [ "$own_policy" -eq 1 ] && rm -f "$policy"
  [ "$rc" -eq 0 ] || { tail -5 "$DIR/apt.log" >&2; die "apt-get install ${missing[*]} failed (log: $DIR/apt.log)."; }
}

write_conf() {
  local host cpus mem_mb
  host=$(hostname -s)
  cpus=$(cpus)
  mem_mb=$(awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo)
  mem_mb=$(( mem_mb - (mem_mb/10 > 512 ? mem_mb/10 : 512) ))   # leave 10 % (at least 512 MB) to the system
  [ "$mem_mb" -gt 256 ] || mem_mb=256
  cat >"$CONF" <<EOF
# One-node Slurm for tests, written by tools/slurm_local.sh; state, logs and pid files under $DIR.
# KillWait=0: no grace time between SIGTERM and SIGKILL (clusters give 30 s), so that cancelled jobs end within
# seconds (submitit jobs ignore SIGTERM) and "slurm_local.sh stop" leaves no job process behind.
ClusterName=itt-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=600
KillWait=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munged() {
  running_pid munged >/dev/null && return 0
  local key=$DIR/munge/munge.key
  if [ ! -s "$key" ]; then
    mungekey --create --keyfile="$key" 2>/dev/null || dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
  fi
  chmod 0600 "$key"
  munged --key-file="$key" --socket="$SOCK" --pid-file="$(pidfile munged)" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munged.seed" || die "munged did not start (log: $DIR/log/munged.log)."
}

wait_idle() {
  local t0=$SECONDS state=""
  while [ $((SECONDS - t0)) -lt "$TIMEOUT" ]; do
    state=$(sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)
    [ "$state" = idle ] && return 0
    for d in slurmctld slurmd; do
      running_pid "$d" >/dev/null || { tail -5 "$DIR/log/$d.log" >&2 2>/dev/null || true; die "$d exited (log: $DIR/log/$d.log)."; }
    done
    sleep 0.5
  done
  tail -5 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 2>/dev/null || true
  die "the node is not idle after ${TIMEOUT}s (state: '${state:-no answer}'); logs in $DIR/log."
}

all_running() { for d in "${DAEMONS[@]}"; do running_pid "$d" >/dev/null || return 1; done; }

cmd_start() {
  check_not_a_real_cluster
  export SLURM_CONF=$CONF
  if all_running && sinfo -h >/dev/null 2>&1; then
    say "already running"; echo "export SLURM_CONF=$CONF"; return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "must run as root (the local daemons run as root)."
  mkdir -p "$DIR"
  install_packages
  cmd_stop quiet   # a half-started cluster from before: stop what is left, then start clean
  mkdir -p "$DIR"/{munge,run,log,state,spool}
  chmod 0755 "$DIR/munge"   # munged needs the socket folder searchable by all
  write_conf
  start_munged
  running_pid slurmctld >/dev/null || slurmctld -c || die "slurmctld did not start (log: $DIR/log/slurmctld.log)."
  running_pid slurmd >/dev/null || slurmd -c || die "slurmd did not start (log: $DIR/log/slurmd.log)."
  wait_idle
  say "node $(hostname -s) idle ($(cpus) CPUs) after ${SECONDS}s"
  echo "export SLURM_CONF=$CONF"
}

cmd_stop() {
  export SLURM_CONF=$CONF
  if running_pid slurmctld >/dev/null && [ -e "$CONF" ]; then   # jobs first, so no slurmstepd outlives slurmd
    scancel --full --quiet --partition=local 2>/dev/null || true
    local t0=$SECONDS
    while [ $((SECONDS - t0)) -lt 15 ] && [ -n "$(squeue -h -t running,completing -o %i 2>/dev/null)" ]; do sleep 0.5; done
  fi
  local d pid pids=() t0
  for d in "${DAEMONS[@]}"; do   # TERM them all, then wait for each; KILL what is left after 20 s
    pid=$(running_pid "$d") || continue
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$d:$pid")
  done
  t0=$SECONDS
  for d in "${pids[@]}"; do
    pid=${d#*:}
    while [ -d "/proc/$pid" ] && [ $((SECONDS - t0)) -lt 20 ]; do sleep 0.1; done
    if [ -d "/proc/$pid" ]; then say "${d%%:*} ($pid) did not exit on TERM; killing it"; kill -KILL "$pid" 2>/dev/null || true; fi
  done
  [ "${1:-}" = quiet ] && return 0
  if [ ${#pids[@]} -eq 0 ]; then say "not running"; else say "stopped ${pids[*]}"; fi
}

cmd_status() {
  export SLURM_CONF=$CONF
  local d pid up=0
  for d in munged slurmctld slurmd; do
    if pid=$(running_pid "$d"); then echo "$d: running (pid $pid)"; up=$((up + 1)); else echo "$d: stopped"; fi
  done
  if [ "$up" -eq 3 ]; then
    echo "export SLURM_CONF=$CONF"
    sinfo -N -o '%N %T %c %m %P' 2>&1 || true
    squeue 2>&1 || true
  fi
  [ "$up" -eq 3 ]
}

case "${1:-}" in
  start) cmd_start ;;
  install) mkdir -p "$DIR"; install_packages ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status|install" >&2; exit 2 ;;
esac
