#!/usr/bin/env python3
"""Run one command and record `wall_s peak_rss_kib cpu_s` on one line.

  measure.py OUT STDOUT STDERR -- CMD...

The command runs under /usr/bin/time, which gives its peak RSS. Wall time
is taken here from a monotonic clock, and CPU time (user + system) from the
rusage wait4 returns for /usr/bin/time, which includes the command it
waited for: both in microseconds, where /usr/bin/time prints hundredths of
a second, too coarse for runs of a few hundredths. Exits with the command's
status; the figures are written to OUT.
"""
import os
import subprocess
import sys
import tempfile
import time

out, stdout, stderr, sep, *cmd = sys.argv[1:]
assert sep == "--" and cmd, __doc__
with tempfile.NamedTemporaryFile("r", prefix="measure.", suffix=".time") as usage, \
        open(stdout, "wb") as so, open(stderr, "wb") as se:
    start = time.perf_counter()
    child = subprocess.Popen(
        ["/usr/bin/time", "-f", "%M", "-o", usage.name, *cmd],
        stdout=so, stderr=se, stdin=subprocess.DEVNULL,
    )
    _, status, rusage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    # /usr/bin/time writes "Command exited with non-zero status N" first then.
    rss = usage.read().split("\n")[-2].strip()
child.returncode = os.waitstatus_to_exitcode(status)
with open(out, "w") as f:
    f.write(f"{wall:.4f} {rss} {rusage.ru_utime + rusage.ru_stime:.4f}\n")
sys.exit(child.returncode if child.returncode >= 0 else 128 - child.returncode)
