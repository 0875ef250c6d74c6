#!/usr/bin/env bash
# Start a private one-node Slurm (munged, slurmctld, slurmd) for the oda-sft tests.
#
# Usage: [SLURMCTLD_PORT=N SLURMD_PORT=M] start_slurm.sh STATE_DIR
# Writes STATE_DIR/slurm.conf and keeps the munge key and socket, pid files, logs and spool there;
# clients use it through SLURM_CONF=STATE_DIR/slurm.conf. Changes nothing outside STATE_DIR: it
# installs nothing (.ci/run installs slurm-wlm and munge; the test skips without them) and uses
# neither /etc/munge nor the system munged. Needs root (slurmd runs jobs as their user). On
# failure: one line on stderr saying what failed, the tail of the daemon log, and a non-zero exit.
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

for tool in slurmd slurmctld munged munge unmunge sbatch scontrol sinfo; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (.ci/run installs slurm-wlm and munge)"
done

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
# This cluster's own munged (below), not the system's.
AuthInfo=socket=$state/munge/munge.socket
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

# A private munged: its key, socket, seed and log live in STATE_DIR, so the system's munge (its key in
# /etc/munge, its daemon) is neither needed nor touched.
mkdir -p "$state/munge"
chmod 0700 "$state/munge"
dd if=/dev/urandom of="$state/munge/munge.key" bs=1 count=1024 status=none
chmod 0400 "$state/munge/munge.key"
munged --force --socket="$state/munge/munge.socket" --key-file="$state/munge/munge.key" \
    --pid-file="$state/munged.pid" --log-file="$state/munged.log" --seed-file="$state/munge/munge.seed" \
    >>"$state/munged.out" 2>&1 || fail "munged did not start (see $state/munged.log)"
munge --socket="$state/munge/munge.socket" -n </dev/null | unmunge --socket="$state/munge/munge.socket" \
    >/dev/null 2>&1 || fail "munge credentials do not round-trip: the private munged is not working"

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
