#!/usr/bin/env bash
# Issue 13's GPU check: the 8B-shaped benchmark, one preset per call, on one H200 (or H100), offline.
#
#   bash benchmarks/gpu_check_8b.sh llama      # call 1: Llama-3.1-8B geometry cut to 4 layers
#   bash benchmarks/gpu_check_8b.sh qwen       # call 2: Qwen2.5-7B geometry cut to 4 layers
#
# Prepare on a machine with package access: copy ../shared/gpu-kit to .gpu-kit/ (git-ignored) and
# run `.gpu-kit/make-wheels.sh .gpu-kit/.whl`; .gpu-kit/ must travel with the checkout.
#
# What one call does (budget: 9 minutes on an H200, kit install and fixture included; CHECK_BUDGET_S):
#   1. install the kit's wheels into /tmp/site, print the versions;
#   2. `oda-sft bench --shape <preset shape> --layers 4 --data std,long --variants raw,fast,default
#      --decide-for 8xH100-80GB,8xH200`: the memory model decides fast for the FULL-SIZE preset on
#      8 GPUs of each card; the bench applies exactly that decision to the 4-layer model, next to the
#      raw recipe, in the same run. Decisions that come out the same (std on both cards) train once.
#      `default` runs last and only if the budget still allows it (--time-budget);
#   3. one PASS/FAIL line per goal (benchmarks/gpu_goals.py);
#   4. the measurements as a throughput table ($OUT/throughput.json, `bench --save-table`): copy it
#      over src/oda_sft/cost/throughput.json to ship them to `oda-sft estimate`.
#
# Writes to $OUT (default /tmp/gpu_check_8b): <preset>/bench.json, bench.txt, goals.txt,
# throughput.json, gpu_check.log, and each run's train.log and trainer_log.jsonl.
set -uo pipefail

T0=$SECONDS
PRESET=${1:-llama}
case "$PRESET" in
  llama) SHAPE=llama3.1-8b ;;
  qwen) SHAPE=qwen2.5-7b ;;
  *) echo "usage: $0 llama|qwen" >&2; exit 2 ;;
esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/gpu_check_8b}/$PRESET
BUDGET_S=${CHECK_BUDGET_S:-530}     # the whole call; the device tool's limit is 600 s
STEPS=${BENCH_STEPS:-10}
WARMUP=${BENCH_WARMUP:-3}
LAYERS=${BENCH_LAYERS:-4}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
log() { echo "[gpu_check_8b +$((SECONDS - T0))s] $*"; }
die() { log "FATAL: $*"; exit 1; }

# shellcheck source=benchmarks/gpu_kit_env.sh
source "$ROOT/benchmarks/gpu_kit_env.sh"
python3 -c "import importlib.metadata as m; print({d: m.version(d) for d in ('torch','transformers','deepspeed','liger-kernel')})" \
  || die "the kit does not import"

LEFT=$((BUDGET_S - (SECONDS - T0) - 25))   # keep 25 s for the goals and the table
log "bench: $SHAPE x $LAYERS layers, std+long, raw / fast under 8xH100-80GB and 8xH200 / default; ${STEPS} steps; runs get ${LEFT}s"
python3 -m oda_sft bench --out "$OUT/bench" --shape "$SHAPE" --layers "$LAYERS" --data std,long \
  --variants raw,fast,default --decide-for 8xH100-80GB,8xH200 --steps "$STEPS" --warmup-steps "$WARMUP" \
  --nproc-per-node 1 --run-timeout 240 --time-budget "$LEFT"
rc=$?
cp "$OUT/bench/bench.json" "$OUT/bench/bench.txt" "$OUT/" 2>/dev/null
for f in "$OUT"/bench/runs/*/*/*/config.yaml; do
  [ -f "$f" ] || continue
  d=$(dirname "$f"); n=$(basename "$(dirname "$d")")_$(basename "$d")
  cp "$d/train.log" "$OUT/${n}.log" 2>/dev/null
  cp "$d/oda_sft_notes.txt" "$OUT/${n}_notes.txt" 2>/dev/null
  find "$d/output" -name trainer_log.jsonl -exec cp {} "$OUT/${n}_trainer_log.jsonl" \; 2>/dev/null
done
rm -rf "$OUT/bench/runs" "$OUT/bench/fixture"  # the random model and tokenized data are not results

if [ -f "$OUT/bench.json" ]; then
  log "goals"
  python3 "$ROOT/benchmarks/gpu_goals.py" "$OUT/bench.json" | tee "$OUT/goals.txt"
  goals=${PIPESTATUS[0]}
  cp "$ROOT/src/oda_sft/cost/throughput.json" "$OUT/throughput.json"
  python3 -m oda_sft bench --save-table --from-json "$OUT/bench.json" --table "$OUT/throughput.json" \
    || log "could not write the throughput table"
else
  goals=1
  log "no bench.json: the bench failed before any run (see above)"
fi
log "done (bench rc=$rc, goals rc=$goals); results in $OUT"
[ "$rc" -eq 0 ] && [ "$goals" -eq 0 ]
