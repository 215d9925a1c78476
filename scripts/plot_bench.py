#!/usr/bin/env python3
"""Plots decode throughput against context, one line per policy, from the JSON
lines that `dsoffload bench` prints (one object per policy and run).

usage: plot_bench.py RESULTS.jsonl [...] -o PLOT.png [--shape llama-3-8b] [--batch 2]
"""
import argparse
import collections
import json
import sys

# The one package outside Python's standard library that a script here needs.
INSTALL_MATPLOTLIB = ("plot_bench: matplotlib is needed to plot: as root, apt-get install python3-matplotlib "
                      "(Debian/Ubuntu, for /usr/bin/python3), or python3 -m pip install matplotlib")


def pyplot():
    try:
        import matplotlib
    except ModuleNotFoundError:
        sys.exit(INSTALL_MATPLOTLIB)
    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def load(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    rows.append(json.loads(line))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--shape")
    ap.add_argument("--batch", type=int)
    args = ap.parse_args()

    rows = [r for r in load(args.results)
            if (args.shape is None or r["shape"] == args.shape)
            and (args.batch is None or r["batch"] == args.batch)]
    if not rows:
        sys.exit("plot_bench: no rows match")
    lines = collections.defaultdict(dict)
    for r in rows:
        lines[(r["policy"], r.get("r"))][r["context"]] = r["tokens_per_s"]

    fig, ax = pyplot().subplots(figsize=(7, 4.5))
    for (policy, r), points in sorted(lines.items(), key=lambda kv: str(kv[0])):
        xs = sorted(points)
        label = policy if r is None or policy in ("flexgen", "dense_gpu") else f"{policy} (r={r})"
        ax.plot(xs, [points[x] for x in xs], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sorted({c for p in lines.values() for c in p}))
    ax.set_xticklabels([f"{c // 1024}K" for c in ax.get_xticks()])
    ax.set_xlabel("context (tokens)")
    ax.set_ylabel("decode tokens/s (batch total)")
    first = rows[0]
    ax.set_title(f"{first['shape']}, batch {first['batch']}, {first['device']}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
