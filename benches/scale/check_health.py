#!/usr/bin/env python3
"""Assert that the health server saw enough checks for every environment.

  check_health.py PORT N blue=1 green=2
      every blue["sI"] (path /healthz/sI/blue, I < N/2) was requested at
      least once and every green["sI"] at least twice (refresh + health
      gate) since the last /reset; prints how many
      TCP connections those checks came over (health checks share clients
      and kept-alive connections)
"""
import json
import sys
import urllib.error
import urllib.request

port, n = int(sys.argv[1]), int(sys.argv[2])
mins = dict((c, int(m)) for c, m in (a.split("=") for a in sys.argv[3:]))
with urllib.request.urlopen(f"http://127.0.0.1:{port}/counts", timeout=10) as r:
    counts = json.load(r)
short = [
    f"{c}[s{i}]={counts.get(f's{i}/{c}', 0)}"
    for c, m in mins.items()
    for i in range(n // 2)
    if counts.get(f"s{i}/{c}", 0) < m
]
if short:
    print(f"FAIL: {len(short)} environments checked fewer times than {mins} (e.g. {short[:3]})", file=sys.stderr)
    sys.exit(1)
connections = "?"
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/connections", timeout=10) as r:
        # The /counts request above came over a connection of its own too.
        connections = json.load(r)["connections"] - 1
except urllib.error.HTTPError:
    pass
print(
    f"ok: every environment checked as expected {mins} "
    f"({sum(counts.values())} requests over {connections} connections)"
)
