#!/usr/bin/env python3
"""Checks of the deploy-path benchmark (benches/deploy/run.sh), from /proc,
the state file, the demo-apps themselves and HAProxy's runtime API.

  check.py ports FIRST COUNT EXTRA...
      exit 1 if anything listens on 127.0.0.1 (or every address) on a port
      in FIRST..FIRST+COUNT-1 or on one of EXTRA
  check.py world DIR DEMO_APP N FIRST_PORT SOCKET MAP HAPROXY_PORT LIVE BLUE_REL GREEN_REL
      the processes of this run (demo-app processes whose environment says
      cutover started them for DIR) are exactly the 2N the state records,
      one per environment, each on its own port, none orphaned or
      duplicated; each answers its release on its port; every router's key
      r.sI in HAProxy's map (memory and file) points at LIVE.sI and its
      preview key at the other colour; a request through HAProxy for each
      router reaches LIVE's release
  check.py stop DIR DEMO_APP
      SIGTERM to the process group of every pid the state records (when its
      start time is the recorded one), SIGKILL after 10 s; then exit 1 if a
      process of this run is left
  check.py owned DIR DEMO_APP
      prints the pids of this run's demo-app processes (for the cleanup)

Every wait and request is bounded by a timeout.
"""
import http.client
import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scale"))
import runtime_api  # noqa: E402  (the scale benchmark's runtime-API client)

TIMEOUT = 10.0


def listening_ports():
    """Ports with a listening TCP socket on 127.0.0.1 or every address."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            addr, port = f[1].split(":")
            if f[3] != "0A":  # LISTEN
                continue
            if addr in ("0100007F", "00000000", "0" * 32, "00000000000000000000000001000000"):
                ports.add(int(port, 16))
    return ports


def stat_of(pid):
    """(pgrp, start time) of a live, non-zombie pid, else None."""
    try:
        text = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[2]), int(fields[19])


def owned(directory, demo_app):
    """{pid: (environment, port, argv)} of the live demo-app processes that
    cutover started for `directory` (CUTOVER_OWNER=DIR#ENV in their
    environment), whatever their parent."""
    owner = f"CUTOVER_OWNER={os.path.realpath(directory)}#".encode()
    exe = os.path.realpath(demo_app)
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if os.path.realpath(f"/proc/{pid}/exe") != exe:
                continue
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if stat_of(pid) is None:
            continue
        mine = [e[len(owner):].decode() for e in environ if e.startswith(owner)]
        if not mine:
            continue
        argv = [a.decode() for a in argv if a]
        port = int(argv[argv.index("--port") + 1]) if "--port" in argv else None
        out[pid] = (mine[0], port, argv)
    return out


def state_of(directory):
    with open(os.path.join(directory, "cutover.state.json")) as f:
        return json.load(f)


def get(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def world(directory, demo_app, n, first_port, sock, map_path, haproxy_port, live, blue_rel, green_rel):
    problems = []
    state = state_of(directory)
    releases = {"blue": blue_rel, "green": green_rel}
    expected = {}  # environment -> (pid, port, release)
    for i in range(n):
        for c, colour in enumerate(("blue", "green")):
            name = f'{colour}["s{i}"]'
            rec = state["environments"].get(name)
            if rec is None:
                problems.append(f"{name} is not in the state")
                continue
            expected[name] = (rec["private"]["pid"], first_port + 2 * i + c, releases[colour])
            if rec.get("release") != releases[colour]:
                problems.append(f"the state records {name} at release {rec.get('release')}, not {releases[colour]}")
    extra = sorted(set(state["environments"]) - set(expected))
    if extra:
        problems.append(f"environments in the state that the config does not make: {extra[:3]}")
    procs = owned(directory, demo_app)
    by_env = {}
    for pid, (env, port, _) in procs.items():
        by_env.setdefault(env, []).append((pid, port))
    duplicated = {e: p for e, p in by_env.items() if len(p) > 1}
    recorded = {pid for (pid, _, _) in expected.values()}
    orphans = sorted(pid for pid in procs if pid not in recorded)
    missing = sorted(e for e, (pid, _, _) in expected.items() if pid not in procs)
    wrong_port = sorted(e for e, (pid, port, _) in expected.items() if pid in procs and procs[pid][1] != port)
    ports = [port for (_, port, _) in procs.values()]
    if len(procs) != 2 * n:
        problems.append(f"{len(procs)} demo-app processes of this run alive, not {2 * n}")
    if duplicated:
        problems.append(f"{len(duplicated)} environments with several processes, e.g. {list(duplicated.items())[:2]}")
    if orphans:
        problems.append(f"{len(orphans)} processes of this run the state does not record (orphans), e.g. {orphans[:5]}")
    if missing:
        problems.append(f"{len(missing)} recorded processes not running, e.g. {missing[:3]}")
    if wrong_port:
        problems.append(f"{len(wrong_port)} processes on another port than their environment's, e.g. {wrong_port[:3]}")
    if len(set(ports)) != len(ports):
        problems.append("two processes of this run were given the same port")
    # Each answers its own release on its own port.
    wrong_release = []
    for name, (_, port, release) in sorted(expected.items()):
        try:
            status, body = get(port, "/version")
            got = json.loads(body).get("release") if status == 200 else f"HTTP {status}"
        except (OSError, ValueError) as e:
            got = f"no answer ({e})"
        if got != release:
            wrong_release.append(f"{name} on {port}: {got}")
    if wrong_release:
        problems.append(f"{len(wrong_release)} environments not answering their release, e.g. {wrong_release[:3]}")
    # HAProxy's map, in memory and in the file: live and preview keys.
    other = {"blue": "green", "green": "blue"}[live]
    want = {}
    for i in range(n):
        want[f"r.s{i}"] = f"{live}.s{i}"
        want[f"r.s{i}_preview"] = f"{other}.s{i}"
    in_memory = runtime_api.show(sock, map_path)
    with open(map_path) as f:
        in_file = dict(line.split()[:2] for line in f if line.strip() and not line.startswith("#"))
    for where, got in (("HAProxy's memory", in_memory), ("the map file", in_file)):
        wrong = [f"{k}={got.get(k)}" for k, v in want.items() if got.get(k) != v]
        if wrong or len(got) != len(want):
            problems.append(f"{where}: {len(wrong)} of {len(want)} keys wrong (e.g. {wrong[:3]}), {len(got)} keys")
    # Through HAProxy: each router's traffic reaches the live colour.
    through = []
    c = http.client.HTTPConnection("127.0.0.1", haproxy_port, timeout=TIMEOUT)
    for i in range(n):
        try:
            c.request("GET", "/", headers={"x-router": f"r.s{i}"})
            r = c.getresponse()
            body = r.read().decode().strip()
        except (OSError, http.client.HTTPException) as e:
            body = f"error {e}"
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", haproxy_port, timeout=TIMEOUT)
        if body != f"demo-app release {releases[live]}":
            through.append(f"r.s{i}: {body!r}")
    c.close()
    if through:
        problems.append(f"{len(through)} routers whose traffic does not reach {live}, e.g. {through[:3]}")
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(
        f"ok: {len(procs)} demo-app processes of this run, one per environment, each on its own port "
        f"answering its release (blue {blue_rel}, green {green_rel}); no orphan, no duplicate; "
        f"{len(want)} map keys on {live} (live) and {other} (preview) in memory and file; "
        f"{n} requests through HAProxy answered by {live}"
    )


def stop(directory, demo_app):
    state = state_of(directory)
    groups = []
    for name, rec in sorted(state["environments"].items()):
        private = rec.get("private") or {}
        pid, start = private.get("pid"), private.get("start_time")
        st = stat_of(pid) if pid else None
        # Only the process cutover recorded: same pid, same start time.
        if st is not None and st[1] == start:
            groups.append(pid)
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and owned(directory, demo_app):
        time.sleep(0.1)
    for pid in owned(directory, demo_app):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.2)
    left = owned(directory, demo_app)
    if left:
        print(f"FAIL: {len(left)} processes of this run left after the stop, e.g. {sorted(left)[:5]}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: stopped {len(groups)} recorded process groups by pid; no process of this run left")


def main():
    verb, args = sys.argv[1], sys.argv[2:]
    if verb == "ports":
        first, count = int(args[0]), int(args[1])
        wanted = set(range(first, first + count)) | {int(p) for p in args[2:]}
        busy = sorted(wanted & listening_ports())
        if busy:
            sys.exit(f"ports in use: {busy[:10]} (choose another range: PORT_BASE=..., HAPROXY_PORT=...)")
        print(f"ok: ports {first}-{first + count - 1} and {args[2:]} are free")
    elif verb == "world":
        d, demo, n, first, sock, map_path, hport, live, blue_rel, green_rel = args
        world(d, demo, int(n), int(first), sock, map_path, int(hport), live, blue_rel, green_rel)
    elif verb == "stop":
        stop(*args)
    elif verb == "owned":
        for pid in sorted(owned(*args)):
            print(pid)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    socket.setdefaulttimeout(TIMEOUT)
    main()
