#!/usr/bin/env bash
# Installs what the build needs (Debian/Ubuntu) and configures + builds the
# project into build/. Sourced by bench.sh and test.sh; safe to run again.
# Usage: scripts/setup.sh [cmake target ...]   (default: all)
# Environment: DSO_BUILD_DIR (default build), DSO_CMAKE_ARGS (configure
# options, applied whenever given), DSO_EXTRA_PACKAGES (more Debian packages
# a stage needs, e.g. the fuzz stage's clang).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

packages=(cmake ninja-build g++ pkg-config python3 python3-pip libgtest-dev libbenchmark-dev libhwloc-dev
          nlohmann-json3-dev libcli11-dev libopenblas-dev ${DSO_EXTRA_PACKAGES:-})
missing=()
if command -v dpkg-query >/dev/null; then
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if ((${#missing[@]})); then
  line="apt-get install -y ${missing[*]}"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $line -qq >/dev/null
  else
    echo "setup: missing Debian packages; run as root:  sudo $line" >&2
    exit 1
  fi
fi

if ! command -v nvcc >/dev/null; then
  for d in /usr/local/cuda/bin /usr/local/cuda-13.0/bin; do
    [ -x "$d/nvcc" ] && export PATH="$d:$PATH" && break
  done
fi
if ! command -v nvcc >/dev/null; then
  echo "setup: the CUDA toolkit (nvcc, CUDA 12.4 or newer) is needed to build, a GPU is not." >&2
  echo "       Install it from your distribution (e.g. the cuda-toolkit package of NVIDIA's repository)" >&2
  echo "       and put its bin/ folder on PATH." >&2
  exit 1
fi

build=${DSO_BUILD_DIR:-build}
if [ ! -f "$build/CMakeCache.txt" ] || [ -n "${DSO_CMAKE_ARGS:-}" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${DSO_CMAKE_ARGS:-} >/dev/null
fi
jobs=$(nproc 2>/dev/null || echo 2)
if (($#)); then
  cmake --build "$build" -j "$jobs" --target "$@"
else
  cmake --build "$build" -j "$jobs"
fi
