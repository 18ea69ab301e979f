#!/usr/bin/env bash
# A single-node SLURM on this machine, from Debian's packages, for glmflow's cluster test.
#   tests/slurm/cluster.sh start   install (if missing), configure and start munge + SLURM
#   tests/slurm/cluster.sh stop    stop them (running jobs are cancelled); says what it stopped
#   tests/slurm/cluster.sh status  say which daemons run, the node's state and the queue;
#                                  exit 0 when the node takes jobs
# Idempotent; needs root. After `start`, `snakemake --workflow-profile workflow/profiles/slurm`
# works with nothing else set. What it sets up, and why:
# - no cgroups (ProctrackType=proctrack/linuxproc, TaskPlugin=task/none): none in containers;
# - the host's own short name as NodeName and SlurmctldHost, reached at 127.0.0.1;
# - the config at /etc/slurm/slurm.conf: the jobstep plugin drops SLURM_CONF;
# - no accounting daemon: the profile asks squeue for job states, which needs MinJobAge >=
#   3 x slurm-init-seconds-before-status-checks (300 s here, 10 s in the profile); finished
#   jobs are recorded in /var/log/slurm/jobcomp.log (JobCompType=jobcomp/filetxt);
# - munge's key 0400 and owned by munge, munged running as munge.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
LOGS=/var/log/slurm
NODE=$(hostname -s)

need_root() { [ "$(id -u)" = 0 ] || { echo "cluster.sh: run as root" >&2; exit 1; }; }

install_packages() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge
  fi
}

running() { pgrep -x "$1" >/dev/null; }

start_munge() {
  install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  running munged || runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do munge -n </dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "cluster.sh: munge does not answer" >&2
  exit 1
}

write_config() {
  local cpus memory
  cpus=$(nproc)
  memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  install -d "$(dirname "$CONF")" "$LOGS" /var/spool/slurmctld /var/spool/slurmd
  cat >"$CONF" <<CONFIG
# Written by glmflow's tests/slurm/cluster.sh: one node, no cgroups, no accounting daemon.
ClusterName=glmflow
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=${LOGS}/slurmctld.log
SlurmdLogFile=${LOGS}/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=${LOGS}/jobcomp.log
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${memory} State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONFIG
}

node_ready() { sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; }

start() {
  need_root
  install_packages
  start_munge
  write_config
  running slurmctld || slurmctld
  running slurmd || slurmd
  for _ in $(seq 100); do
    if node_ready; then
      echo "cluster.sh: node ${NODE} is up (partition main, $(nproc) CPUs)"
      return 0
    fi
    scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
    sleep 0.2
  done
  echo "cluster.sh: the node did not come up; see ${LOGS}/slurmctld.log and ${LOGS}/slurmd.log" >&2
  exit 1
}

daemons() {
  local daemon found=""
  for daemon in munged slurmctld slurmd; do running "$daemon" && found="$found $daemon"; done
  echo "${found# }"
}

status() {
  local up
  up=$(daemons)
  echo "cluster.sh: running: ${up:-nothing}"
  if ! running slurmctld; then
    echo "cluster.sh: no controller; start it with: $0 start"
    return 1
  fi
  sinfo -h -N -o "cluster.sh: node %N %T (partition %P, %c CPUs)" 2>/dev/null || true
  local queue
  queue=$(squeue -h -o '  job %i %T %j (%M) in %Z' 2>/dev/null || true)
  if [ -n "$queue" ]; then echo "cluster.sh: $(wc -l <<<"$queue") job(s) in the queue:"; echo "$queue"
  else echo "cluster.sh: the queue is empty"; fi
  node_ready
}

stop() {
  need_root
  local up jobs=0
  up=$(daemons)
  if running slurmctld; then
    jobs=$(squeue -h -o %i 2>/dev/null | wc -l || echo 0)
    scancel --full --user root >/dev/null 2>&1 || true
  fi
  if [ "$jobs" -gt 0 ]; then echo "cluster.sh: cancelled ${jobs} job(s)"; fi
  for daemon in slurmd slurmctld munged; do
    pkill -x "$daemon" 2>/dev/null || true
  done
  # Without a controller, a slurm.conf makes every `scontrol show config` wait 9 s, and the
  # SLURM executor plugin asks it whenever Snakemake starts, local runs too: set it aside.
  [ -f "$CONF" ] && mv "$CONF" "$CONF.stopped"
  for _ in $(seq 50); do
    running slurmd || running slurmctld || running munged || break
    sleep 0.1
  done
  pkill -9 -x slurmd 2>/dev/null || true
  pkill -9 -x slurmctld 2>/dev/null || true
  if [ -n "$up" ]; then echo "cluster.sh: stopped $up"; else echo "cluster.sh: nothing was running"; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
