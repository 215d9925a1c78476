#!/usr/bin/env bash
# Calibrates SmolLM2-135M-Instruct on the calibration text and measures the
# accuracy of sparse decoding on the evaluation text (scripts/get_text.sh):
#   calibration/configs/SmolLM2-135M-Instruct.json      the channel config
#   bench/results/<date>-smollm2-eval-<context>-<device>.{jsonl,md}
#   bench/results/<date>-smollm2-passkey-<device>.{jsonl,md}
# Every output records the date, device, command line and the tool's build
# (version, git commit and whether its tree had uncommitted changes).
#
# Environment (defaults are sized for the cpu backend on a small machine):
#   BACKEND=cpu  CONTEXT=2048  WINDOWS=8  SCORE_TOKENS=64  CALIBRATION_TOKENS=16384  BLOCK=2048
#   PASSKEY_CONTEXTS=1024,2048,4096  PASSKEY_DEPTHS=0.1,0.5,0.9  PASSKEY_TRIALS=1
#   STEPS="calibrate eval passkey"
#   DSO_TOOL        a built dsoffload (default: $DSO_BUILD_DIR/dsoffload, DSO_BUILD_DIR=build;
#                   built with scripts/setup.sh where missing)
# The model and the texts are fetched only where missing (scripts/get_model.sh,
# scripts/get_text.sh), so a machine without network runs once they are in place.
# SmolLM2's full context on the cuda backend, the whole table (about 62 x
# SCORE_TOKENS batched decode steps):
#   BACKEND=cuda CONTEXT=8192 WINDOWS=8 SCORE_TOKENS=64 PASSKEY_CONTEXTS=8192 scripts/eval_smollm2.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

backend="${BACKEND:-cpu}"
context="${CONTEXT:-2048}"
windows="${WINDOWS:-8}"
score_tokens="${SCORE_TOKENS:-64}"
calibration_tokens="${CALIBRATION_TOKENS:-16384}"
block="${BLOCK:-2048}"
passkey_contexts="${PASSKEY_CONTEXTS:-1024,2048,4096}"
passkey_depths="${PASSKEY_DEPTHS:-0.1,0.5,0.9}"
passkey_trials="${PASSKEY_TRIALS:-1}"
steps="${STEPS:-calibrate eval passkey}"

model="models/SmolLM2-135M-Instruct.Q4_1.gguf"
config="calibration/configs/SmolLM2-135M-Instruct.json"
tool="${DSO_TOOL:-${DSO_BUILD_DIR:-build}/dsoffload}"
if [[ ! -x "$tool" ]]; then
  [[ -z "${DSO_TOOL:-}" ]] || { echo "eval_smollm2.sh: DSO_TOOL=$tool is not an executable" >&2; exit 1; }
  scripts/setup.sh dsoffload
fi
scripts/get_model.sh
scripts/get_text.sh

date="$(date -u +%Y-%m-%d)"
mkdir -p bench/results calibration/configs

for step in $steps; do
  case "$step" in
    calibrate)
      "$tool" calibrate --model "$model" --text data/calibration.txt --out "$config" \
        --tokens "$calibration_tokens" --block "$block" --backend "$backend"
      "$tool" inspect-config "$config"
      ;;
    eval)
      out="bench/results/$date-smollm2-eval-$context-$backend"
      "$tool" eval --model "$model" --channels "$config" --text data/eval.txt --context "$context" \
        --windows "$windows" --score-tokens "$score_tokens" --backend "$backend" \
        --json "$out.jsonl" --markdown "$out.md" >/dev/null
      echo "wrote $out.jsonl and $out.md"
      ;;
    passkey)
      out="bench/results/$date-smollm2-passkey-$backend"
      "$tool" passkey --model "$model" --channels "$config" --contexts "$passkey_contexts" \
        --depths "$passkey_depths" --trials "$passkey_trials" --channel-divisors 4,8,16 --backend "$backend" \
        --markdown "$out.md" >"$out.jsonl"
      echo "wrote $out.jsonl and $out.md"
      ;;
    *)
      echo "eval_smollm2.sh: unknown step '$step' (calibrate, eval, passkey)" >&2
      exit 1
      ;;
  esac
done
