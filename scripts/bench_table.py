#!/usr/bin/env python3
"""A Markdown table of every JSON line in OUTDIR/*.jsonl (what scripts/bench_gpu.sh
writes), with the date, device and command of each run (OUTDIR/commands.txt).

usage: bench_table.py OUTDIR > results.md
"""
import glob
import json
import os
import sys


def commands(outdir):
    found = {}
    path = os.path.join(outdir, "commands.txt")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                name, _, command = line.strip().partition(": ")
                found[name] = command
    return found


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    cmds = commands(outdir)
    print("# Decode benchmark: whole decode steps\n")
    for path in sorted(glob.glob(os.path.join(outdir, "*.jsonl"))):
        name = os.path.basename(path)[: -len(".jsonl")]
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.startswith("{")]
        if not rows:
            print(f"## {name}\n\nno results (see {name}.log)\n")
            continue
        first = rows[0]
        print(f"## {name}\n")
        print(f"- date: {first['date']}")
        print(f"- device: {first['device']}")
        # Runs record their own command line; older ones only in commands.txt.
        print(f"- command: `{first.get('command') or cmds.get(name, '?')}`")
        print(f"- model: {first['shape']} ({first['weights']} weights, {first['fill']} fill), "
              f"context {first['context']}, batch {first['batch']}, median of {first['steps']} steps "
              f"after {first['warmup']}")
        pcie = first["pcie_h2d_GBps"]
        print(f"- contiguous pinned H2D measured in the run: {pcie:.1f} GB/s\n" if pcie else "")
        print("| policy | k | r | ms/step | tokens/s | H2D MiB/step | H2D GB/s | PCIe floor ms | floor ratio |"
              " host GiB | GPU GiB |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            floor = "-" if r["pcie_floor_ms"] is None else f"{r['pcie_floor_ms']:.2f}"
            ratio = "-" if r["floor_ratio"] is None else f"{r['floor_ratio']:.2f}"
            print(f"| {r['policy']} | {r['k']} | {r['r']} | {r['ms_per_step']:.2f} | {r['tokens_per_s']:.2f} | "
                  f"{r['h2d_bytes_per_step'] / 2**20:.1f} | {r['h2d_GBps']:.2f} | {floor} | {ratio} | "
                  f"{r['host_mem_bytes'] / 2**30:.2f} | {r['gpu_mem_bytes'] / 2**30:.2f} |")
        print()


if __name__ == "__main__":
    main()
