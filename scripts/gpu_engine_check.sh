#!/usr/bin/env bash
# One pass over the cuda engine on a machine with a GPU: build for sm_90
# (incrementally, in build-gpu-engine/), run the engine and prefetcher tests,
# compute-sanitizer memcheck and racecheck over a reduced set, and a short
# `dsoffload bench --backend cuda` at the llama-3-8b shape and a 32K context.
# Logs go to OUTDIR; a summary is printed last. Stages share a time budget
# (DSO_CHECK_BUDGET_S, default 560 s) so that the run ends in time and later
# stages are skipped, not cut. DSO_ENGINE_PREBUILT=DIR runs the dso_tests and
# dsoffload binaries found in DIR (built elsewhere for sm_90) instead of
# building, where they start here.
# Usage: scripts/gpu_engine_check.sh OUTDIR
set -uo pipefail
out=${1:?usage: scripts/gpu_engine_check.sh OUTDIR}
mkdir -p "$out"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${DSO_ENGINE_BUILD_DIR:-build-gpu-engine}
source "$root/scripts/lib/stages.sh"

binaries "$out" "$build" "${DSO_ENGINE_PREBUILT:-}"

engine_tests='GpuEngine*:GpuPrefetcher*'
sanitized='GpuEngineTest/*.QuickCasesMatchCpuEngine:GpuPrefetcher.*:GpuEngine.SpeculativeLayerWithoutPrefetchIsRefused'
raced='GpuEngineTest/0.QuickCasesMatchCpuEngine:GpuPrefetcher.*'
bench=("$tool_bin" bench --backend cuda --shape llama-3-8b --context 32768 --batch 1 --warmup 2)

if [[ -x $tests_bin ]]; then
  stage tests "$out/tests.log" 300 "$tests_bin" --gtest_filter="$engine_tests"
  stage memcheck "$out/memcheck.log" 150 compute-sanitizer --tool memcheck --error-exitcode 3 \
    "$tests_bin" --gtest_filter="$sanitized"
  stage racecheck "$out/racecheck.log" 100 compute-sanitizer --tool racecheck --error-exitcode 3 \
    "$tests_bin" --gtest_filter="$raced"
  # Every policy, then the sparse and fetching ones again with phase times (CUDA events).
  stage bench "$out/bench.log" 200 bash -c "$(printf '%q ' "${bench[@]}") --steps 10 >'$out/bench.jsonl' &&
    $(printf '%q ' "${bench[@]}") --steps 5 --phases --policy ds_gpu,ds_offload,ds_offload_sync,flexgen \
    >>'$out/bench.jsonl'"
fi

{
  echo "== gpu_engine_check $(date -u +%Y-%m-%dT%H:%MZ) on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1), $((SECONDS - start))s"
  printf '%s\n' "${summary[@]}"
  [ -f "$out/build.log" ] && grep -E "error|FAILED:" "$out/build.log" | head -20
  [ -f "$out/tests.log" ] && grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests ran|Failure|error:" "$out/tests.log" | head -40
  for tool in memcheck racecheck; do
    [ -f "$out/$tool.log" ] && echo "$tool: $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$out/$tool.log" | tail -1)"
  done
  [ -f "$out/bench.log" ] && tr '\r' '\n' <"$out/bench.log" | grep -vE "^filling|^\s*$" | tail -24
} | tee "$out/summary.txt"
