#!/usr/bin/env bash
# Start a private one-node Slurm (munged, slurmctld, slurmd) for the oda-sft tests.
#
# Usage: [SLURMCTLD_PORT=N SLURMD_PORT=M] start_slurm.sh STATE_DIR
# Writes STATE_DIR/slurm.conf and keeps pid files, logs and spool there; clients use it
# through SLURM_CONF=STATE_DIR/slurm.conf. Installs Debian's slurm-wlm and munge when absent.
# Needs root (slurmd runs jobs as their user). On failure: one line on stderr saying what
# failed, the tail of the daemon log, and a non-zero exit.
set -euo pipefail

state=${1:?usage: start_slurm.sh STATE_DIR}
mkdir -p "$state"
state=$(cd "$state" && pwd)

fail() {
    echo "start_slurm: $*" >&2
    for log in "$state"/*.log; do
        [ -f "$log" ] && { echo "--- tail of $log" >&2; tail -n 20 "$log" >&2; }
    done
    exit 1
}

[ "$(id -u)" = 0 ] || fail "must run as root: slurmd starts job steps as their owner (running as uid $(id -u))"

if ! command -v slurmd >/dev/null || ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null \
    || ! command -v sbatch >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$state/apt.log" 2>&1 || fail "apt-get update failed (see $state/apt.log)"
    apt-get install -y -qq slurm-wlm munge >>"$state/apt.log" 2>&1 \
        || fail "apt-get install slurm-wlm munge failed (see $state/apt.log)"
fi

host=$(hostname -s)
# Ports of this cluster: distinct per test session, so two sessions on one machine never talk
# to each other's controller.
ctld_port=${SLURMCTLD_PORT:-6817}
slurmd_port=${SLURMD_PORT:-6818}
cpus=$(nproc --all)
# RealMemory must not exceed what slurmd detects, or it drains the node: leave 5% of MemTotal.
mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.95 }' /proc/meminfo)

mkdir -p "$state/spool" "$state/ctld"
cat >"$state/slurm.conf" <<CONF
# A one-node test cluster for oda-sft; see tests/integration/slurm/start_slurm.sh.
ClusterName=odasft-test
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# No cgroups in a container: track processes by parentage, and bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
# Keep finished jobs visible to scontrol long enough for the tests to read their state.
MinJobAge=3600
KillWait=10
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$state/slurm.conf

# munged: the Debian package made /etc/munge/munge.key; make one if it is missing.
mkdir -p /run/munge /var/log/munge /var/lib/munge
if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    if id munge >/dev/null 2>&1; then
        su -s /bin/sh munge -c "munged --pid-file=/run/munge/munged.pid" >"$state/munged.log" 2>&1 \
            || munged --force --pid-file=/run/munge/munged.pid >>"$state/munged.log" 2>&1 \
            || fail "munged did not start (see $state/munged.log)"
    else
        munged --force --pid-file=/run/munge/munged.pid >"$state/munged.log" 2>&1 \
            || fail "munged did not start (see $state/munged.log)"
    fi
    cp /run/munge/munged.pid "$state/munged.pid" 2>/dev/null || true
fi
munge -n </dev/null | unmunge >/dev/null 2>&1 || fail "munge credentials do not round-trip: munged is not working"

# -D keeps each daemon in the foreground of its own background job; the pid files are how
# stop_slurm.sh finds them.
setsid slurmctld -D -i -f "$SLURM_CONF" >>"$state/slurmctld.out" 2>&1 &
for _ in $(seq 1 50); do scontrol ping >/dev/null 2>&1 && break; sleep 0.2; done
scontrol ping >/dev/null 2>&1 || fail "slurmctld did not answer scontrol ping within 10 s"
# The controller that answered must be ours, not one left on the same port by someone else.
sleep 0.5
kill -0 "$(cat "$state/slurmctld.pid" 2>/dev/null)" 2>/dev/null \
    || fail "slurmctld exited after starting (port $ctld_port taken?)"

setsid slurmd -D -f "$SLURM_CONF" >>"$state/slurmd.out" 2>&1 &
for _ in $(seq 1 100); do
    node_state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    case "$node_state" in idle | mixed | allocated) break ;; esac
    sleep 0.2
done
case "$node_state" in
    idle | mixed | allocated) ;;
    *) fail "node $host did not become idle within 20 s (state: ${node_state:-unknown}): slurmd cannot run here" ;;
esac
kill -0 "$(cat "$state/slurmd.pid" 2>/dev/null)" 2>/dev/null || fail "slurmd exited after starting (port $slurmd_port taken?)"
echo "start_slurm: one-node Slurm up: node $host ($cpus CPUs, ${mem_mb} MB, ports $ctld_port/$slurmd_port)," \
    "SLURM_CONF=$SLURM_CONF"
