#!/usr/bin/env python3
"""Medians of benches/scale/run.sh's results.tsv, as markdown tables.

  report.py results.tsv
"""
import collections
import math
import statistics
import sys

PHASES = ["validate", "plan-fresh", "apply-fresh", "plan-noop", "plan-release", "apply-cutover"]

rows = collections.defaultdict(list)
state_bytes = {}
file_bytes = {}
instructions = {}
baseline_instructions = {}
with open(sys.argv[1]) as f:
    next(f)
    for line in f:
        tool, n, phase, run, wall, rss, cpu = line.rstrip("\n").split("\t")
        if tool == "state-bytes":
            state_bytes[(int(n), phase)] = (int(wall), int(rss))
            continue
        if tool == "file-bytes":
            file_bytes[(int(n), phase)] = int(wall)
            continue
        if tool == "instructions":
            instructions[(int(n), phase)] = int(wall)
            continue
        if tool == "instructions-baseline":
            baseline_instructions[(int(n), phase)] = int(wall)
            continue
        rows[(tool, int(n), phase)].append((float(wall), int(rss), float(cpu)))


def cell(tool, n, phase):
    runs = rows.get((tool, n, phase))
    if not runs:
        return "–"
    wall = statistics.median(r[0] for r in runs)
    rss = statistics.median(r[1] for r in runs) / 1024
    return f"{wall:.2f} s / {rss:.0f} MiB"


sizes = sorted({n for (_, n, _) in rows})
for tool in ("cutover", "baseline", "terraform"):
    if not any(t == tool for (t, _, _) in rows):
        continue
    print(f"\n### {tool} (median wall / median peak RSS; runs: "
          f"{max(len(v) for (t, _, _), v in rows.items() if t == tool)} max)\n")
    print("| N (resources) | " + " | ".join(PHASES) + " |")
    print("|---" * (len(PHASES) + 1) + "|")
    for n in sizes:
        if any(t == tool and m == n for (t, m, _) in rows):
            print(f"| {n} ({n + n // 2}) | " + " | ".join(cell(tool, n, p) for p in PHASES) + " |")

if any(t == "baseline" for (t, _, _) in rows):
    print("\n### cutover against the baseline build, same run (new / old, median wall; median peak RSS)\n")
    print("| N | " + " | ".join(PHASES) + " |")
    print("|---" * (len(PHASES) + 1) + "|")
    for n in sizes:
        cells = []
        for p in PHASES:
            new, old = rows.get(("cutover", n, p)), rows.get(("baseline", n, p))
            if not (new and old):
                cells.append("–")
                continue
            w = statistics.median(r[0] for r in new) / max(statistics.median(r[0] for r in old), 0.001)
            m = statistics.median(r[1] for r in new) / max(statistics.median(r[1] for r in old), 1)
            cells.append(f"{w:.2f}x; {m:.2f}x")
        print(f"| {n} | " + " | ".join(cells) + " |")

def per_3x(ratio, n_from, n_to):
    """A growth of `ratio` from N = n_from to n_to, as the growth per 3x N at
    the same exponent (3,000 -> 10,000 is 3.33x N)."""
    return ratio ** (math.log(3) / math.log(n_to / n_from))


ns = sorted({m for (t, m, _) in rows if t == "cutover"})
if len(ns) >= 2:
    print("\n### cutover growth between sizes (target: at most 3.5x per 3x N)\n")
    print("| phase | from N | to N | wall | per 3x N | CPU | per 3x N |")
    print("|---|---|---|---|---|---|---|")
    for p in PHASES:
        for n_from, n_to in zip(ns, ns[1:]):
            a, b = rows.get(("cutover", n_from, p)), rows.get(("cutover", n_to, p))
            if a and b:
                ra = statistics.median(r[0] for r in a)
                rb = statistics.median(r[0] for r in b)
                ca = statistics.median(r[2] for r in a)
                cb = statistics.median(r[2] for r in b)
                w, c = rb / max(ra, 0.001), cb / max(ca, 0.001)
                print(f"| {p} | {n_from} | {n_to} | {w:.2f}x ({ra:.3f} s -> {rb:.3f} s) | "
                      f"{per_3x(w, n_from, n_to):.2f}x | {c:.2f}x ({ca:.3f} s -> {cb:.3f} s) | "
                      f"{per_3x(c, n_from, n_to):.2f}x |")
if any(t == "haproxy-cpu" for (t, _, _) in rows):
    print("\n### CPU time of HAProxy and of the health server during cutover's runs (median s)\n")
    print("| N | phase | cutover | HAProxy | health server |")
    print("|---|---|---|---|---|")
    for n in sizes:
        for p in PHASES:
            co = rows.get(("cutover", n, p))
            hap, hs = rows.get(("haproxy-cpu", n, p)), rows.get(("health-cpu", n, p))
            if co and hap and hs:
                med = lambda rs: statistics.median(r[2] for r in rs)
                print(f"| {n} | {p} | {med(co):.2f} | {med(hap):.2f} | {med(hs):.2f} |")
if state_bytes:
    print("\n### bytes written to the state file (and its temporary files) by one apply\n")
    print("| N | phase | bytes written | final state size | ratio |")
    print("|---|---|---|---|---|")
    for (n, phase), (written, final) in sorted(state_bytes.items()):
        print(f"| {n} | {phase} | {written:,} | {final:,} | {written / max(final, 1):.1f}x |")
if file_bytes:
    print("\n### size of the plan of N/2 cut-overs\n")
    print("| N | saved plan (`plan --out`) | `plan --json` |")
    print("|---|---|---|")
    for n in sorted({n for (n, _) in file_bytes}):
        print(f"| {n} | {file_bytes.get((n, 'plan'), 0):,} | {file_bytes.get((n, 'plan.json'), 0):,} |")
if instructions:
    print("\n### instructions executed by cutover (callgrind), one run\n")
    for (n, phase), count in sorted(instructions.items()):
        print(f"- N={n} {phase}: {count:,}")
    sizes_i = sorted({n for (n, _) in instructions})
    for phase in sorted({p for (_, p) in instructions}):
        for n_from, n_to in zip(sizes_i, sizes_i[1:]):
            a, b = instructions.get((n_from, phase)), instructions.get((n_to, phase))
            if a and b:
                print(f"- growth {n_from:,} -> {n_to:,}, {phase}: {b / a:.2f}x "
                      f"({per_3x(b / a, n_from, n_to):.2f}x per 3x N)")
if baseline_instructions:
    print("\n### instructions, cutover against the baseline build (callgrind, one run each)\n")
    print("| N | phase | baseline | cutover | new / old |")
    print("|---|---|---|---|---|")
    for (n, phase), old in sorted(baseline_instructions.items()):
        new = instructions.get((n, phase))
        if new:
            print(f"| {n} | {phase} | {old:,} | {new:,} | {new / old:.3f}x |")
