#!/usr/bin/env bash
# Set up (or reuse) .venv, then run one job:
#   bash scripts/dev.sh demo   # train the embedded tiny model on the demo dataset, then evaluate it
#                              # with OpenCompass on the CPU (oda-sft eval: docs/eval.md) and rank it (oda-sft rank)
#   bash scripts/dev.sh test   # ruff, mypy, vulture and the whole pytest suite (what CI runs); the summary
#                              # names each skipped test and why
#   bash scripts/dev.sh setup  # only set up .venv, .venv-opencompass and .venv-lf092
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
    # uv (from PyPI, into this venv) installs the same packages as pip (pip freeze of both: identical but
    # for uv itself) and downloads in parallel: `setup` took 137 s on a clean 2-core machine, 288 s with pip.
    # It compiles no .pyc at install (pip compiles all 22,000 files): each is written when first imported.
    # It reads no pip.conf: ODA_SFT_NO_UV=1 installs with pip (a mirror set there, or uv does not install).
    # The layered venvs below stay on pip: uv does not count what their .pth file adds as installed.
    local install=("$VENV/bin/python" -m pip install --quiet)
    if [ -z "${ODA_SFT_NO_UV:-}" ] && "$VENV/bin/python" -m pip install --quiet uv; then
      install=("$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python")
    fi
    # torch first, pinned, so nothing later pulls a different build.
    "${install[@]}" -c scripts/constraints-cpu.txt torch torchvision torchaudio
    "${install[@]}" -c scripts/constraints-cpu.txt -e '.[dev]'
    echo "$want" > "$stamp"
  fi
}

# A fresh venv at $1 that sees the training venv's packages (torch, transformers...) through a .pth file,
# written before pip runs so pip counts them as installed: no second torch download.
layered_venv() {
  rm -rf "$1"
  "$PY" -m venv "$1"
  local own train
  own="$("$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  train="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$train" > "$own/oda_sft_training_venv.pth"
}

# OpenCompass, which `oda-sft eval` runs, in its own venv (it pins numpy<2 and pandas): reused when present,
# rebuilt when src/oda_sft/eval/data/opencompass-requirements.txt or opencompass-nodeps.txt changes (the latter
# installed --no-deps: LMDeploy's client for Omni-MATH's judge). It sees the training venv's torch and
# transformers through a .pth file, written before pip runs so pip counts them as installed.
OC_VENV="${ODA_SFT_OPENCOMPASS_VENV:-.venv-opencompass}"
setup_opencompass() {
  local stamp="$OC_VENV/.oda-sft-setup"
  local want
  want="$(cat src/oda_sft/eval/data/opencompass-requirements.txt src/oda_sft/eval/data/opencompass-nodeps.txt \
    | sha256sum | cut -d' ' -f1)"
  if [ -x "$OC_VENV/bin/opencompass" ] && [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ]; then
    return
  fi
  layered_venv "$OC_VENV"
  "$OC_VENV/bin/python" -m pip install --quiet --upgrade pip
  "$OC_VENV/bin/python" -m pip install --quiet -r src/oda_sft/eval/data/opencompass-requirements.txt
  "$OC_VENV/bin/python" -m pip install --quiet --no-deps -r src/oda_sft/eval/data/opencompass-nodeps.txt
  echo "$want" > "$stamp"
}

# LLaMA-Factory 0.9.2, which the 2025 recipe era reproduces (docs/recipe_eras.md): tests/integration/
# test_recipe_eras.py tokenizes with it and compares. Its own venv, built once and reused (stamped with the
# pins), seeing the training venv's torch and the rest through a .pth file, as .venv-opencompass does. --no-deps:
# only its tokenizing path runs, which needs nothing more than these pins; its other pins (datasets<=3.2.0,
# accelerate, peft, trl) are checked only at import, which the test turns off (DISABLE_VERSION_CHECK=1).
LF092_VENV="${ODA_SFT_LF092_VENV:-.venv-lf092}"
LF092_PINS=(llamafactory==0.9.2 transformers==4.49.0 tokenizers==0.21.0)
setup_lf092() {
  local stamp="$LF092_VENV/.oda-sft-setup"
  local want
  want="$(echo "${LF092_PINS[*]}" | sha256sum | cut -d' ' -f1)"
  if [ -x "$LF092_VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ]; then
    return
  fi
  layered_venv "$LF092_VENV"
  "$LF092_VENV/bin/python" -m pip install --quiet --no-deps "${LF092_PINS[@]}"
  echo "$want" > "$stamp"
}

job="${1:-}"
case "$job" in
  setup)
    setup
    setup_opencompass
    setup_lf092
    ;;
  demo)
    setup
    setup_opencompass
    shift
    "$VENV/bin/oda-sft" train --model tiny --dataset oda_demo "$@"
    # The same run, evaluated: eval takes train's --output-root and --seed, if given.
    eval_args=()
    rank_args=()
    while [ "$#" -gt 0 ]; do
      case "$1" in
        --output-root) eval_args+=("$1" "$2"); rank_args+=("$1" "$2"); shift 2 ;;
        --output-root=*) eval_args+=("$1"); rank_args+=("$1"); shift ;;
        --seed) eval_args+=("$1" "$2"); shift 2 ;;
        --seed=*) eval_args+=("$1"); shift ;;
        *) shift ;;
      esac
    done
    "$VENV/bin/oda-sft" eval --model tiny --dataset oda_demo --opencompass "$OC_VENV" "${eval_args[@]}"
    # The leaderboard of what is under the output root (one row here; more seeds and datasets fill it).
    "$VENV/bin/oda-sft" rank --model tiny "${rank_args[@]}"
    ;;
  test)
    setup
    setup_opencompass  # the end-to-end eval test runs a real OpenCompass
    setup_lf092  # the recipe-era tests tokenize with LLaMA-Factory 0.9.2 itself
    shift
    "$VENV/bin/ruff" check src tests benchmarks
    "$VENV/bin/ruff" format --check src tests benchmarks
    "$VENV/bin/mypy"
    "$VENV/bin/vulture"  # unused code; what is called by name from outside: scripts/vulture_whitelist.py
    # One oda-sft home for the whole run: the tiny model is built once, whichever worker needs it first.
    ODA_SFT_TEST_HOME="$(mktemp -d)"
    export ODA_SFT_TEST_HOME
    trap 'rm -rf "$ODA_SFT_TEST_HOME"' EXIT
    if [ "$#" -gt 0 ]; then  # a chosen subset, as given
      "$VENV/bin/pytest" -q -rfEs -p no:cacheprovider "$@"
    else
      # The fast tiers (pure logic and in-process commands), then the real-process tier, each on both
      # cores; tests/conftest.py gives each torch process one OpenMP thread, so two trainers at once
      # do not spin against each other.
      "$VENV/bin/pytest" -q -rfEs -p no:cacheprovider -n 2 -m "not integration"
      "$VENV/bin/pytest" -q -rfEs -p no:cacheprovider -n 2 -m integration
    fi
    ;;
  *)
    echo "usage: bash scripts/dev.sh setup|demo|test [args...]" >&2
    exit 2
    ;;
esac
