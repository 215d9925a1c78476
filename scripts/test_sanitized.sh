#!/usr/bin/env bash
# The test suite again, built with AddressSanitizer (leak checking included)
# and UndefinedBehaviorSanitizer into build-asan/. The tool the command-line
# tests run is built the same way. Any report fails the test it happens in.
# CUDA sources are compiled by nvcc without sanitizers.
# Usage: scripts/test_sanitized.sh [ctest arguments ...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export DSO_BUILD_DIR=${DSO_ASAN_BUILD_DIR:-build-asan}
DSO_CMAKE_ARGS="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DDSO_SANITIZE=ON" "$root/scripts/setup.sh" dso_tests

# halt_on_error: the first report ends the process with a failure status
# (the build adds -fno-sanitize-recover=all for the same end).
# protect_shadow_gap=0: the CUDA driver maps memory where ASan would reserve
# its shadow gap; without it no CUDA allocation succeeds on a GPU machine.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:protect_shadow_gap=0:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
ctest --test-dir "$DSO_BUILD_DIR" --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@"
