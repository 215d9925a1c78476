#!/usr/bin/env bash
# Builds the tool and runs the decode benchmark with its defaults: on a GPU the
# offload policies at long context, without one the CPU backend at a small size.
# Extra arguments go to `dsoffload bench` (see build/dsoffload bench --help).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh" dsoffload
exec "${DSO_BUILD_DIR:-build}/dsoffload" bench "$@"
