#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer into build-fuzz/, then runs each for a bounded
# time on its committed seed corpus fuzz/corpus/<target>/ (only read: inputs
# found to add coverage go to build-fuzz/corpus/<target>/). Prints libFuzzer's
# "Done N runs" line per target. A crash, sanitizer report, leak or slow input
# fails the run and leaves the input in build-fuzz/crashes/<target>/; turn it
# into a test in tests/ before fixing it.
# Usage: scripts/fuzz.sh [target ...]   (default: every fuzz/<target>_fuzz.cpp)
# Environment: DSO_FUZZ_SECONDS (per target, default 60).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
seconds=${DSO_FUZZ_SECONDS:-60}
build=${DSO_FUZZ_BUILD_DIR:-build-fuzz}

if (($#)); then
  targets=("$@")
else
  targets=()
  for f in fuzz/*_fuzz.cpp; do
    t=$(basename "$f" _fuzz.cpp)
    targets+=("$t")
  done
fi
binaries=()
for t in "${targets[@]}"; do binaries+=("fuzz_$t"); done

# libFuzzer ships with clang's runtime libraries (libclang-rt-<version>-dev,
# which libclang-rt-dev names for the distribution's clang).
DSO_EXTRA_PACKAGES="clang libclang-rt-dev" DSO_BUILD_DIR="$build" \
  DSO_CMAKE_ARGS="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DDSO_FUZZ=ON -DBUILD_TESTING=OFF" \
  "$root/scripts/setup.sh" "${binaries[@]}"

export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
declare -A max_len=([channel_config]=4096 [gguf]=16384 [cli]=512 [report_line]=2048)
failed=0
for t in "${targets[@]}"; do
  [ -d "fuzz/corpus/$t" ] || { echo "fuzz: no seed corpus fuzz/corpus/$t" >&2; exit 1; }
  mkdir -p "$build/corpus/$t" "$build/crashes/$t" "$build/logs"
  log="$build/logs/$t.log"
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  status=0
  "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len="${max_len[$t]:-4096}" -timeout=10 \
    -artifact_prefix="$build/crashes/$t/" -print_final_stats=1 "${dict[@]}" \
    "$build/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1 || status=$?
  done_line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -1 || true)
  if ((status == 0)); then
    echo "fuzz $t: ${done_line:-no Done line (see $log)}; corpus $(ls "$build/corpus/$t" | wc -l) inputs"
  else
    failed=1
    echo "fuzz $t: FAILED (status $status); input(s) in $build/crashes/$t/, log $log:" >&2
    grep -E -A40 'ERROR: |runtime error|deadly signal|Test unit written' "$log" | head -80 >&2 || tail -40 "$log" >&2
  fi
done
exit $failed
