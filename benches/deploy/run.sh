#!/usr/bin/env bash
# The deploy-path benchmark (issue 12): SERVICES services (default 250), each
# with a blue and a green `process` colour (demo-app on its own loopback
# port), so 2 x SERVICES processes, behind one real HAProxy, made by three
# blocks with `for_each` over one map of services. Two applies, each timed:
#
#   deploy   from nothing: every colour started and health-gated; every
#            router's live key on blue and its preview key on green
#   release  green's release bumped: every green stopped, started again on
#            the new release and gated; every router cut over to green (its
#            preview to blue), all in one apply
#
# After each, check.py checks the world: exactly 2 x SERVICES demo-app
# processes of this run alive, the ones the state records, one per
# environment, each answering its release on its own port, none orphaned or
# duplicated; HAProxy's map (memory and file) and a request through HAProxy
# for every router. Then it stops every process by the pid the state
# records and checks that none of this run is left; HAProxy is stopped by
# its pid. Exit 1 on any failed check or an apply over APPLY_TIMEOUT.
#
#   benches/deploy/run.sh
#   SERVICES=50 PORT_BASE=20000 HAPROXY_PORT=19990 benches/deploy/run.sh
#   PARALLELISM=50 ...     # passed to both applies (default: cutover's, 10)
#   CUTOVER=/path/to/cutover DEMO_APP=/path/to/demo-app ...   # no build
#
# Ports: PORT_BASE .. PORT_BASE + 2 x SERVICES - 1 (blue of service I on
# PORT_BASE + 2I, green on the next) and HAPROXY_PORT, all on 127.0.0.1,
# checked free first. Results: a line per apply on stdout and $WORK/results.tsv.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SERVICES=${SERVICES:-250}
PORT_BASE=${PORT_BASE:-19400}
HAPROXY_PORT=${HAPROXY_PORT:-19390}
APPLY_TIMEOUT=${APPLY_TIMEOUT:-120}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=${WORK:-/tmp/cutover-deploy.$$}
BLUE_RELEASE=1.0.0
GREEN_RELEASE=1.1.0

if [ -z "${CUTOVER:-}" ]; then
    (cd "$ROOT" && cargo build --release --no-default-features --bin cutover --bin demo-app --quiet)
fi
CUTOVER=${CUTOVER:-$TARGET/release/cutover}
DEMO_APP=$(realpath "${DEMO_APP:-$TARGET/release/demo-app}")
command -v haproxy >/dev/null || { echo "haproxy is missing: apt-get install -y haproxy" >&2; exit 1; }

python3 "$HERE/check.py" ports "$PORT_BASE" $((2 * SERVICES)) "$HAPROXY_PORT"
rm -rf "$WORK"; mkdir -p "$WORK/config"
DIR=$(realpath "$WORK/config")
SOCK=$WORK/admin.sock
MAP=$WORK/live.map
RESULTS=$WORK/results.tsv
printf 'phase\tservices\tprocesses\twall_s\trss_kib\tcpu_s\n' >"$RESULTS"

HAPROXY_PID=
cleanup() {
    local rc=$?
    # Whatever an interrupted run left: the processes it started for $DIR
    # (check.py finds them by the owner cutover marks them with), by pid.
    if [ -f "$DIR/cutover.state.json" ]; then python3 "$HERE/check.py" stop "$DIR" "$DEMO_APP" >/dev/null 2>&1 || true; fi
    for pid in $(python3 "$HERE/check.py" owned "$DIR" "$DEMO_APP" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    if [ -n "$HAPROXY_PID" ]; then kill "$HAPROXY_PID" 2>/dev/null || true; wait "$HAPROXY_PID" 2>/dev/null || true; fi
    exit "$rc"
}
trap cleanup EXIT

# --- HAProxy: one map, a backend per colour of every service ----------------
: >"$MAP"
{
    cat <<CFG
global
    noreuseport
    stats socket $SOCK mode 600 level admin
    stats timeout 30s
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend public
    bind 127.0.0.1:$HAPROXY_PORT
    use_backend %[req.hdr(x-router),map($MAP,no_live)]
backend no_live
    http-request return status 503
CFG
    for ((i = 0; i < SERVICES; i++)); do
        printf 'backend blue.s%d\n    server s 127.0.0.1:%d\n' "$i" $((PORT_BASE + 2 * i))
        printf 'backend green.s%d\n    server s 127.0.0.1:%d\n' "$i" $((PORT_BASE + 2 * i + 1))
    done
} >"$WORK/haproxy.cfg"
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "HAProxy did not start:" >&2; cat "$WORK/haproxy.log" >&2; exit 1; }

# --- the configuration: one map of services, three blocks -------------------
{
    echo "locals {"
    echo "  services = {"
    for ((i = 0; i < SERVICES; i++)); do printf '    s%d = { port = %d }\n' "$i" $((PORT_BASE + 2 * i)); done
    echo "  }"
    echo "}"
} >"$DIR/services.hcl"
cat >"$DIR/main.hcl" <<HCL
variable "green_release" {
  default = "$BLUE_RELEASE"
}

variable "live" {
  default = "blue"
}

environment "blue" {
  for_each = local.services
  release  = "$BLUE_RELEASE"
  endpoint = "127.0.0.1:\${each.value.port}"
  process {
    command = ["$DEMO_APP", "--port", tostring(each.value.port), "--release", "$BLUE_RELEASE"]
    grace   = "5s"
  }
  health {
    path     = "/healthz"
    interval = "100ms"
    timeout  = "20s"
  }
}

environment "green" {
  for_each = local.services
  release  = var.green_release
  endpoint = "127.0.0.1:\${each.value.port + 1}"
  process {
    command = ["$DEMO_APP", "--port", tostring(each.value.port + 1), "--release", var.green_release]
    grace   = "5s"
  }
  health {
    path     = "/healthz"
    interval = "100ms"
    timeout  = "20s"
  }
}

router "r" {
  for_each = local.services
  live     = var.live == "blue" ? environment.blue[each.key] : environment.green[each.key]
  preview  = var.live == "blue" ? environment.green[each.key] : environment.blue[each.key]
  haproxy {
    socket = "$SOCK"
    map    = "$MAP"
  }
}
HCL

# apply PHASE ARGS...: one timed apply, bounded by APPLY_TIMEOUT.
apply() {
    local phase=$1 rc=0; shift
    local cmd=("$CUTOVER" -C "$DIR" apply --auto-approve "$@")
    [ -n "${PARALLELISM:-}" ] && cmd+=(--parallelism "$PARALLELISM")
    echo "== $phase: ${cmd[*]}"
    python3 "$ROOT/benches/scale/measure.py" "$WORK/time.out" "$WORK/$phase.stdout" "$WORK/$phase.stderr" -- \
        timeout --kill-after=10 "$APPLY_TIMEOUT" "${cmd[@]}" || rc=$?
    if [ "$rc" -ne 0 ]; then
        [ "$rc" = 124 ] && echo "FAILED: over APPLY_TIMEOUT=${APPLY_TIMEOUT}s" >&2
        echo "FAILED (exit $rc): ${cmd[*]}" >&2
        tail -20 "$WORK/$phase.stderr" >&2
        exit 1
    fi
    read -r wall rss cpu <"$WORK/time.out"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$SERVICES" $((2 * SERVICES)) "$wall" "$rss" "$cpu" >>"$RESULTS"
    printf '  %s: %s s wall, %s KiB peak RSS, %s s CPU (cutover)\n' "$phase" "$wall" "$rss" "$cpu"
    grep -E '^(Apply complete|Plan:)' "$WORK/$phase.stdout" | sed 's/^/  /' || true
}

echo "deploy benchmark: $SERVICES services, $((2 * SERVICES)) process colours, one HAProxy; $WORK; $(uptime)"
apply deploy
python3 "$HERE/check.py" world "$DIR" "$DEMO_APP" "$SERVICES" "$PORT_BASE" "$SOCK" "$MAP" "$HAPROXY_PORT" \
    blue "$BLUE_RELEASE" "$BLUE_RELEASE"
apply release --var green_release="$GREEN_RELEASE" --var live=green
python3 "$HERE/check.py" world "$DIR" "$DEMO_APP" "$SERVICES" "$PORT_BASE" "$SOCK" "$MAP" "$HAPROXY_PORT" \
    green "$BLUE_RELEASE" "$GREEN_RELEASE"
rc=0; "$CUTOVER" -C "$DIR" plan --detailed-exitcode --var green_release="$GREEN_RELEASE" --var live=green >"$WORK/plan-after.stdout" 2>&1 || rc=$?
[ "$rc" = 0 ] || { echo "FAIL: the plan after the release apply is not empty (exit $rc): $WORK/plan-after.stdout" >&2; exit 1; }
echo "ok: a plan after it has nothing to do"
python3 "$HERE/check.py" stop "$DIR" "$DEMO_APP"
echo "results: $RESULTS ($(uptime))"
