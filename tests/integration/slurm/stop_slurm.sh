#!/usr/bin/env bash
# Stop the daemons start_slurm.sh started, by their pid files. Usage: stop_slurm.sh STATE_DIR
set -uo pipefail

state=${1:?usage: stop_slurm.sh STATE_DIR}
status=0
for name in slurmd slurmctld munged; do
    pidfile=$state/$name.pid
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "stop_slurm: $name ($pid) ignored SIGTERM for 5 s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            status=1
        fi
    fi
    rm -f "$pidfile"
done
exit $status
