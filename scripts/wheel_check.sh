#!/usr/bin/env bash
# CI: oda-sft from a wheel, not the checkout. Build the wheel, install it into a fresh venv that borrows
# the heavy dependencies from .venv (torch, LLaMA-Factory: nothing is downloaded), then from an empty
# temporary directory, with no dataset dir and the checkout off the path: the docs the help pages point
# to, list-datasets, a tiny training run on the shipped demo, and `data add` (a file, and a catalog dataset
# from a local copy).
# Checks that nothing was written into the package or the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
VENV="${ODA_SFT_VENV:-.venv}"
VENV_PY="$(cd "$VENV/bin" && pwd)/python"
start=$SECONDS
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# setuptools prints its warnings (a folder it would not ship, say) only with -v: a build must have none.
"$VENV_PY" -m pip wheel -v --no-deps -w "$work/dist" "$REPO" > "$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
if grep -E -A3 "[A-Za-z]+Warning: " "$work/build.log" >&2; then echo "building the wheel warns (above)" >&2; exit 1; fi
wheel="$(ls "$work"/dist/oda_sft-*.whl)"
echo "[wheel check] built $(basename "$wheel") at $((SECONDS - start)) s"
members="$("$VENV_PY" -m zipfile -l "$wheel")"  # listed once: `grep -q` on a pipe would cut the listing short
for member in oda_sft/demo/dataset_info.json oda_sft/demo/oda_demo.json oda_sft/train_config/tiny_config.yaml \
  oda_sft/datasets_catalog/evidence.toml oda_sft/eval/oda_site/oda_leaderboard_0726.json oda_sft/docs/data.md oda_sft/docs/cluster.md oda_sft/docs/eval.md oda_sft/docs/performance.md \
  oda_sft/eval/data/oda_sft_arithmetic.jsonl oda_sft/eval/data/fork_record.json oda_sft/train/patches/site/sitecustomize.py; do
  grep -q "^$member " <<< "$members" || { echo "wheel lacks $member" >&2; exit 1; }
done

# A fresh venv (with pip) that sees .venv's packages through a .pth line: .venv's own .pth files, among them
# the editable install of this checkout, are not processed, so only the wheel provides oda_sft.
"$VENV_PY" -m venv "$work/venv"
site="$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$VENV_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$site/borrowed-deps.pth"
"$work/venv/bin/python" -m pip install --quiet --no-deps --no-index "$wheel"
echo "[wheel check] installed into a fresh venv at $((SECONDS - start)) s"

run="$work/run"
mkdir -p "$run"
cd "$run"
export PATH="$work/venv/bin:$PATH:$(dirname "$VENV_PY")"  # llamafactory-cli and torchrun come from .venv
export XDG_DATA_HOME="$work/xdg" ODA_SFT_HOME="$work/home"
unset PYTHONPATH ODA_SFT_DATASET_DIR
oda="$work/venv/bin/oda-sft"
where="$("$work/venv/bin/python" -c 'import oda_sft; print(oda_sft.__file__)')"
case "$where" in "$work"/venv/*) ;; *) echo "oda_sft imported from $where, not the wheel" >&2; exit 1 ;; esac
before="$(cd "$(dirname "$where")" && find . -type f -not -name '*.pyc' -exec sha256sum {} + | sort | sha256sum)"

# The docs the help pages point to are the installed wheel's copies, and exist.
for page in "" train "data add" eval; do
  # shellcheck disable=SC2086  # the page names split into words on purpose
  docs="$("$oda" $page --help | grep -o '/[^ ()`]*\.md' || true)"
  test -n "$docs" || [ -z "$page" ] || { echo "oda-sft $page --help names no docs" >&2; exit 1; }
  for doc in $docs; do
    case "$doc" in "$work"/venv/*) test -s "$doc" || { echo "$doc is missing" >&2; exit 1; } ;;
      *) echo "oda-sft $page --help points to $doc, outside the installed wheel" >&2; exit 1 ;; esac
  done
done

"$oda" list-datasets > list.txt
grep -q '^OpenR1-Math-220k ' list.txt && grep -q '^oda_demo ' list.txt || { cat list.txt; exit 1; }
test ! -e "$XDG_DATA_HOME" || { echo "list-datasets created the dataset dir" >&2; exit 1; }
# ODA's published leaderboard is computed from the spreadsheet cells the wheel ships.
"$oda" rank --model llama --oda --json > oda.json
grep -q '"name": "AM-Thinking-v1-Distilled-math"' oda.json || { head -40 oda.json; exit 1; }

"$oda" train --model tiny --dataset oda_demo --output-root saves > train.log 2>&1 || { tail -40 train.log; exit 1; }
test -s saves/tiny/full/sft-oda_demo/seed-42/all_results.json
echo "[wheel check] list-datasets and the tiny demo run from $run at $((SECONDS - start)) s"

printf '%s\n' '{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}' > chat.jsonl
"$oda" data add my_chat chat.jsonl
printf '%s\n' '{"instruction": "Is 6 even?", "output": "<Thought>\n6 = 2*3\n</Thought>\n<Output>\nYes\n</Output>"}' \
  > OpenO1-SFT.jsonl
"$oda" data add OpenO1-SFT OpenO1-SFT.jsonl
"$oda" list-datasets | grep -E '^(my_chat|OpenO1-SFT) ' | grep -c ' yes' | grep -qx 2
test -s "$XDG_DATA_HOME/oda-sft/datasets/my_chat.json"

after="$(cd "$(dirname "$where")" && find . -type f -not -name '*.pyc' -exec sha256sum {} + | sort | sha256sum)"
test "$before" = "$after" || { echo "oda-sft wrote into its installed package" >&2; exit 1; }
test -z "$(git -C "$REPO" status --porcelain)" || { git -C "$REPO" status --porcelain; echo "the checkout changed" >&2; exit 1; }
echo "wheel check passed in $((SECONDS - start)) s"
