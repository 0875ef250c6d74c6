#!/usr/bin/env bash
# The system components the test suite needs beyond Python, installed once on the CI machine (as root,
# on a clean Debian or Ubuntu): Slurm and munge, for tests/integration/test_slurm_cluster.py. Tests
# never install anything; without these they skip locally and fail under CI=true.
set -euo pipefail

missing=()
for tool in slurmd slurmctld munged munge unmunge sbatch scontrol sinfo scancel; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install_system: Slurm and munge are installed"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install_system: ${missing[*]} missing, and installing them needs root (apt-get install slurm-wlm munge)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends slurm-wlm munge
echo "install_system: installed slurm-wlm and munge"
