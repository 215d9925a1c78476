#!/usr/bin/env bash
# The runs of the benchmark protocol on an H100 with 125 GiB of
# host memory, each a separate process writing JSON lines to OUTDIR/<run>.jsonl
# and its stderr (fill and allocation times, progress, table) to
# OUTDIR/<run>.log; then the sweep's plot and a Markdown table of everything.
#   (a) llama-3-8b, 256K, batch 2: ds_offload, ds_offload_sync, flexgen at r = 16;
#       ds_offload and flexgen again at r = 8
#   (b) llama-2-7b, 128K, batch 1, r = 8: ds_offload and flexgen
#   (c) llama-3-8b, batch 1, 16K..256K: every policy that fits
# PART picks `headline` (a, b), `sweep` (c) or `all` (the default), so that
# each part fits in a 10-minute slot. Budget, from bytes: a 64 GiB cache takes
# flexgen ~1.3 s a step at ~50 GB/s, so 3 + 20 steps are ~30 s per run, and
# pinning 64 GiB of host memory takes ~45 s per policy (each policy's engine
# pins its own cache). All runs use 20 timed steps after 3 warm-up.
# Usage: scripts/bench_gpu.sh OUTDIR [headline|sweep|all]
set -euo pipefail
out=${1:?usage: scripts/bench_gpu.sh OUTDIR [headline|sweep|all]}
part=${2:-all}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tool=${DSO_TOOL:-$root/build/dsoffload}
mkdir -p "$out"
offload=ds_offload,ds_offload_sync,flexgen
start=$(date +%s)

run() {
  local name=$1
  shift
  local t0
  t0=$(date +%s)
  set -- "$@" --steps 20 --warmup 3
  echo "$name: $tool bench $*" | tee -a "$out/commands.txt"
  # A run that fails is recorded and the others still run.
  "$tool" bench "$@" >"$out/$name.jsonl" 2>"$out/$name.log" || echo "$name: FAILED with status $?" | tee -a "$out/timings.txt"
  echo "$name: $(($(date +%s) - t0)) s (total $(($(date +%s) - start)) s)" | tee -a "$out/timings.txt"
}

if [[ $part == headline || $part == all ]]; then
  run a_llama3_256k_b2_r16 --shape llama-3-8b --context 256K --batch 2 --r 16 --policy "$offload"
  run a_llama3_256k_b2_r8 --shape llama-3-8b --context 256K --batch 2 --r 8 --policy ds_offload,flexgen
  run b_llama2_128k_b1_r8 --shape llama-2-7b --context 128K --batch 1 --r 8 --policy ds_offload,flexgen
fi
if [[ $part == sweep || $part == all ]]; then
  for context in 16K 32K 64K 128K 256K; do
    # No --policy: the offload policies, and dense_gpu and ds_gpu where they fit.
    run "c_sweep_llama3_${context}" --shape llama-3-8b --context "$context" --batch 1
  done
  # The table below is written whether or not the plot could be made.
  python3 "$root/scripts/plot_bench.py" "$out"/c_sweep_*.jsonl --shape llama-3-8b --batch 1 -o "$out/sweep.png" ||
    echo "sweep: no plot made (see above); the table is written all the same"
fi
python3 "$root/scripts/bench_table.py" "$out" >"$out/results.md"
plot=""
[[ -s "$out/sweep.png" ]] && plot=", $out/sweep.png"
echo "done in $(($(date +%s) - start)) s: $out/results.md$plot"
