#!/usr/bin/env bash
# Builds everything and runs the test suite. Tests that need a GPU skip, with a
# message, on a machine without one; tests that need the real model fetch it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"
if [ -x "$root/scripts/get_model.sh" ]; then
  "$root/scripts/get_model.sh" || echo "test: could not get the SmolLM2 model; its tests will skip" >&2
fi
build=${DSO_BUILD_DIR:-build}
ctest --test-dir "$build" --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@"
