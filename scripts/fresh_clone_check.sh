#!/usr/bin/env bash
# What a fresh clone needs beyond the build, run as a newcomer runs it: the
# model (scripts/get_model.sh), the texts (scripts/get_text.sh), and the
# benchmark plot (scripts/plot_bench.py, the one script that needs a package
# outside Python's standard library: python3-matplotlib, installed here as
# root through scripts/setup.sh) drawn from a committed sweep.
# Usage: scripts/fresh_clone_check.sh [OUTDIR]   (the plot goes to OUTDIR, default a temporary folder)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/get_model.sh
scripts/get_text.sh
DSO_EXTRA_PACKAGES=python3-matplotlib scripts/setup.sh dsoffload
if (($#)); then
  out=$1
  mkdir -p "$out"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
# Debian's package serves Debian's interpreter; a python3 earlier on PATH
# (pyenv, a virtual environment) may lack it.
python=python3
python3 -c "import matplotlib" 2>/dev/null || [[ ! -x /usr/bin/python3 ]] || python=/usr/bin/python3
sweep=bench/results/decode_h100_2026-11-22_v2
"$python" scripts/plot_bench.py "$sweep"/c_sweep_*.jsonl --shape llama-3-8b --batch 1 -o "$out/sweep.png"
[[ -s "$out/sweep.png" ]] || { echo "fresh_clone_check.sh: plot_bench.py wrote no $out/sweep.png" >&2; exit 1; }
echo "fresh_clone_check.sh: model, texts and plot in place"
