#!/usr/bin/env python3
"""The chaos bench: many applies under load while faults are injected.

run.sh builds the binaries and calls this with their directory on PATH. On
loopback only, in a run directory outside the repository:

  * a real router (HAProxy, or nginx with --router nginx) in front of two
    `process` colours (the demo-app binary, started and stopped by cutover);
  * a load generator of its own (threads on fresh and on kept-alive
    connections) that keeps one record per request: when, status, the
    release that answered (demo-app says it in the body), the backend the
    router names in X-Backend, or the error;
  * a prober that asks each colour directly for /healthz and / (every
    20 ms, each request cut at 100 ms) and records
    when which release was seen healthy: the bench's own evidence that a
    release passed a health check, independent of cutover's output;
  * a monitor that samples the router's runtime view every 100 ms
    (HAProxy: `show map` on the admin socket; nginx: the include's marker
    location) and whether each colour's port listens;
  * a driver that runs --applies steps: each bumps the release of the idle
    colour and cuts over to it (alternating colours), some with a `verify`
    block, each with at most one fault from a seeded, shuffled schedule,
    injected at a random moment of the apply; after a faulted step it runs
    the converging applies an operator would (force-unlock of a stale lock
    included) and then checks every invariant.

Invariants (checked after every step and over the whole run, from the
records above, the router's runtime API, the state file alone and /proc):

  gate     every 200 answered through the router comes from a release the
           prober saw healthy after the start of the apply that switched the
           router to that colour and before the switch; every switch the
           monitor sees happens while an apply runs;
  dead     after a converging apply the router points at a colour whose
           process listens; a router pointing at a dead colour is reported
           with its duration;
  state    the state file alone names the live colour the router really has
           and the other one as previous; its lineage never changes, its
           serial never goes back; it records the pid that really serves;
  procs    exactly one demo-app of this run per colour, the recorded one;
  lock     no lock left after a converging apply; a second apply started
           with --lock-timeout 0s while one runs never starts a step.

Each violation is written with the seed, the step and the history around
it to <run>/violations.jsonl and stderr; the report goes to <run>/report.md
and stdout. The whole run is bounded by --max-seconds; every subprocess has
a timeout; everything started is stopped by pid.

--sabotage gate|state makes the bench itself break an invariant once (a hand
switch to an unhealthy, never-gated colour; a state serial moved back) to
show that the checker catches it; CUTOVER=PATH runs another cutover binary.
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.realpath(__file__))
KINDS = ["kill_target", "target_500", "target_hang", "router_restart",
         "cutover_sigkill", "cutover_sigterm", "state_readonly", "concurrent_apply"]
ROUTERS = {
    "haproxy": {"front": 18480, "ports": {"blue": 9401, "green": 9402}},
    "nginx": {"front": 18482, "marker": 18492, "ports": {"blue": 9411, "green": 9412}},
}
APPLY_TIMEOUT = 60
SWITCH_LAG = 0.3   # monitor sampling lag allowed around a switch
OTHER = {"blue": "green", "green": "blue"}
T0 = time.monotonic()


def now():
    return time.monotonic() - T0


def log(msg):
    print(f"chaos [{now():7.1f}s]: {msg}", file=sys.stderr, flush=True)


HCL_ENV = """
environment "{c}" {{
  release  = var.{c}_release
  endpoint = "127.0.0.1:{port}"
  process {{
    command = ["demo-app", "--port", "{port}", "--release", var.{c}_release, "--fault-file", "{run}/fault-{c}"]
    log     = "{c}.log"
    grace   = "2s"
  }}
  health {{
    path            = "/healthz"
    interval        = "100ms"
    request_timeout = "300ms"
    timeout         = "3s"
    successes       = 3
  }}
}}
"""

HCL_HEAD = """# Written by benches/chaos/chaos.py; the bench rewrites it before each step.
cutover {
  state = "state/cutover.state.json"
}

variable "live" {
  type = string
}
variable "blue_release" {
  type = string
}
variable "green_release" {
  type = string
}
"""

HCL_ROUTER = """
router "public" {{
  live          = var.live == "green" ? environment.green : environment.blue
  ready_timeout = "3s"
  {backend}
  {verify}
}}
"""

VERIFY = """verify {{
    url      = "http://127.0.0.1:{front}/"
    interval = "100ms"
    request_timeout = "500ms"
    timeout  = "1s"
    successes = 3
  }}"""


def config_text(router, run, verify):
    cfg = ROUTERS[router]
    envs = "".join(HCL_ENV.format(c=c, port=p, run=run) for c, p in cfg["ports"].items())
    if router == "haproxy":
        backend = 'haproxy {\n    socket = "admin.sock"\n    map    = "live.map"\n  }'
    else:
        backend = ('nginx {\n    include  = "public.conf"\n    pid_file = "nginx.pid"\n'
                   f'    marker   = "127.0.0.1:{cfg["marker"]}"\n  }}')
    v = VERIFY.format(front=cfg["front"]) if verify else ""
    return HCL_HEAD + envs + HCL_ROUTER.format(backend=backend, verify=v)


# ---- processes of this run ------------------------------------------------


def our_demo_apps(run):
    """pid -> colour of every demo-app cutover started for this run (its mark)."""
    found = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            env = open(f"/proc/{d}/environ", "rb").read().split(b"\0")
            stat = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        if ") Z " in stat:
            continue
        owner = colour = None
        for kv in env:
            if kv.startswith(b"CUTOVER_OWNER="):
                owner = kv[len(b"CUTOVER_OWNER="):].decode(errors="replace")
            elif kv.startswith(b"CUTOVER_ENVIRONMENT="):
                colour = kv[len(b"CUTOVER_ENVIRONMENT="):].decode(errors="replace")
        if owner and owner.startswith(run + "#") and colour:
            found[int(d)] = colour
    return found


def pid_alive(pid):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return ") Z " not in stat


def listens(port, timeout=0.15):
    with socket.socket() as s:
        s.settimeout(timeout)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Router:
    """The real router, started, killed and restarted by pid."""

    def __init__(self, kind, run, env):
        self.kind, self.run, self.env = kind, run, env
        self.proc = None
        self.cfg = ROUTERS[kind]

    def prepare(self):
        if self.kind == "haproxy":
            open(os.path.join(self.run, "live.map"), "w").close()
        else:
            shutil.copy(os.path.join(HERE, "nginx.conf"), os.path.join(self.run, "nginx.conf"))
            shutil.copy(os.path.join(HERE, "nginx-initial-include.conf"),
                        os.path.join(self.run, "public.conf"))

    def start(self):
        out = open(os.path.join(self.run, f"{self.kind}.out"), "a")
        if self.kind == "haproxy":
            sock = os.path.join(self.run, "admin.sock")
            if os.path.exists(sock):
                os.remove(sock)  # our own socket, left by the kill
            self.proc = subprocess.Popen(
                ["haproxy", "-db", "-f", os.path.join(HERE, "haproxy.cfg")],
                stdout=out, stderr=subprocess.STDOUT, env=dict(self.env, CHAOS_RUN=self.run),
                start_new_session=True)
            ok = wait_for(lambda: self.view() is not None, 10)
        else:
            self.proc = subprocess.Popen(
                ["nginx", "-p", self.run + "/", "-c", os.path.join(self.run, "nginx.conf"),
                 "-e", os.path.join(self.run, "error.log")],
                stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
            ok = wait_for(lambda: self.view() is not None, 10)
        if not ok:
            raise RuntimeError(f"{self.kind} did not start; see {self.run}/{self.kind}.out")

    def kill(self):
        """SIGKILL the router's whole process group (nginx's workers too)."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()

    def view(self):
        """The live colour as the router's runtime API says, or None."""
        try:
            if self.kind == "haproxy":
                reply = admin(self.run, f"show map {self.run}/live.map")
                for line in reply.splitlines():
                    parts = line.split()
                    if len(parts) == 3 and parts[1] == "public":
                        return parts[2]
                return "none" if reply is not None else None
            req = urllib.request.Request(f"http://127.0.0.1:{self.cfg['marker']}/cutover/public",
                                         headers={"Host": "cutover-public"})
            with urllib.request.urlopen(req, timeout=0.3) as r:
                return r.read().decode().split()[0]
        except Exception:
            return None

    def hand_switch(self, colour):
        """The sabotage: switch without cutover (HAProxy only)."""
        admin(self.run, f"set map {self.run}/live.map public {colour}")


def admin(run, command):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(0.5)
        s.connect(os.path.join(run, "admin.sock"))
        s.sendall(command.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode(errors="replace")


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


# ---- the observers: load, prober, monitor ---------------------------------


class Observers:
    def __init__(self, router, run):
        self.router, self.run = router, run
        self.front = ROUTERS[router.kind]["front"]
        self.ports = ROUTERS[router.kind]["ports"]
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.requests = []   # (t0, t1, conn kind, status, release, backend, error)
        self.healthy = {}    # release -> [times the prober saw it healthy]
        self.samples = []    # (t, router view, {colour: listens})
        self.threads = []

    def start(self, fresh=2, kept=2):
        for i in range(fresh):
            self.threads.append(threading.Thread(target=self.load, args=(False,), daemon=True))
        for i in range(kept):
            self.threads.append(threading.Thread(target=self.load, args=(True,), daemon=True))
        for c in self.ports:
            self.threads.append(threading.Thread(target=self.probe, args=(c,), daemon=True))
        self.threads.append(threading.Thread(target=self.monitor, daemon=True))
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)

    def load(self, keep_alive):
        kind = "keep-alive" if keep_alive else "fresh"
        conn = None
        while not self.stop.is_set():
            t0 = now()
            status = release = backend = error = None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.front, timeout=4)
                conn.request("GET", "/", headers={} if keep_alive else {"Connection": "close"})
                r = conn.getresponse()
                body = r.read().decode(errors="replace")
                status, backend = r.status, r.getheader("X-Backend")
                m = re.match(r"demo-app release (\S+)", body)
                release = m.group(1) if m else None
                if not keep_alive or r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:
                error = type(e).__name__
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.requests.append((t0, now(), kind, status, release, backend, error))
            time.sleep(0.01)

    def probe(self, colour):
        port = self.ports[colour]
        while not self.stop.is_set():
            t = now()
            try:
                # Finer than the gate (3 successes 100 ms apart): a colour
                # healthy long enough to pass it is seen healthy here too,
                # even just after a hang (each hung probe costs 0.1 s).
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=0.1)
                c.request("GET", "/healthz")
                r = c.getresponse()
                r.read()
                if r.status == 200:
                    c.request("GET", "/")
                    r2 = c.getresponse()
                    m = re.match(r"demo-app release (\S+)", r2.read().decode(errors="replace"))
                    if r2.status == 200 and m:
                        with self.lock:
                            self.healthy.setdefault(m.group(1), []).append(t)
                c.close()
            except Exception:
                pass
            time.sleep(0.02)

    def monitor(self):
        while not self.stop.is_set():
            t = now()
            view = self.router.view()
            alive = {c: listens(p) for c, p in self.ports.items()}
            with self.lock:
                self.samples.append((t, view, alive))
            time.sleep(0.1)


# ---- one cutover run --------------------------------------------------------


class Apply:
    """One `cutover apply --json` process, its event lines stamped on arrival."""

    def __init__(self, bench, tag, lock_timeout=None):
        self.bench, self.tag = bench, tag
        b = bench
        cmd = [b.cutover, "-C", b.run, "apply", "--auto-approve", "--json", "--no-color",
               *b.var_args()]
        if lock_timeout is not None:
            cmd += ["--lock-timeout", lock_timeout]
        self.start = now()
        self.live = b.desired  # the colour this apply asks the router for
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=b.env)
        self.events = []
        self.stderr = ""
        self.end = None
        self.rc = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        b.applies.append(self)

    def _read(self):
        for line in self.proc.stdout:
            self.events.append((now(), line.strip()))
        self.stderr = self.proc.stderr.read()

    def wait(self):
        try:
            self.rc = self.proc.wait(timeout=APPLY_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.rc = self.proc.wait()
            self.bench.violation("timeout", f"apply {self.tag} ran over {APPLY_TIMEOUT}s and was killed")
        self.reader.join(timeout=10)
        self.end = now()
        return self.rc

    def running(self):
        return self.proc.poll() is None

    def settles(self):
        """(settle steps run, those that saw a stream still open, those that
        ended at their maximum) in this apply's events."""
        ran, waited, maximum = set(), set(), set()
        for _, line in self.events:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            sid = ev.get("id") or ""
            if not sid.startswith("settle."):
                continue
            if ev.get("type") == "step_started":
                ran.add(sid)
            elif ev.get("type") == "drain_waiting":
                waited.add(sid)
            elif ev.get("type") == "drain_ended" and ev.get("ended") == "maximum":
                maximum.add(sid)
        return len(ran), len(waited), len(maximum)

    def step_starts(self):
        out = []
        for t, line in self.events:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("type") == "step_started":
                out.append((t, ev.get("id")))
        return out


# ---- faults -------------------------------------------------------------------


class Fault:
    """One fault of the schedule: what, when (seconds into the step's apply)."""

    def __init__(self, kind, delay, hold):
        self.kind, self.delay, self.hold = kind, delay, hold
        self.after_events = 0   # cutover kills: strike after this many event lines
        self.at = None          # when it really struck (None: it missed)
        self.cleared = None     # when the condition it made ended
        self.target = None      # the colour it was aimed at
        self.note = ""
        self.second = None      # the concurrent apply, for concurrent_apply


def inject(bench, fault, apply):
    """Run in a thread: wait for the moment, strike, undo after `hold`."""
    deadline = time.monotonic() + APPLY_TIMEOUT
    while len(apply.events) < fault.after_events and apply.running() and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(fault.delay)
    b, k = bench, fault.kind
    fault.target = b.desired
    if k == "kill_target":
        wait_for(lambda: b.pids_of(fault.target), 1.5)
        pids = b.pids_of(fault.target)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        # The kill has struck once the process is gone: SIGKILL returns
        # before a process of many threads has exited, and an apply that
        # reads it before then rightly finds it running.
        wait_for(lambda: not any(pid_alive(p) for p in pids), 2)
        fault.at = now() if pids else None
        fault.note = f"pids {pids}"
    elif k in ("target_500", "target_hang"):
        path = os.path.join(b.run, f"fault-{fault.target}")
        with open(path, "w") as f:
            f.write("error" if k == "target_500" else "hang")
        fault.at = now()
        time.sleep(fault.hold)
        open(path, "w").close()
    elif k == "router_restart":
        b.router.kill()
        fault.at = now()
        time.sleep(fault.hold)
        b.router.start()
    elif k in ("cutover_sigkill", "cutover_sigterm"):
        if apply.running():
            apply.proc.send_signal(signal.SIGKILL if k == "cutover_sigkill" else signal.SIGTERM)
            fault.at = now()
        else:
            fault.note = "the apply had already ended"
    elif k == "state_readonly":
        subprocess.run(["chattr", "+i", b.state_dir], check=True)
        fault.at = now()
        time.sleep(fault.hold)
        subprocess.run(["chattr", "-i", b.state_dir], check=True)
    elif k == "concurrent_apply":
        wait = "0s" if random.Random(fault.delay).random() < 0.7 else "30s"
        fault.at = now()
        fault.second = Apply(b, "concurrent", lock_timeout=wait)
        fault.note = f"--lock-timeout {wait}"
        fault.second.wait()
    fault.cleared = now()


# ---- the bench ------------------------------------------------------------------


class Bench:
    def __init__(self, args, env):
        self.args, self.env = args, env
        self.seed = args.seed
        self.rng = random.Random(args.seed)
        self.run = os.path.realpath(args.run)
        self.state_dir = os.path.join(self.run, "state")
        self.state_path = os.path.join(self.state_dir, "cutover.state.json")
        self.cutover = os.environ.get("CUTOVER", "cutover")
        self.router = Router(args.router, self.run, env)
        self.obs = Observers(self.router, self.run)
        self.releases = {"blue": "blue-0", "green": "green-0"}
        self.desired = "blue"
        self.applies = []
        self.faults = []
        self.violations = []
        self.step = 0
        self.lineage = None
        self.serial = -1
        self.converge = {}       # kind -> [seconds from the strike to converged]
        self.clean_steps = []    # seconds of a step without a fault
        self.ready_at = 0.0      # the first apply's end: load before it is not counted
        self.gate_stats = [0, 0]  # switches seen, 200 answers attributed to a gated release
        self.dead_max = 0.0      # longest time the router pointed at a colour that did not listen

    # -- bookkeeping

    def var_args(self):
        return ["--var", f"live={self.desired}",
                "--var", f"blue_release={self.releases['blue']}",
                "--var", f"green_release={self.releases['green']}"]

    def pids_of(self, colour):
        return [p for p, c in our_demo_apps(self.run).items() if c == colour]

    def violation(self, rule, message):
        with self.obs.lock:
            samples = self.obs.samples[-15:]
        recent = self.applies[-3:]
        v = {"seed": self.seed, "step": self.step, "rule": rule, "message": message,
             "t": round(now(), 3),
             "history": {
                 "router_samples": [(round(t, 2), view, alive) for t, view, alive in samples],
                 "applies": [{"tag": a.tag, "start": round(a.start, 2),
                              "end": a.end and round(a.end, 2), "rc": a.rc,
                              "stderr": a.stderr[-600:],
                              "events": [e for _, e in a.events[-6:]]} for a in recent],
                 "faults": [{"kind": f.kind, "at": f.at, "target": f.target, "note": f.note}
                            for f in self.faults[-3:]],
             }}
        self.violations.append(v)
        with open(os.path.join(self.run, "violations.jsonl"), "a") as f:
            f.write(json.dumps(v) + "\n")
        log(f"VIOLATION [{rule}] seed {self.seed} step {self.step}: {message}")

    def write_config(self, verify):
        with open(os.path.join(self.run, "main.hcl"), "w") as f:
            f.write(config_text(self.args.router, self.run, verify))

    # -- converging

    def converge_step(self, deadline):
        """Applies as an operator would, until one ends 0 (or the deadline)."""
        tries = 0
        while now() < deadline and tries < 40:
            tries += 1
            a = Apply(self, f"converge-{tries}")
            rc = a.wait()
            if rc == 0:
                return a
            m = re.search(r"cutover force-unlock (\S+)", a.stderr)
            if m and "stale" in a.stderr:
                u = subprocess.run([self.cutover, "-C", self.run, "force-unlock", m.group(1),
                                    *self.var_args()],
                                   capture_output=True, text=True, env=self.env, timeout=30)
                if u.returncode != 0:
                    self.violation("lock", f"force-unlock {m.group(1)} failed: {u.stderr[-400:]}")
            time.sleep(0.5)
        self.violation("converge", f"no apply ended 0 after {tries} tries; last: {a.stderr[-500:]}")
        return None

    # -- one step

    def run_step(self, i, kind):
        self.step = i
        target = OTHER[self.desired]
        self.desired = target
        self.releases[target] = f"{target}-{i}"
        verify = self.rng.random() < 0.3
        self.write_config(verify)
        fault = None
        if kind:
            # A kill of cutover must land while it runs: since the process
            # backend's start-up probe (896cc48) an apply without a fault
            # takes 0.2-0.5 s, and a kill 0-0.6 s in missed two in five.
            # It strikes after a random number of the apply's event lines
            # (the plan, each step's start and end, the state's saves: 12-13
            # in a release bump and cut-over), 0-20 ms later; the others
            # 0-1.2 s in. One that misses is tried again later (`run`).
            if kind.startswith("cutover_"):
                after = self.rng.randint(1, 9)
                # From the 8th line on (the gate passed, the cut-over
                # starting) an apply ends within milliseconds: strike at once.
                delay = 0.0 if after >= 8 else self.rng.uniform(0.0, 0.02)
                fault = Fault(kind, delay, self.rng.uniform(0.4, 3.0))
                fault.after_events = after
            else:
                fault = Fault(kind, self.rng.uniform(0.0, 1.2), self.rng.uniform(0.4, 3.0))
            self.faults.append(fault)
        a = Apply(self, f"step-{i}")
        t = None
        if fault:
            t = threading.Thread(target=inject, args=(self, fault, a), daemon=True)
            t.start()
        rc = a.wait()
        if t:
            t.join(timeout=APPLY_TIMEOUT)
        if self.args.sabotage == "gate" and i == self.args.applies // 2:
            self.sabotage_gate()
        done = a if rc == 0 and not fault else self.converge_step(now() + 90)
        if self.args.sabotage == "state" and i == self.args.applies // 2:
            self.sabotage_state()
        self.check_lock_overlap()
        self.check_after_step()
        missed = fault is not None and fault.at is None
        if done is None:
            return missed
        if fault and fault.at is not None:
            self.converge.setdefault(kind, []).append(done.end - fault.at)
        elif not fault:
            self.clean_steps.append(a.end - a.start)
        at = (f"after {fault.after_events} event lines +{fault.delay:.3f}s" if fault and fault.after_events
              else f"at +{fault.delay:.2f}s" if fault else "")
        log(f"step {i}: -> {target} {self.releases[target]}{' verify' if verify else ''}"
            f" rc {rc}{'' if not fault else f'; fault {kind} {at}'}"
            f"{'' if not fault or fault.at else ' (missed: ' + fault.note + ' ; tried again later)'}")
        return missed

    def sabotage_gate(self):
        """Break rule 2 by hand: switch to the idle colour, which no apply gated for it."""
        idle = OTHER[self.desired]
        log(f"SABOTAGE: switching by hand to {idle}, which no apply gated for this switch")
        time.sleep(0.5)
        self.router.hand_switch(idle)
        time.sleep(1.5)
        self.router.hand_switch(self.desired)

    def sabotage_state(self):
        """Break the state invariant by hand: move the serial back below the last one seen."""
        log(f"SABOTAGE: moving the state's serial back to {self.serial - 1}")
        s = json.load(open(self.state_path))
        s["serial"] = self.serial - 1
        with open(self.state_path, "w") as f:
            json.dump(s, f, indent=2, sort_keys=True)
            f.write("\n")

    # -- checks after a step

    def check_after_step(self):
        view = None
        if wait_for(lambda: self.router.view() in ("blue", "green"), 5):
            view = self.router.view()
        try:
            state = json.load(open(self.state_path))
        except (OSError, ValueError) as e:
            self.violation("state", f"the state file cannot be read: {e}")
            return
        if self.lineage is None:
            self.lineage = state.get("lineage")
        if state.get("lineage") != self.lineage:
            self.violation("state", f"lineage changed: {self.lineage} -> {state.get('lineage')}")
        if state.get("serial", -1) < self.serial:
            self.violation("state", f"serial went back: {self.serial} -> {state.get('serial')}")
        self.serial = max(self.serial, state.get("serial", -1))
        r = state.get("routers", {}).get("public", {})
        if view != self.desired:
            self.violation("state", f"the router's runtime API says {view}, the converged apply asked {self.desired}")
        if r.get("live") != view:
            self.violation("state", f"the state names {r.get('live')} live, the router has {view}")
        if self.step > 0 and view in OTHER and r.get("previous") != OTHER[view]:
            self.violation("state", f"the state names {r.get('previous')} previous, the router's other colour is {OTHER[view]}")
        self.check_processes(state, view)
        if os.path.exists(self.state_path + ".lock"):
            self.violation("lock", "a lock is left after a converging apply")
        self.check_gate(upto=now() - 1.0)

    def check_processes(self, state, view):
        running = our_demo_apps(self.run)
        for c, port in ROUTERS[self.args.router]["ports"].items():
            rec = state.get("environments", {}).get(c, {}).get("private", {}).get("pid")
            pids = sorted(p for p, col in running.items() if col == c)
            if pids != [rec]:
                self.violation("procs", f"{c}: the state records pid {rec}, running: {pids}")
            if rec and not pid_alive(rec):
                self.violation("procs", f"{c}: the recorded pid {rec} is gone")
        if view in OTHER and not listens(ROUTERS[self.args.router]["ports"][view]):
            self.violation("dead", f"after a converging apply the router points at {view}, which does not listen")

    def check_lock_overlap(self):
        """No two of our applies ever ran steps at the same time."""
        spans = []
        for a in self.applies[-6:]:
            starts = a.step_starts()
            if starts and a.end is not None:
                spans.append((starts[0][0], a.end, a))
        for i, (s1, e1, a1) in enumerate(spans):
            for s2, e2, a2 in spans[i + 1:]:
                if s1 < e2 - 0.02 and s2 < e1 - 0.02:
                    key = (a1.start, a2.start)
                    if key not in getattr(self, "_overlaps", set()):
                        self.__dict__.setdefault("_overlaps", set()).add(key)
                        self.violation("lock", f"applies {a1.tag} and {a2.tag} ran steps at the same time "
                                               f"({s1:.2f}-{e1:.2f} and {s2:.2f}-{e2:.2f})")

    # -- the gate invariant, from the load records, the prober and the monitor

    def episodes(self):
        """(start, colour, previous sample time) each time the router's view changed."""
        with self.obs.lock:
            samples = list(self.obs.samples)
        eps, cur, last_t = [], None, 0.0
        for t, view, _ in samples:
            if view in OTHER and view != cur:
                eps.append((t, view, last_t))
                cur = view
            if view is not None:
                last_t = t
        return eps

    def switching_applies(self, t_ep, prev_t):
        return [a for a in self.applies
                if a.start <= t_ep and (a.end is None or a.end >= prev_t - 0.05)]

    def gated_releases(self, colour, applies, t_ep):
        with self.obs.lock:
            healthy = {r: list(ts) for r, ts in self.obs.healthy.items() if r.startswith(colour + "-")}
        lo = min(a.start for a in applies)
        return {r for r, ts in healthy.items() if any(lo <= h <= t_ep for h in ts)}

    def check_gate(self, upto):
        lo = getattr(self, "_gate_checked", 0.0)
        if upto <= lo:
            return
        self._gate_checked = upto
        eps = self.episodes()
        gated = []
        for idx, (t_ep, colour, prev_t) in enumerate(eps):
            applies = self.switching_applies(t_ep, prev_t)
            asking = [a for a in applies if a.live == colour]
            # A switch back (verify failed): to the colour that served when
            # the apply began, with the releases that served it then.
            back = (not asking and applies and idx >= 2 and eps[idx - 2][1] == colour
                    and eps[idx - 1][0] >= min(a.start for a in applies) - SWITCH_LAG)
            if asking:
                gated.append(self.gated_releases(colour, asking, t_ep))
            elif back:
                gated.append(gated[idx - 2])
            else:
                # Each switch once: the check runs after every step, now
                # 0.3 s apart, over the last second.
                seen = self.__dict__.setdefault("_switches_reported", set())
                if t_ep >= lo and (t_ep, colour) not in seen:
                    seen.add((t_ep, colour))
                    what = ("while no apply ran" if not applies else
                            "during applies that asked for the other colour and were not switching back")
                    self.violation("gate", f"the router switched to {colour} between {prev_t:.2f}s and {t_ep:.2f}s {what}")
                gated.append(set())
        with self.obs.lock:
            recs = [r for r in self.obs.requests if lo <= r[0] < upto and r[3] == 200 and r[4]]
        reported = self.__dict__.setdefault("_reported", set())
        self.gate_stats[0] = len(eps)
        for t0, t1, kind, status, release, backend, error in recs:
            colour = release.split("-")[0]
            idx = max((i for i, e in enumerate(eps) if e[0] <= t0 + SWITCH_LAG), default=None)
            if idx is None:
                continue
            # The episodes of the answering colour the router may have been
            # in while the request was in it, from its send to its answer:
            # the monitor sees a switch up to SWITCH_LAG late and applies
            # come 0.3 s apart, so the one at t0 + SWITCH_LAG may be the
            # next one of that colour; and HAProxy retries a refused
            # connection 1 s later, by when the router may have switched
            # away and back to a colour redeployed and gated meanwhile.
            cands = [i for i, e in enumerate(eps)
                     if e[1] == colour and e[0] <= t1 + SWITCH_LAG
                     and (i + 1 == len(eps) or eps[i + 1][0] >= t0 - SWITCH_LAG)]
            if cands:
                if (any(release in gated[i] for i in cands)
                        or self.unobserved_switch(colour, release, t0)):
                    self.gate_stats[1] += 1
                elif (cands[-1], release) not in reported:
                    reported.add((cands[-1], release))
                    t_ep = eps[cands[-1]][0]
                    self.violation("gate", f"a request sent at {t0:.2f}s (answered at {t1:.2f}s) was answered by "
                                           f"{release}, which the prober never saw healthy in the apply that switched "
                                           f"to {colour} at {t_ep:.2f}s")
            else:
                t_ep, ep_colour, _ = eps[idx]
                near = t0 - t_ep < SWITCH_LAG + 0.5 or any(
                    0 <= e[0] - t1 < SWITCH_LAG + 0.5 for e in eps[idx + 1:idx + 2])
                if not near and self.unobserved_switch(colour, release, t0):
                    self.gate_stats[1] += 1
                elif not near and (idx, "other", release) not in reported:
                    reported.add((idx, "other", release))
                    self.violation("gate", f"a request at {t0:.2f}s was answered by {release} while the router "
                                           f"pointed at {ep_colour} (since {t_ep:.2f}s)")

    def unobserved_switch(self, colour, release, t0):
        """A switch the monitor could not see yet: the router died right
        after it, or (nginx) a reload still had old workers answering the
        monitor with the old colour while new ones served the new. Allowed
        only while an apply that asked for `colour` ran, and only for a
        release the prober saw healthy in it: the gate rule stays whole."""
        asking = [a for a in self.applies if a.live == colour and a.start <= t0
                  and (a.end is None or a.end >= t0 - SWITCH_LAG)]
        return bool(asking) and release in self.gated_releases(colour, asking, t0)

    def check_dead(self):
        """The router never points at a dead colour past a successful apply."""
        with self.obs.lock:
            samples = list(self.obs.samples)
        start = None
        for t, view, alive in samples + [(now(), None, {})]:
            dead = view in OTHER and not alive.get(view, True)
            if dead and start is None:
                start = t
            elif not dead and view is not None and start is not None:
                self.dead_max = max(self.dead_max, t - start)
                fixed_by = [a for a in self.applies
                            if a.rc == 0 and a.start > start + 0.2 and a.end is not None and a.end < t - 0.5]
                if fixed_by:
                    self.violation("dead", f"the router pointed at a colour whose process was gone from "
                                           f"{start:.2f}s to {t:.2f}s, past apply {fixed_by[0].tag} that ended 0 "
                                           f"at {fixed_by[0].end:.2f}s")
                start = None

    # -- the report

    def classify_failures(self):
        """Failed requests: during a router restart, to the colour a fault hit, or other."""
        windows = []
        ends = {}
        for a in self.applies:
            if a.end is not None:
                ends.setdefault(a.tag, []).append(a.end)
        for f in self.faults:
            if f.at is None:
                continue
            after = [a.end for a in self.applies if a.end and a.end > (f.cleared or f.at) and a.rc == 0]
            until = min(after) + 1.0 if after else f.at + 120
            windows.append((f.kind, f.target, f.at - 0.1, until))
        counts = {"router": 0, "faulted colour": 0, "other": 0}
        others = []
        with self.obs.lock:
            recs = [r for r in self.obs.requests if r[3] != 200 and r[0] >= self.ready_at]
        for rec in recs:
            t0, t1, kind, status, release, backend, error = rec
            colour = (release or "").split("-")[0] or (backend or "").split("/")[0] or None
            if self.args.router == "nginx" and backend:
                colour = next((c for c, p in ROUTERS["nginx"]["ports"].items() if str(p) in backend), colour)
            cls = "other"
            for fk, target, w0, w1 in windows:
                if t1 < w0 or t0 > w1:
                    continue
                if fk == "router_restart":
                    cls = "router"
                    break
                if fk in ("kill_target", "target_500", "target_hang") and colour in (target, None):
                    cls = "faulted colour"
            counts[cls] += 1
            if cls == "other":
                others.append(rec)
        return counts, others

    def report(self, wall):
        counts, others = self.classify_failures()
        with self.obs.lock:
            total = len(self.obs.requests)
            by_kind = {}
            for r in self.obs.requests:
                by_kind[r[2]] = by_kind.get(r[2], 0) + 1
        injected = {k: 0 for k in KINDS}
        missed = {k: 0 for k in KINDS}
        for f in self.faults:
            (injected if f.at is not None else missed)[f.kind] += 1
        lines = [f"Seed {self.seed}, router {self.args.router}, {wall:.0f} s, "
                 f"{self.step} steps, {len(self.applies)} applies run "
                 f"({sum(1 for a in self.applies if a.rc == 0)} ended 0).", "",
                 "| fault | injected | missed (apply already over) | converged after, s (median / max) |",
                 "|---|---|---|---|"]
        for k in KINDS:
            xs = self.converge.get(k, [])
            mm = f"{statistics.median(xs):.2f} / {max(xs):.2f}" if xs else "n/a"
            lines.append(f"| {k} | {injected[k]} | {missed[k]} | {mm} |")
        if self.clean_steps:
            lines.append(f"| (no fault) | {len(self.clean_steps)} steps | | one apply: "
                         f"{statistics.median(self.clean_steps):.2f} / {max(self.clean_steps):.2f} |")
        failed = sum(counts.values())
        lines += ["", f"Requests: {total} ({', '.join(f'{v} {k}' for k, v in sorted(by_kind.items()))}); "
                      f"failed {failed}: {counts['router']} while the fault had killed the router, "
                      f"{counts['faulted colour']} to the colour a fault killed or broke, "
                      f"{counts['other']} other.",
                  f"Gate check: {self.gate_stats[0]} switches seen on the router's runtime API, "
                  f"{self.gate_stats[1]} answers through the router attributed to a release the prober "
                  f"saw healthy in the apply that switched to it. Longest time the router pointed at a "
                  f"colour that did not listen: {self.dead_max:.2f} s.",
                  "Settles (waits before a colour changes until the router holds no stream to it): "
                  + "{} run, {} found streams still open, {} ended at their maximum.".format(
                      *[sum(x) for x in zip(*([a.settles() for a in self.applies] or [(0, 0, 0)]))]),
                  f"Violations: {len(self.violations)}"
                  + (" (" + ", ".join(f"{r} {n}" for r, n in sorted(self.rule_counts().items())) + ")"
                     if self.violations else "") + "."]
        if others:
            lines.append("Other failures (first 10): " + "; ".join(
                f"{r[0]:.2f}s {r[2]} {r[3] or r[6]} {r[5] or ''}" for r in others[:10]))
        return "\n".join(lines) + "\n"

    def rule_counts(self):
        out = {}
        for v in self.violations:
            out[v["rule"]] = out.get(v["rule"], 0) + 1
        return out

    # -- the whole run

    def schedule(self):
        kinds = [k for k in KINDS for _ in range(self.args.faults_per_kind)]
        kinds += [None] * max(0, self.args.applies - len(kinds))
        self.rng.shuffle(kinds)
        return kinds[:max(self.args.applies, len(kinds))]

    def main(self):
        os.makedirs(self.state_dir, exist_ok=True)
        for c in OTHER:
            open(os.path.join(self.run, f"fault-{c}"), "w").close()
        self.router.prepare()
        self.router.start()
        self.obs.start()
        self.write_config(False)
        log(f"seed {self.seed}: first apply (both colours, blue live)")
        if self.converge_step(now() + 60) is None:
            raise RuntimeError("the first apply did not succeed")
        self.check_after_step()
        self.ready_at = now()
        started = now()
        kinds = self.schedule()
        for i, kind in enumerate(kinds, start=1):
            if now() - started > self.args.max_seconds:
                log(f"--max-seconds {self.args.max_seconds} reached after {i - 1} steps")
                break
            if self.run_step(i, kind):
                # A fault that found nothing to strike (the apply had
                # ended) is tried again at a later fault-free step, so that
                # each kind strikes --faults-per-kind times when steps allow.
                free = [j for j in range(i, len(kinds)) if kinds[j] is None]
                if free:
                    kinds[self.rng.choice(free)] = kind
        time.sleep(1.5)
        self.check_gate(upto=now() - 1.0)
        self.check_dead()
        self.obs.finish()
        return now() - started

    def cleanup(self):
        subprocess.run(["chattr", "-i", self.state_dir], capture_output=True)
        self.obs.stop.set()
        for a in self.applies:
            if a.running():
                a.proc.kill()
                a.proc.wait()
        self.router.stop()
        for pid in our_demo_apps(self.run):
            try:
                os.killpg(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        log("router, demo apps and applies stopped")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--applies", type=int, default=200, help="steps (each one apply, plus converging ones)")
    ap.add_argument("--faults-per-kind", type=int, default=22)
    ap.add_argument("--router", choices=sorted(ROUTERS), default="haproxy")
    ap.add_argument("--max-seconds", type=float, default=1800)
    ap.add_argument("--sabotage", choices=["gate", "state"], default=os.environ.get("CHAOS_SABOTAGE"))
    ap.add_argument("--run", default=os.environ.get("CHAOS_RUN_DIR", "/tmp/cutover-chaos"))
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    if args.sabotage == "gate" and args.router != "haproxy":
        sys.exit("--sabotage gate switches HAProxy by hand; use --router haproxy")
    args.run = os.path.join(os.path.realpath(args.run), args.router)
    for p in [ROUTERS[args.router]["front"], *ROUTERS[args.router]["ports"].values()]:
        if listens(p):
            sys.exit(f"127.0.0.1:{p} is already in use; stop whatever listens there")
    if os.path.exists(args.run):
        subprocess.run(["chattr", "-i", os.path.join(args.run, "state")], capture_output=True)
        shutil.rmtree(args.run)
    os.makedirs(args.run)
    print(f"chaos: seed {args.seed} (replay with --seed {args.seed}), run dir {args.run}",
          file=sys.stderr, flush=True)
    # A SIGTERM (timeout, an operator) still stops everything by pid.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench = Bench(args, dict(os.environ, NO_COLOR="1"))
    try:
        wall = bench.main()
    finally:
        bench.cleanup()
    text = bench.report(wall)
    open(os.path.join(args.run, "report.md"), "w").write(text)
    print(text)
    sys.exit(1 if bench.violations else 0)


if __name__ == "__main__":
    main()
