#!/usr/bin/env bash
# Set up (or reuse) .venv, then run one job:
#   bash scripts/dev.sh demo   # train the embedded tiny model on the demo dataset
#   bash scripts/dev.sh test   # ruff, mypy and the whole pytest suite (what CI runs)
#   bash scripts/dev.sh setup  # only set up .venv
# It installs nothing outside .venv: the real-Slurm test needs slurm-wlm and munge (and root), which
# .ci/install_system.sh installs in CI; without them that test is skipped, with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${ODA_SFT_VENV:-.venv}"
PY="${PYTHON:-python3}"

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  # Reinstall only when the dependency definition changed since the last setup.
  local stamp="$VENV/.oda-sft-setup"
  local want
  want="$(cat pyproject.toml scripts/constraints-cpu.txt | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # torch first, pinned, so nothing later pulls a different build.
    "$VENV/bin/python" -m pip install --quiet -c scripts/constraints-cpu.txt torch torchvision torchaudio
    "$VENV/bin/python" -m pip install --quiet -c scripts/constraints-cpu.txt -e '.[dev]'
    echo "$want" > "$stamp"
  fi
}

job="${1:-}"
case "$job" in
  setup)
    setup
    ;;
  demo)
    setup
    shift
    exec "$VENV/bin/oda-sft" train --model tiny --dataset oda_demo "$@"
    ;;
  test)
    setup
    shift
    "$VENV/bin/ruff" check src tests benchmarks
    "$VENV/bin/ruff" format --check src tests benchmarks
    "$VENV/bin/mypy"
    exec "$VENV/bin/pytest" -q -p no:cacheprovider "$@"
    ;;
  *)
    echo "usage: bash scripts/dev.sh setup|demo|test [args...]" >&2
    exit 2
    ;;
esac
