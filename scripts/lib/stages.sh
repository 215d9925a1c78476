# Time-boxed stages for the GPU check scripts: each stage runs within the
# smaller of its own cap and what is left of the run's budget
# (DSO_CHECK_BUDGET_S, default 560 s), so a run ends in time and later stages
# are skipped rather than cut. Outcomes accumulate in the array `summary`.
# Sourced, not run.
budget=${DSO_CHECK_BUDGET_S:-560}
start=$SECONDS
declare -a summary

left() { echo $((budget - (SECONDS - start))); }

# stage NAME LOG CAP_SECONDS COMMAND...: runs within min(CAP, time left), records the outcome.
stage() {
  local name=$1 log=$2 cap=$3
  shift 3
  local limit
  limit=$(left)
  ((cap < limit)) && limit=$cap
  if ((limit < 20)); then
    summary+=("$name: skipped (time budget spent)")
    return 1
  fi
  local t0=$SECONDS
  timeout --signal=KILL "$limit" "$@" >"$log" 2>&1
  local rc=$?
  local took=$((SECONDS - t0))
  if ((rc == 0)); then
    summary+=("$name: ok (${took}s)")
  elif ((rc == 137)); then
    summary+=("$name: TIMED OUT after ${took}s")
  else
    summary+=("$name: FAILED rc=$rc (${took}s), see $(basename "$log")")
  fi
  return $rc
}

# binaries OUT BUILD PREBUILT: sets tests_bin and tool_bin to the dso_tests and
# dsoffload in the directory PREBUILT where they start here (built elsewhere for
# sm_90), else builds them there in BUILD, as a stage; logs to OUT/build.log,
# which starts with the GPU's name, memory and driver.
binaries() {
  local out=$1 build=$2 prebuilt=$3
  tests_bin=$build/tests/dso_tests
  tool_bin=$build/dsoffload
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/build.log" 2>&1
  if [[ -n $prebuilt ]] && "$prebuilt/dso_tests" --gtest_list_tests >/dev/null 2>>"$out/build.log"; then
    tests_bin=$prebuilt/dso_tests
    tool_bin=$prebuilt/dsoffload
    summary+=("build: prebuilt binaries from $prebuilt")
    return 0
  fi
  stage build "$out/build.log.tmp" 300 bash -c "cmake -S . -B '$build' -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=90 && cmake --build '$build' -j $(nproc) --target dso_tests dsoffload"
  local rc=$?
  cat "$out/build.log.tmp" >>"$out/build.log"
  rm -f "$out/build.log.tmp"
  return $rc
}
