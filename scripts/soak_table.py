#!/usr/bin/env python3
"""A Markdown report of one `dsoffload soak --json FILE` run: the run's
settings, a table of its samples, and the verdict (or a note where the run
stopped before one).

usage: soak_table.py SOAK.jsonl > results.md
"""
import json
import sys

MIB = 1 << 20


def mib(value):
    return "-" if value is None else f"{value / MIB:,.1f}"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        records = [json.loads(line) for line in f if line.startswith("{")]
    runs = [r for r in records if r.get("record") == "run"]
    samples = [r for r in records if r.get("record") == "sample"]
    verdicts = [r for r in records if r.get("record") == "verdict"]
    if not runs:
        sys.exit(f"{sys.argv[1]}: no run record: not the output of dsoffload soak --json")
    run = runs[0]

    print(f"# Soak: {run['policy']} on {run['shape']}, {run['backend']}\n")
    print(f"- date: {run['date']}")
    print(f"- device: {run['device']}")
    print(f"- command: `{run['command']}`")
    print(f"- weights: {run['weights']}, fill: {run['fill']}, dtype: {run['dtype']}")
    print(f"- context: {run['context']} tokens, batch {run['batch']}, {run['steps']} steps, "
          f"sampled every {run['sample_every']}")
    print(f"- k: {run['k']}, r: {run['r']}, sink: {run['sink']}, recent: {run['recent']}")
    print(f"- context filled in {run['fill_s']:.1f} s\n")

    print("| step | ms/step median | ms/step max | GPU in use MiB | RSS MiB | peak RSS MiB "
          "| cache tokens | logits finite | tokens in vocab |")
    print("|---:|---:|---:|---:|---:|---:|---:|:---:|:---:|")
    for s in samples:
        print(f"| {s['step']} | {s['ms_median']:.2f} | {s['ms_max']:.2f} | {mib(s['gpu_mem_bytes'])} "
              f"| {mib(s['rss_bytes'])} | {mib(s['peak_rss_bytes'])} | {s['cache_tokens']} "
              f"| {'yes' if s['finite'] else 'NO'} | {'yes' if s['tokens_in_vocab'] else 'NO'} |")
    print()

    if not verdicts:
        print(f"No verdict: the run stopped after {len(samples)} samples.")
        return
    v = verdicts[0]
    gpu = ("" if v["gpu_growth_bytes"] is None
           else f"GPU memory in use grew {v['gpu_growth_bytes']} bytes (0 allowed); ")
    print(f"**Verdict: {'PASS' if v['pass'] else 'FAIL'}.** Compared with the first sample (the end of the "
          f"warm-up): {gpu}RSS grew {mib(v['rss_growth_bytes'])} MiB "
          f"({mib(v['rss_allowed_bytes'])} MiB allowed, {run['rss_allowed_growth']}). "
          f"Every logit finite: {'yes' if v['outputs_finite'] else 'NO'}; "
          f"every greedy token in the vocabulary: {'yes' if v['tokens_in_vocab'] else 'NO'}.")


if __name__ == "__main__":
    main()
