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
