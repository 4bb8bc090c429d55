#!/usr/bin/env bash
# The quickstart cut-over, end to end, on loopback:
#   1. build cutover and the demo app;
#   2. start HAProxy from this directory's haproxy.cfg (installing it from the
#      OS packages when it is missing and we are root);
#   3. apply: blue (1.4.1) goes live;
#   4. plan and apply 1.4.2 to green and the cut-over to green, while a load
#      loop sends requests through HAProxy and counts failures;
#   5. clean up: stop HAProxy and the demo apps by their process ids.
# Exit status 0 only when every step worked and no request failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/../.." && pwd -P)"
run="$here/.run"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# Installed from the OS packages when missing (as root; otherwise the
# install command is printed): nothing the machine already runs is touched.
"$repo/scripts/os-packages.sh" haproxy

say "Building cutover and the demo app"
cargo build --quiet --manifest-path "$repo/Cargo.toml" --bins
# Where cargo put the binaries (CARGO_TARGET_DIR may move them).
target_dir="$(cargo metadata --quiet --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
export PATH="${target_dir:-$repo/target}/debug:$PATH"
export NO_COLOR="${NO_COLOR:-}"

rm -rf "$run" && mkdir -p "$run"
: > "$run/live.map"
haproxy_pid=""
load_pid=""
cleanup() {
    set +e
    [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null
    # The demo apps were started by cutover, detached; their pids are in the state.
    if [ -f "$run/cutover.state.json" ]; then
        for pid in $(grep -o '"pid": *[0-9]*' "$run/cutover.state.json" | grep -o '[0-9]*$'); do
            kill "$pid" 2>/dev/null
        done
    fi
    [ -n "$haproxy_pid" ] && kill "$haproxy_pid" 2>/dev/null && wait "$haproxy_pid" 2>/dev/null
    say "Cleaned up (HAProxy and demo apps stopped; logs were in $run)"
}
trap cleanup EXIT

say "Starting HAProxy on 127.0.0.1:18080 (admin socket $run/admin.sock)"
QUICKSTART_RUN="$run" haproxy -db -f "$here/haproxy.cfg" > "$run/haproxy.log" 2>&1 &
haproxy_pid=$!
for _ in $(seq 50); do [ -S "$run/admin.sock" ] && break; sleep 0.1; done
[ -S "$run/admin.sock" ] || { cat "$run/haproxy.log" >&2; echo "HAProxy did not start" >&2; exit 1; }

say "cutover plan   (first run: both colours are created, blue goes live)"
cutover -C "$here" plan
say "cutover apply"
cutover -C "$here" apply --auto-approve

say "Through HAProxy now: live (127.0.0.1:18080) and preview (127.0.0.1:18090)"
loadgen --url http://127.0.0.1:18080/ --duration 1 --threads 1
loadgen --url http://127.0.0.1:18090/ --duration 1 --threads 1

say "cutover plan --var green_release=1.4.2 --var live=green"
cutover -C "$here" plan --var green_release=1.4.2 --var live=green

say "cutover apply, while a load loop sends requests through HAProxy"
loadgen --url http://127.0.0.1:18080/ --stop-file "$run/stop-load" --threads 2 > "$run/load.txt" &
load_pid=$!
sleep 1
cutover -C "$here" apply --auto-approve --var green_release=1.4.2 --var live=green
sleep 1
touch "$run/stop-load"
load_status=0
wait "$load_pid" || load_status=$?
load_pid=""
cat "$run/load.txt"

say "cutover plan again: nothing left to do"
cutover -C "$here" plan --detailed-exitcode --var green_release=1.4.2 --var live=green

if [ "$load_status" -ne 0 ]; then
    echo "Some requests failed during the cut-over." >&2
    exit 1
fi
say "Done: green (1.4.2) is live, blue (1.4.1) stays warm. No request failed."
echo "The way back would be: cutover -C examples/quickstart rollback router.public"
