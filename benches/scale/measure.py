#!/usr/bin/env python3
"""Run one command and print `wall_s peak_rss_kib cpu_s` on one line.

  measure.py OUT STDOUT STDERR -- CMD...

Wall time from a monotonic clock (microseconds, not /usr/bin/time's
hundredths, which are too coarse for runs of a tenth of a second), peak RSS
and user+system CPU time from the child's rusage. Exits with the command's
status; the figures are written to OUT.
"""
import os
import resource
import subprocess
import sys
import time

out, stdout, stderr, sep, *cmd = sys.argv[1:]
assert sep == "--" and cmd, __doc__
with open(stdout, "wb") as so, open(stderr, "wb") as se:
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=so, stderr=se, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
child.returncode = os.waitstatus_to_exitcode(status)
with open(out, "w") as f:
    f.write(f"{wall:.4f} {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime:.4f}\n")
sys.exit(child.returncode if child.returncode >= 0 else 128 - child.returncode)
