#!/usr/bin/env python3
"""Medians of benches/scale/run.sh's results.tsv, as markdown tables.

  report.py results.tsv
"""
import collections
import statistics
import sys

PHASES = ["validate", "plan-fresh", "apply-fresh", "plan-noop", "plan-release", "apply-cutover"]

rows = collections.defaultdict(list)
state_bytes = {}
with open(sys.argv[1]) as f:
    next(f)
    for line in f:
        tool, n, phase, run, wall, rss = line.rstrip("\n").split("\t")
        if tool == "state-bytes":
            state_bytes[(int(n), phase)] = (int(wall), int(rss))
            continue
        rows[(tool, int(n), phase)].append((float(wall), int(rss)))


def cell(tool, n, phase):
    runs = rows.get((tool, n, phase))
    if not runs:
        return "–"
    wall = statistics.median(r[0] for r in runs)
    rss = statistics.median(r[1] for r in runs) / 1024
    return f"{wall:.2f} s / {rss:.0f} MiB"


sizes = sorted({n for (_, n, _) in rows})
for tool in ("cutover", "terraform"):
    if not any(t == tool for (t, _, _) in rows):
        continue
    print(f"\n### {tool} (median wall / median peak RSS; runs: "
          f"{max(len(v) for (t, _, _), v in rows.items() if t == tool)} max)\n")
    print("| N (resources) | " + " | ".join(PHASES) + " |")
    print("|---" * (len(PHASES) + 1) + "|")
    for n in sizes:
        if any(t == tool and m == n for (t, m, _) in rows):
            print(f"| {n} ({n + n // 2}) | " + " | ".join(cell(tool, n, p) for p in PHASES) + " |")

ns = [n for n in (1000, 3000) if any(t == "cutover" and m == n for (t, m, _) in rows)]
if len(ns) == 2:
    print("\n### cutover growth from N=1,000 to N=3,000 (target: at most 3.5x)\n")
    for p in PHASES:
        a, b = rows.get(("cutover", 1000, p)), rows.get(("cutover", 3000, p))
        if a and b:
            ra = statistics.median(r[0] for r in a)
            rb = statistics.median(r[0] for r in b)
            print(f"- {p}: {rb / max(ra, 0.01):.2f}x ({ra:.2f} s -> {rb:.2f} s)")
if state_bytes:
    print("\n### bytes written to the state file (and its temporary files) by one apply\n")
    print("| N | phase | bytes written | final state size | ratio |")
    print("|---|---|---|---|---|")
    for (n, phase), (written, final) in sorted(state_bytes.items()):
        print(f"| {n} | {phase} | {written:,} | {final:,} | {written / max(final, 1):.1f}x |")
