#!/usr/bin/env bash
# One pass over the GPU work on a machine with a GPU: configure and build for
# sm_90 (incrementally, in build-gpu/), run the GPU tests, the GPU kernel
# microbenchmarks (JSON to OUTDIR/bench.json), then compute-sanitizer memcheck
# and racecheck over a reduced set of GPU tests. Logs go to OUTDIR; a summary
# is printed last. Stages share a time budget (DSO_CHECK_BUDGET_S, default 560 s)
# so that the whole run ends in time and later stages are skipped, not cut.
# DSO_GPU_TEST_FILTER and DSO_GPU_BENCH_FILTER narrow the tests (default
# 'Gpu*') and benchmarks (default 'Gpu').
# Usage: scripts/gpu_check.sh OUTDIR
set -uo pipefail
out=${1:?usage: scripts/gpu_check.sh OUTDIR}
mkdir -p "$out"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${DSO_GPU_BUILD_DIR:-build-gpu}
source "$root/scripts/lib/stages.sh"

build_command="cmake -S . -B '$build' -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 &&
  cmake --build '$build' -j $(nproc) --target dso_tests dso_bench"

sanitizer_filter='GpuTopk.SmallAndAwkwardSizes:GpuTopk.WorkspaceReuse:GpuLabels.*:GpuScores.MatchesCpuScoreLabels:GpuAttention.GatheredMatchesCpu:GpuAttention.IndexedMatchesCpuSparse:GpuAppend.*:GpuGather.MatchesHostCacheRows:GpuPipeline.*:GpuSparq.ChannelsOverOddGrids'
race_filter='GpuTopk.WorkspaceReuse:GpuPipeline.*:GpuSparq.ChannelsOverOddGrids'

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv >"$out/build.log" 2>&1
if stage build "$out/build.log.tmp" 300 bash -c "$build_command"; then
  cat "$out/build.log.tmp" >>"$out/build.log"
  stage tests "$out/tests.log" 180 "$build/tests/dso_tests" --gtest_filter="${DSO_GPU_TEST_FILTER:-Gpu*}"
  stage bench "$out/bench.log" 200 "$build/dso_bench" --benchmark_filter="${DSO_GPU_BENCH_FILTER:-Gpu}" \
    --benchmark_out="$out/bench.json" --benchmark_out_format=json
  stage memcheck "$out/memcheck.log" 150 compute-sanitizer --tool memcheck --error-exitcode 3 \
    "$build/tests/dso_tests" --gtest_filter="$sanitizer_filter"
  stage racecheck "$out/racecheck.log" 120 compute-sanitizer --tool racecheck --error-exitcode 3 \
    "$build/tests/dso_tests" --gtest_filter="$race_filter"
else
  cat "$out/build.log.tmp" >>"$out/build.log"
fi
rm -f "$out/build.log.tmp"

{
  echo "== gpu_check $(date -u +%Y-%m-%dT%H:%MZ) on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1), $((SECONDS - start))s"
  printf '%s\n' "${summary[@]}"
  [ -f "$out/build.log" ] && grep -E "error|FAILED:" "$out/build.log" | head -20
  [ -f "$out/tests.log" ] && grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests ran|Failure|error:" "$out/tests.log" | head -40
  for tool in memcheck racecheck; do
    [ -f "$out/$tool.log" ] && echo "$tool: $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$out/$tool.log" | tail -1)"
  done
  if [ -f "$out/bench.json" ]; then
    python3 - "$out/bench.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
print("benchmark".ljust(58), "ms".rjust(9), " counters")
for b in data["benchmarks"]:
    if b.get("error_occurred"):
        print(b["name"].ljust(58), "ERROR", b.get("error_message", ""))
        continue
    skip = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads", "iterations",
            "real_time", "cpu_time", "time_unit", "family_index", "per_family_instance_index", "label"}
    extra = " ".join(f"{k}={v:.4g}" for k, v in b.items() if k not in skip and isinstance(v, (int, float)))
    print(b["name"].ljust(58), f"{b['real_time']:9.4f}", "", extra)
PY
  fi
} | tee "$out/summary.txt"
