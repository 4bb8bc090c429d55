#!/usr/bin/env python3
"""The cut-over benchmark: N alternating cut-overs under load, per router.

run.sh builds the binaries and calls this with their directory on PATH.
For each router (HAProxy, Caddy, nginx), on loopback only:

  1. start the router from this directory's config (copied into the run
     directory, outside the repository) and apply blue live (cutover starts
     both demo-app colours with its `process` backend);
  2. CUTOVER: N times, alternating green/blue, open a measuring window:
     start two load generators (`loadgen`: one request per fresh connection;
     `wrk` + count.lua: keep-alive connections), wait 0.5 s, run
     `cutover apply --auto-approve --json --var live=COLOUR`, wait 0.5 s,
     stop the load and count what failed in this window;
  3. BASELINE: the same N switches made by hand, the way an operator does
     without cutover, in the same kind of window under the same load:
       haproxy: `set map` over the admin socket, then rewrite the map file;
       caddy:   one PATCH of the route's upstreams through the admin API;
       nginx:   rewrite the include, then SIGHUP the master (`nginx -s reload`);
  4. stop everything by process id.

The fleet case (--fleets 2,4): one router over N HAProxy instances
(haproxy.cfg with its frontend on port 18300+i, each with its own admin
socket, map file and frontend; haproxy.hcl with the instances listed in
`instances` and each colour's release naming it; see fleet_hcl), N alternating cut-overs by
`cutover apply`, each in a window under load on every instance: a fresh-
connection loadgen and a keep-alive loadgen (`--keep-alive --transitions`,
a 200 us pause per request) per instance. Failed requests are counted per
instance; the switch skew is the time from the first instance to the last
to answer with the new colour (the start of the keep-alive loadgen's first
request the new colour answered, per instance: its resolution is that
loadgen's interval between requests), and also as cutover reports it (the
instances' confirmation offsets, `skew_us` of `cutover_done`).

Results: <run>/results.json and a markdown report on stdout (also
<run>/report.md). Every load loop is bounded in time (wrk -d, loadgen's stop
file plus a kill after a deadline).
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.realpath(__file__))

ROUTERS = {
    "haproxy": {"url": "http://127.0.0.1:18180/", "ports": [18180, 9201, 9202],
                "endpoints": {"blue": "127.0.0.1:9201", "green": "127.0.0.1:9202"}},
    "caddy": {"url": "http://127.0.0.1:18181/", "ports": [18181, 18191, 9211, 9212],
              "endpoints": {"blue": "127.0.0.1:9211", "green": "127.0.0.1:9212"}},
    "nginx": {"url": "http://127.0.0.1:18182/", "ports": [18182, 18192, 9221, 9222],
              "endpoints": {"blue": "127.0.0.1:9221", "green": "127.0.0.1:9222"}},
}

PRE_S = 0.5    # load runs this long before the switch
POST_S = 0.5   # and this long after it
WRK_MAX_S = 120  # hard bound of one window's wrk run


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def port_busy(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http_get(url, timeout=1.0, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except Exception:
        return None, ""


def stop_process(p, sig):
    """Stop the process p started (by its pid) with sig, then SIGKILL after 15 s."""
    if p is None or p.poll() is not None:
        return
    p.send_signal(sig)
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


class Bench:
    def __init__(self, router, run, n, env):
        self.router = router
        self.run = run
        self.n = n
        self.env = env
        self.cfg = ROUTERS[router]
        self.url = self.cfg["url"]
        self.router_proc = None
        self.children = []  # load generators still running (killed on cleanup)

    # ---- router lifecycle -------------------------------------------------

    def start_router(self):
        r, run = self.router, self.run
        for p in self.cfg["ports"]:
            if port_busy(p):
                raise RuntimeError(f"127.0.0.1:{p} is already in use; stop whatever listens there")
        shutil.copy(os.path.join(HERE, f"{r}.hcl"), os.path.join(run, "main.hcl"))
        out = open(os.path.join(run, f"{r}.out"), "w")
        if r == "haproxy":
            open(os.path.join(run, "live.map"), "w").close()
            env = dict(self.env, BENCH_RUN=run)
            self.router_proc = subprocess.Popen(
                ["haproxy", "-db", "-f", os.path.join(HERE, "haproxy.cfg")],
                stdout=out, stderr=subprocess.STDOUT, env=env)
            wait_for(lambda: os.path.exists(os.path.join(run, "admin.sock")), 10, "HAProxy's admin socket")
        elif r == "caddy":
            env = dict(self.env, HOME=run, XDG_DATA_HOME=os.path.join(run, "data"),
                       XDG_CONFIG_HOME=os.path.join(run, "config"))
            self.router_proc = subprocess.Popen(
                ["caddy", "run", "--config", os.path.join(HERE, "caddy.json")],
                stdout=out, stderr=subprocess.STDOUT, env=env)
            wait_for(lambda: http_get("http://127.0.0.1:18191/config/")[0] == 200, 15, "Caddy's admin API")
        elif r == "nginx":
            os.chmod(run, 0o755)
            shutil.copy(os.path.join(HERE, "nginx.conf"), os.path.join(run, "nginx.conf"))
            shutil.copy(os.path.join(HERE, "nginx-initial-include.conf"), os.path.join(run, "public.conf"))
            self.router_proc = subprocess.Popen(
                ["nginx", "-p", run + "/", "-c", os.path.join(run, "nginx.conf"),
                 "-e", os.path.join(run, "error.log")],
                stdout=out, stderr=subprocess.STDOUT, env=self.env)
            wait_for(lambda: http_get("http://127.0.0.1:18192/cutover/public",
                                      headers={"Host": "cutover-public"})[0] == 200, 15, "nginx")
        if self.router_proc.poll() is not None:
            raise RuntimeError(f"{r} exited at start; see {run}/{r}.out")
        log(f"{r} started, pid {self.router_proc.pid}")

    def cleanup(self):
        for p in self.children:
            if p.poll() is None:
                p.kill()
                p.wait()
        state = os.path.join(self.run, "cutover.state.json")
        if os.path.exists(state):
            text = open(state).read()
            for pid in re.findall(r'"pid":\s*(\d+)', text):
                try:
                    os.kill(int(pid), signal.SIGTERM)
                except ProcessLookupError:
                    pass
        # nginx: SIGQUIT is its graceful stop; the others stop on SIGTERM.
        stop_process(self.router_proc, signal.SIGQUIT if self.router == "nginx" else signal.SIGTERM)
        log(f"{self.router}: router and demo apps stopped")

    # ---- cutover ------------------------------------------------------------

    def apply(self, colour):
        """cutover apply --json; stamps every event line as it arrives."""
        cmd = ["cutover", "-C", self.run, "apply", "--auto-approve", "--json",
               "--no-color", "--var", f"live={colour}"]
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=self.env)
        events = []
        for line in p.stdout:
            events.append((time.monotonic() - t0, line))
        err = p.stderr.read()
        rc = p.wait()
        wall = time.monotonic() - t0
        gate_passed = confirmed = None
        cut_ms = summary_ms = None
        for ts, line in events:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("type") == "step_finished" and ev.get("id") == f"health.{colour}" and ev.get("ok"):
                gate_passed = ts
            if ev.get("type") == "step_finished" and ev.get("id") == "cutover.public" and ev.get("ok"):
                confirmed = ts
                cut_ms = ev.get("elapsed_ms")
            if ev.get("type") == "summary":
                summary_ms = ev.get("elapsed_ms")
        if rc != 0:
            raise RuntimeError(f"cutover apply --var live={colour} failed (exit {rc}):\n{err}"
                               + "".join(l for _, l in events[-5:]))
        res = {"wall_s": wall, "summary_ms": summary_ms, "cutover_step_ms": cut_ms,
               "gate_to_confirmed_s": (confirmed - gate_passed)
               if gate_passed is not None and confirmed is not None else None}
        return res

    # ---- switches by hand (the baseline) -------------------------------------

    def hand_switch(self, colour):
        t0 = time.monotonic()
        r, run = self.router, self.run
        if r == "haproxy":
            mapfile = os.path.join(run, "live.map")
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(os.path.join(run, "admin.sock"))
                s.sendall(f"set map {mapfile} public {colour}\n".encode())
                s.shutdown(socket.SHUT_WR)
                answer = s.recv(4096).decode().strip()
            if answer:
                raise RuntimeError(f"set map answered: {answer}")
            tmp = mapfile + ".tmp"
            with open(tmp, "w") as f:
                f.write(f"public {colour}\n")
            os.rename(tmp, mapfile)
        elif r == "caddy":
            dial = self.cfg["endpoints"][colour]
            rc = subprocess.run(
                ["curl", "-sS", "-f", "-X", "PATCH", "-H", "Content-Type: application/json",
                 "-d", json.dumps([{"dial": dial}]),
                 f"http://127.0.0.1:18191/id/cutover-public/{self.caddy_upstreams_path}"],
                capture_output=True, text=True).returncode
            if rc != 0:
                raise RuntimeError("curl PATCH to Caddy failed")
        elif r == "nginx":
            inc = os.path.join(run, "public.conf")
            text = open(inc).read()
            other = "blue" if colour == "green" else "green"
            text = text.replace(self.cfg["endpoints"][other], self.cfg["endpoints"][colour])
            text = re.sub(r'return 200 "\w+ (\d+)', lambda m: f'return 200 "{colour} {int(m.group(1)) + 1}', text)
            fd, tmp = tempfile.mkstemp(dir=run, prefix=".public.conf.")
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.rename(tmp, inc)
            pid = int(open(os.path.join(run, "nginx.pid")).read().strip())
            os.kill(pid, signal.SIGHUP)  # what `nginx -s reload` does
        return {"wall_s": time.monotonic() - t0}

    def find_caddy_upstreams_path(self):
        """Where the upstreams of cutover's route are, as an /id/ sub-path."""
        status, body = http_get("http://127.0.0.1:18191/id/cutover-public")
        if status != 200:
            raise RuntimeError("cannot read Caddy route cutover-public")

        def walk(node, path):
            if isinstance(node, dict):
                if node.get("handler") == "reverse_proxy" and "upstreams" in node:
                    return path + ["upstreams"]
                for k, v in node.items():
                    found = walk(v, path + [k])
                    if found:
                        return found
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    found = walk(v, path + [str(i)])
                    if found:
                        return found
            return None

        found = walk(json.loads(body), [])
        if not found:
            raise RuntimeError(f"no reverse_proxy upstreams in Caddy route: {body}")
        return "/".join(found)

    # ---- one measuring window ----------------------------------------------------

    def end_load(self):
        """Wait for the load generators told to stop (SIGKILL after 15 s)."""
        for p in self.children:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.children = []

    def window(self, i, colour, switch):
        stop = os.path.join(self.run, "stop-load")
        if os.path.exists(stop):
            os.remove(stop)
        lg_out = os.path.join(self.run, f"loadgen.txt")
        wk_out = os.path.join(self.run, f"wrk.txt")
        lg = subprocess.Popen(["loadgen", "--url", self.url, "--stop-file", stop, "--threads", "2",
                               "--duration", f"{WRK_MAX_S}s"],
                              stdout=open(lg_out, "w"), stderr=subprocess.STDOUT, env=self.env)
        wk = subprocess.Popen(["wrk", "-t1", "-c8", f"-d{WRK_MAX_S}s", "--timeout", "5s",
                               "-s", os.path.join(HERE, "count.lua"), self.url],
                              stdout=open(wk_out, "w"), stderr=subprocess.STDOUT, env=self.env)
        self.children = [lg, wk]
        time.sleep(PRE_S)
        try:
            res = switch(colour)
        finally:
            time.sleep(POST_S)
            open(stop, "w").close()
            wk.send_signal(signal.SIGINT)
            self.end_load()
        lg_text = open(lg_out).read()
        wk_text = open(wk_out).read()
        m = re.search(r"loadgen: (\d+) requests in [\d.]+s, (\d+) failed", lg_text)
        if not m:
            raise RuntimeError(f"cannot parse loadgen output: {lg_text}")
        res["fresh_requests"], res["fresh_failed"] = int(m.group(1)), int(m.group(2))
        res["fresh_errors"] = re.findall(r"loadgen: (\d+ x .*)", lg_text)
        m = re.search(r"WRK requests=(\d+) ok=(\d+) non2xx=(\d+) connect=(\d+) read=(\d+) write=(\d+) timeout=(\d+)", wk_text)
        if not m:
            raise RuntimeError(f"cannot parse wrk output: {wk_text}")
        req, ok, non2xx, conn, rd, wr, to = map(int, m.groups())
        sock = conn + rd + wr + to
        res["ka_requests"] = req
        res["ka_failed"] = non2xx + sock
        res["ka_errors"] = {k: v for k, v in
                            {"non2xx": non2xx, "connect": conn, "read": rd, "write": wr, "timeout": to}.items() if v}
        res["colour"] = colour
        res["i"] = i
        log(f"{self.router} {switch.__name__} #{i} -> {colour}: "
            f"fresh {res['fresh_requests']} req / {res['fresh_failed']} failed {res['fresh_errors'] or ''}; "
            f"keep-alive {req} req / {res['ka_failed']} failed {res['ka_errors'] or ''}; "
            f"switch {res['wall_s']:.3f}s"
            + (f", gate->confirmed {res['gate_to_confirmed_s']:.3f}s" if res.get("gate_to_confirmed_s") is not None else ""))
        return res

    def run_all(self):
        self.start_router()
        log(f"{self.router}: first apply (blue live, both colours started)")
        first = self.apply("blue")
        log(f"{self.router}: first apply took {first['wall_s']:.2f}s")
        if http_get(self.url)[0] != 200:
            raise RuntimeError(f"{self.url} does not answer 200 after the first apply")
        colours = ["green" if i % 2 == 0 else "blue" for i in range(self.n)]
        cut = [self.window(i + 1, c, self.apply) for i, c in enumerate(colours)]
        if self.router == "caddy":
            self.caddy_upstreams_path = self.find_caddy_upstreams_path()
            log(f"caddy: baseline PATCHes /id/cutover-public/{self.caddy_upstreams_path}")
        base = [self.window(i + 1, c, self.hand_switch) for i, c in enumerate(colours)]
        return {"cutover": cut, "baseline": base}


FLEET_PORT = 18300  # instance i's frontend listens on FLEET_PORT + i
FLEET_COLOURS = {"blue": "1.0.0-blue", "green": "1.0.0-green"}
FLEET_PAUSE_US = 200  # the keep-alive probe's pause between requests


def replaced(text, old, new, count=1):
    """text with old replaced by new, which must be there `count` times."""
    if text.count(old) != count:
        raise RuntimeError(f"expected {count} x {old!r} in a bench config")
    return text.replace(old, new)


def fleet_hcl(items):
    """haproxy.hcl, made the fleet's: the colours on their own ports, each
    release naming its colour (the traffic then tells when each instance
    switched), and the router's haproxy block listing `items`."""
    hcl = open(os.path.join(HERE, "haproxy.hcl")).read()
    blue, green = hcl.split('environment "green"')
    for colour, port in (("blue", 9201), ("green", 9202)):
        text = blue if colour == "blue" else green
        text = replaced(text, str(port), str(port + 30), 2)
        text = replaced(text, '"1.0.0"', f'"{FLEET_COLOURS[colour]}"', 2)
        blue, green = (text, green) if colour == "blue" else (blue, text)
    hcl = blue + 'environment "green"' + green
    block = '  haproxy {\n    socket = "admin.sock"\n    map    = "live.map"\n  }'
    return replaced(hcl, block, "  haproxy {\n    instances = [\n" + "\n".join(items) + "\n    ]\n  }")


def fleet_haproxy_cfg(run):
    """haproxy.cfg, made one instance's of the fleet, written into the run
    directory: its frontend on ${BENCH_PORT}, the colours on the fleet's
    ports (its socket and map are ${BENCH_RUN}'s already)."""
    path = os.path.join(run, "haproxy-fleet.cfg")
    if not os.path.exists(path):
        cfg = open(os.path.join(HERE, "haproxy.cfg")).read()
        cfg = replaced(cfg, "bind 127.0.0.1:18180", 'bind "127.0.0.1:${BENCH_PORT}"')
        cfg = replaced(cfg, "127.0.0.1:9201", "127.0.0.1:9231")
        cfg = replaced(cfg, "127.0.0.1:9202", "127.0.0.1:9232")
        with open(path, "w") as f:
            f.write(cfg)
    return path


class FleetBench(Bench):
    """One router over `size` HAProxy instances (see the module's docs)."""

    def __init__(self, size, run, n, env):
        self.router = f"fleet{size}"
        self.size = size
        self.run = run
        self.n = n
        self.env = env
        self.cfg = {"ports": [FLEET_PORT + i for i in range(size)] + [9231, 9232]}
        self.procs = []
        self.children = []

    def name(self, i):
        return f"h{i + 1}"

    def url(self, i):
        return f"http://127.0.0.1:{FLEET_PORT + i}/"

    def start_router(self):
        run = self.run
        for p in self.cfg["ports"]:
            if port_busy(p):
                raise RuntimeError(f"127.0.0.1:{p} is already in use; stop whatever listens there")
        items = []
        for i in range(self.size):
            d = os.path.join(run, self.name(i))
            os.makedirs(d)
            open(os.path.join(d, "live.map"), "w").close()
            env = dict(self.env, BENCH_RUN=d, BENCH_PORT=str(FLEET_PORT + i))
            out = open(os.path.join(d, "haproxy.out"), "w")
            self.procs.append(subprocess.Popen(
                ["haproxy", "-db", "-f", fleet_haproxy_cfg(run)],
                stdout=out, stderr=subprocess.STDOUT, env=env))
            items.append(f'      {{ name = "{self.name(i)}", socket = "{d}/admin.sock", map = "{d}/live.map" }},')
        for i in range(self.size):
            sock = os.path.join(run, self.name(i), "admin.sock")
            wait_for(lambda: os.path.exists(sock), 10, f"HAProxy {self.name(i)}'s admin socket")
            if self.procs[i].poll() is not None:
                raise RuntimeError(f"HAProxy {self.name(i)} exited at start; see {run}/{self.name(i)}/haproxy.out")
        with open(os.path.join(run, "main.hcl"), "w") as f:
            f.write(fleet_hcl(items))
        log(f"{self.router}: {self.size} HAProxy instances started, pids {[p.pid for p in self.procs]}")

    def cleanup(self):
        self.router_proc = None
        super().cleanup()
        for p in self.procs:
            stop_process(p, signal.SIGTERM)
        log(f"{self.router}: HAProxy instances stopped")

    def window(self, i, colour):
        stop = os.path.join(self.run, "stop-load")
        if os.path.exists(stop):
            os.remove(stop)
        loads = []
        for k in range(self.size):
            common = ["--url", self.url(k), "--stop-file", stop, "--threads", "1", "--duration", f"{WRK_MAX_S}s"]
            fresh = os.path.join(self.run, f"fresh-{k}.txt")
            kept = os.path.join(self.run, f"kept-{k}.txt")
            loads.append((fresh, subprocess.Popen(["loadgen"] + common, stdout=open(fresh, "w"),
                                                   stderr=subprocess.STDOUT, env=self.env)))
            loads.append((kept, subprocess.Popen(
                ["loadgen"] + common + ["--keep-alive", "--transitions", "--pause-us", str(FLEET_PAUSE_US)],
                stdout=open(kept, "w"), stderr=subprocess.STDOUT, env=self.env)))
        self.children = [p for _, p in loads]
        t0 = time.monotonic()
        time.sleep(PRE_S)
        try:
            res = self.apply_events(colour)
        finally:
            time.sleep(POST_S)
            open(stop, "w").close()
            self.end_load()
        window_s = time.monotonic() - t0
        return self.count_window(i, colour, res, [f for f, _ in loads], window_s)

    def apply_events(self, colour):
        """cutover apply --json, and the cutover_done line's instances."""
        cmd = ["cutover", "-C", self.run, "apply", "--auto-approve", "--json",
               "--no-color", "--var", f"live={colour}"]
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.env)
        wall = time.monotonic() - t0
        done = [json.loads(l) for l in p.stdout.splitlines() if '"cutover_done"' in l]
        if p.returncode != 0 or not done:
            raise RuntimeError(f"cutover apply --var live={colour} failed (exit {p.returncode}):\n{p.stderr}")
        return {"wall_s": wall, "reported_skew_ms": done[0].get("skew_us", 0) / 1000.0,
                "reported": done[0].get("instances")}

    def count_window(self, i, colour, res, outputs, window_s):
        release = FLEET_COLOURS[colour]
        per = []
        for k in range(self.size):
            fresh, kept = open(outputs[2 * k]).read(), open(outputs[2 * k + 1]).read()
            row = {"instance": self.name(k)}
            for label, text in (("fresh", fresh), ("kept", kept)):
                m = re.search(r"loadgen: (\d+) requests in [\d.]+s, (\d+) failed", text)
                if not m:
                    raise RuntimeError(f"cannot parse loadgen output: {text}")
                row[f"{label}_requests"], row[f"{label}_failed"] = int(m.group(1)), int(m.group(2))
                row[f"{label}_errors"] = re.findall(r"loadgen: (\d+ x .*)", text)
            m = re.search(rf"loadgen: release {re.escape(release)} first at (\d+) us", kept)
            if not m:
                raise RuntimeError(f"{self.name(k)} never answered with {release}: {kept}")
            row["switched_us"] = int(m.group(1))
            row["interval_ms"] = window_s * 1000.0 / max(row["kept_requests"], 1)
            per.append(row)
        firsts = [r["switched_us"] for r in per]
        res.update({"i": i, "colour": colour, "instances": per,
                    "traffic_skew_ms": (max(firsts) - min(firsts)) / 1000.0})
        failed = {r["instance"]: r["fresh_failed"] + r["kept_failed"] for r in per}
        log(f"{self.router} #{i} -> {colour}: failed per instance {failed}; skew in traffic "
            f"{res['traffic_skew_ms']:.3f} ms, reported {res['reported_skew_ms']:.3f} ms; "
            f"apply {res['wall_s']:.3f}s")
        return res

    def run_all(self):
        self.start_router()
        log(f"{self.router}: first apply (blue live on every instance)")
        self.apply_events("blue")
        colours = ["green" if i % 2 == 0 else "blue" for i in range(self.n)]
        return {"cutover": [self.window(i + 1, c) for i, c in enumerate(colours)]}


def fleet_report(results):
    out = ["| HAProxy instances | cut-overs | requests per instance, fresh conn / keep-alive (total) "
           "| failed requests per instance (fresh + keep-alive, all cut-overs) "
           "| switch skew in traffic, ms (median / max) | skew cutover reports, ms (median / max) "
           "| traffic resolution, ms (median keep-alive interval) |",
           "|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        rows = res["cutover"]
        size = len(rows[0]["instances"])
        names = [r["instance"] for r in rows[0]["instances"]]
        fresh = sum(r["fresh_requests"] for w in rows for r in w["instances"]) // size
        kept = sum(r["kept_requests"] for w in rows for r in w["instances"]) // size
        failed = {n: sum(r["fresh_failed"] + r["kept_failed"] for w in rows for r in w["instances"]
                         if r["instance"] == n) for n in names}
        res_ms = statistics.median(r["interval_ms"] for w in rows for r in w["instances"])
        out.append(f"| {size} | {len(rows)} | {fresh} / {kept} | "
                   + ", ".join(f"{n}: {v}" for n, v in failed.items())
                   + f" | {med_max([w['traffic_skew_ms'] for w in rows])} "
                   f"| {med_max([w['reported_skew_ms'] for w in rows])} | {res_ms:.3f} |")
    out.append("")
    return "\n".join(out)


def med_max(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "n/a"
    return f"{statistics.median(xs):.3f} / {max(xs):.3f}"


def per_switch(rows, key):
    vals = [r[key] for r in rows]
    return f"{sum(vals)} ({sum(vals) / len(vals):.2f} avg, {max(vals)} max)"


def report(results, meta):
    out = []
    out.append("| router | switches made by | switches | requests (fresh conn / keep-alive) "
               "| failed, fresh conn: total (avg, max per switch) | failed, keep-alive: total (avg, max per switch) "
               "| gate passed → switch confirmed, s (median / max) | apply wall, s (median / max) |")
    out.append("|---|---|---|---|---|---|---|---|")
    for r, res in results.items():
        for mode, label in (("cutover", "cutover apply"), ("baseline", "hand (baseline)")):
            rows = res[mode]
            fresh = sum(x["fresh_requests"] for x in rows)
            ka = sum(x["ka_requests"] for x in rows)
            gate = med_max([x.get("gate_to_confirmed_s") for x in rows]) if mode == "cutover" else "—"
            wall = med_max([x["wall_s"] for x in rows])
            out.append(f"| {r} | {label} | {len(rows)} | {fresh} / {ka} | {per_switch(rows, 'fresh_failed')} "
                       f"| {per_switch(rows, 'ka_failed')} | {gate} | {wall} |")
    out.append("")
    errs = []
    for r, res in results.items():
        for mode in ("cutover", "baseline"):
            kinds = {}
            for x in res[mode]:
                for e in x["fresh_errors"]:
                    n, what = e.split(" x ", 1)
                    kinds[f"fresh: {what}"] = kinds.get(f"fresh: {what}", 0) + int(n)
                for k, v in x["ka_errors"].items():
                    kinds[f"keep-alive: {k}"] = kinds.get(f"keep-alive: {k}", 0) + v
            if kinds:
                errs.append(f"- {r}, {mode}: " + ", ".join(f"{v} × {k}" for k, v in sorted(kinds.items())))
    if errs:
        out.append("Failures by kind:")
        out.append("")
        out.extend(errs)
    else:
        out.append("No request failed.")
    out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cutovers", type=int, default=20)
    ap.add_argument("--routers", default="haproxy,caddy,nginx")
    ap.add_argument("--fleets", default="2,4",
                    help="sizes of the HAProxy fleet case (instances), e.g. 2,4; empty for none")
    ap.add_argument("--run", default=os.environ.get("BENCH_RUN_DIR", "/tmp/cutover-under-load"))
    args = ap.parse_args()
    routers = [r for r in args.routers.split(",") if r]
    for r in routers:
        if r not in ROUTERS:
            sys.exit(f"unknown router {r}; choose from {', '.join(ROUTERS)}")
    base_run = os.path.realpath(args.run)
    env = dict(os.environ, NO_COLOR="1")
    sizes = [int(x) for x in args.fleets.split(",") if x]
    needed = set(routers) | ({"haproxy"} if sizes else set())
    if routers:
        needed |= {"wrk", "curl"}
    for tool in sorted(needed):
        if not (shutil.which(tool) or os.access(f"/usr/sbin/{tool}", os.X_OK)):
            sys.exit(f"{tool} is missing: apt-get install -y {tool}")
    results = {}
    fleets = {}
    for size in sizes:
        run = os.path.join(base_run, f"fleet{size}")
        shutil.rmtree(run, ignore_errors=True)
        os.makedirs(run)
        b = FleetBench(size, run, args.cutovers, env)
        try:
            fleets[f"fleet{size}"] = b.run_all()
        finally:
            b.cleanup()
    for r in routers:
        run = os.path.join(base_run, r)
        shutil.rmtree(run, ignore_errors=True)
        os.makedirs(run)
        b = Bench(r, run, args.cutovers, env)
        try:
            results[r] = b.run_all()
        finally:
            b.cleanup()
    meta = {
        "cutovers": args.cutovers,
        "machine": f"{platform.node()}: {os.cpu_count()} CPUs, {platform.platform()}",
    }
    with open(os.path.join(base_run, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results, "fleets": fleets}, f, indent=2)
    text = (report(results, meta) if results else "") + (fleet_report(fleets) if fleets else "")
    with open(os.path.join(base_run, "report.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
