#!/usr/bin/env bash
# The reliability pass on a machine with a GPU, in one call: compute-sanitizer
# memcheck, racecheck and synccheck over the GPU tests, then a soak of
# `dsoffload soak` (10,000 decode steps of ds_offload on llama-3-8b at a 128K
# context, memory and output health sampled every 1,000 steps; JSON lines to
# OUTDIR/soak.jsonl). Logs go to OUTDIR; a summary (the sanitizers' summary
# lines, the soak's verdict) is printed last and kept in OUTDIR/summary.txt.
#
# Builds for sm_90 incrementally in build-gpu-engine/ (DSO_RELIABILITY_BUILD_DIR),
# unless DSO_RELIABILITY_PREBUILT=DIR (or DSO_ENGINE_PREBUILT=DIR) names a
# directory whose dso_tests and dsoffload, built elsewhere for sm_90, start here.
# STAGES picks and orders the stages (default "memcheck racecheck synccheck
# soak"), so that the work can be split over calls; they share a time budget
# (DSO_CHECK_BUDGET_S, default 580 s), and a stage the budget cannot hold is
# skipped, not cut. DSO_MEMCHECK_FILTER, DSO_RACECHECK_FILTER,
# DSO_SYNCCHECK_FILTER and DSO_SOAK_ARGS replace the defaults below.
# Exit status: 0 where every stage run passed, 1 otherwise.
# Usage: [STAGES="..."] scripts/gpu_reliability.sh OUTDIR
set -uo pipefail
out=${1:?usage: scripts/gpu_reliability.sh OUTDIR}
mkdir -p "$out"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${DSO_RELIABILITY_BUILD_DIR:-build-gpu-engine}
export DSO_CHECK_BUDGET_S=${DSO_CHECK_BUDGET_S:-580}
source "$root/scripts/lib/stages.sh"
stages=${STAGES:-memcheck racecheck synccheck soak}

# The sanitizers slow kernels 10-100x: the tests at benchmark sizes (long
# contexts, regions past 2 GiB, the model's product shapes, every policy at
# once) and the one that needs the SmolLM2 file stay out; what is left covers
# every kernel at awkward sizes. racecheck, the slowest, takes the kernels that
# share memory between threads.
big_tests='*LongContext*:*BeyondTwoGiB*:GpuSmolLM2.*:*MatmulMatchesTheCpuOnTheRoundedInput*:*EveryPolicyMatchesCpuEngine*'
memcheck_filter=${DSO_MEMCHECK_FILTER:-"Gpu*:-$big_tests"}
racecheck_filter=${DSO_RACECHECK_FILTER:-'GpuTopk.WorkspaceReuse:GpuPipeline.*:GpuNonfinite.*:GpuOps.ArgmaxEqualsTheCpuWithTiesAndNan:GpuEngineTest/0.QuickCasesMatchCpuEngine:GpuPrefetcher.*'}
synccheck_filter=${DSO_SYNCCHECK_FILTER:-"Gpu*:-$big_tests"}
soak_args=${DSO_SOAK_ARGS:-"--backend cuda --shape llama-3-8b --context 131072 --batch 1 --steps 10000 --sample-every 1000"}

binaries "$out" "$build" "${DSO_RELIABILITY_PREBUILT:-${DSO_ENGINE_PREBUILT:-}}"

failed=0
sanitize() {  # sanitize TOOL CAP FILTER
  stage "$1" "$out/$1.log" "$2" compute-sanitizer --tool "$1" --error-exitcode 3 "$tests_bin" --gtest_filter="$3" ||
    failed=1
}
for s in $stages; do
  case $s in
    memcheck) sanitize memcheck 130 "$memcheck_filter" ;;
    racecheck) sanitize racecheck 80 "$racecheck_filter" ;;
    synccheck) sanitize synccheck 150 "$synccheck_filter" ;;
    # Pinning 16 GiB and the fill take ~15 s, the steps ~20-30 ms each: the
    # soak takes what the budget has left. Kernels load eagerly: a kernel
    # first used late (k grows with the context) would otherwise load its
    # module then and read as GPU memory growth.
    soak) stage soak "$out/soak.log" "$(left)" env CUDA_MODULE_LOADING=EAGER \
      bash -c "'$tool_bin' soak $soak_args --json '$out/soak.jsonl'" ||
      failed=1 ;;
    *) summary+=("$s: unknown stage (choose memcheck, racecheck, synccheck, soak)"); failed=1 ;;
  esac
done

{
  echo "== gpu_reliability $(date -u +%Y-%m-%dT%H:%MZ) on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1), $((SECONDS - start))s"
  printf '%s\n' "${summary[@]}"
  [ -f "$out/build.log" ] && grep -E "error|FAILED:" "$out/build.log" | head -20
  for tool in memcheck racecheck synccheck; do
    [ -f "$out/$tool.log" ] || continue
    echo "$tool: $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$out/$tool.log" | tail -1) ($(grep -cE '^\[       OK \]' "$out/$tool.log") tests passed, $(grep -cE '^\[  FAILED  \] [A-Za-z]' "$out/$tool.log") failed)"
  done
  if [ -f "$out/soak.log" ]; then
    tr '\r' '\n' <"$out/soak.log" | grep -E "^ +step|^ +[0-9]+ " | tail -12
    echo "soak: $(grep -hE "^verdict:|^dsoffload:" "$out/soak.log" | tail -1)"
  fi
} | tee "$out/summary.txt"
exit $failed
