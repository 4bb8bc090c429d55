#!/usr/bin/env bash
# The seed's staging flow, end to end, on loopback:
#   1. build cutover and the demo app; start HAProxy (live 127.0.0.1:18180,
#      preview 127.0.0.1:18190) and Prometheus (127.0.0.1:19090, scraping
#      both colours every second) from this directory's configs;
#   2. apply: blue (1.0) goes live;
#   3. release 2.0 to green, which answers 5% of requests with 500: its test
#      passes through the preview, but its `before` analysis sees the errors
#      under test traffic, and blue stays live;
#   4. release 2.1 to green, with --pause-before-cutover: tested, analysed,
#      then the apply waits until `cutover approve` (run here from a second
#      process), switches, and analyses green again under live traffic;
#   5. release 3.0 to blue, which goes bad only 12 s after it starts — after
#      its checks before the switch passed: the `after` analysis catches it
#      under live traffic and switches back to green;
#   6. clean up: HAProxy, Prometheus and the demo apps stopped by their pids.
# Exit status 0 only when every step did what it says.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/../.." && pwd -P)"
run="$here/.run"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

"$repo/scripts/os-packages.sh" haproxy prometheus

say "Building cutover and the demo app"
cargo build --quiet --manifest-path "$repo/Cargo.toml" --bins
target_dir="$(cargo metadata --quiet --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
export PATH="${target_dir:-$repo/target}/debug:$PATH"
export NO_COLOR="${NO_COLOR:-}"

rm -rf "$run" && mkdir -p "$run"
: > "$run/live.map"
pids=()
cleanup() {
    set +e
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    if [ -f "$run/cutover.state.json" ]; then
        for pid in $(grep -o '"pid": *[0-9]*' "$run/cutover.state.json" | grep -o '[0-9]*$'); do
            kill "$pid" 2>/dev/null
        done
    fi
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
    say "Cleaned up (HAProxy, Prometheus and demo apps stopped; logs were in $run)"
}
trap cleanup EXIT

say "Starting HAProxy (live 127.0.0.1:18180, preview 127.0.0.1:18190) and Prometheus (127.0.0.1:19090)"
QUICKSTART_RUN="$run" haproxy -db -f "$here/haproxy.cfg" > "$run/haproxy.log" 2>&1 &
pids+=($!)
prometheus --config.file "$here/prometheus.yml" --storage.tsdb.path "$run/prometheus" \
    --web.listen-address 127.0.0.1:19090 > "$run/prometheus.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    [ -S "$run/admin.sock" ] && break
    sleep 0.1
done
[ -S "$run/admin.sock" ] || { cat "$run/haproxy.log" >&2; echo "HAProxy did not start" >&2; exit 1; }

cutover() { command cutover -C "$here" "$@"; }
# Test traffic through the preview, so the `before` analysis has something
# to measure; live traffic through the live listener.
load() { loadgen --url "$1" --stop-file "$run/stop-$2" --threads 1 > "$run/load-$2.txt" 2>&1 || true; }
start_load() { rm -f "$run/stop-$2"; load "$1" "$2" & pids+=($!); }
stop_load() { touch "$run/stop-$1"; }

# Live and preview traffic all along (the live listener answers 503 until
# a colour is live): what the analyses measure.
start_load http://127.0.0.1:18180/ live
start_load http://127.0.0.1:18190/ preview

say "1. cutover apply: blue (1.0) goes live"
cutover apply --auto-approve

say "2. Release 2.0 to green, answering 5% errors: the before analysis stops it"
status=0
cutover apply --auto-approve --var green_release=2.0 --var green_error_rate=0.05 --var live=green || status=$?
[ "$status" -eq 1 ] || { echo "expected the before analysis to stop release 2.0 (exit 1), got $status" >&2; exit 1; }
loadgen --url http://127.0.0.1:18180/ --duration 1 --threads 1 | grep -q "release: 1.0:" \
    || { echo "blue should still be live" >&2; exit 1; }
echo "blue (1.0) is still live: nothing switched."

say "3. Release 2.1 to green: tested, analysed, paused for approval, switched, analysed live"
cutover plan --pause-before-cutover --var green_release=2.1 --var live=green
cutover apply --auto-approve --pause-before-cutover --var green_release=2.1 --var live=green \
    > "$run/apply-2.1.txt" 2>&1 &
apply_pid=$!
for _ in $(seq 600); do grep -q "waiting up to" "$run/apply-2.1.txt" && break; sleep 0.1; done
cat "$run/apply-2.1.txt"
say "   ...from another terminal: cutover approve public"
cutover approve public
wait "$apply_pid"
sed -n '/approved by/,$p' "$run/apply-2.1.txt"

say "4. Release 3.0 to blue, going bad only under live traffic: the after analysis switches back"
status=0
cutover apply --auto-approve --var green_release=2.1 --var blue_release=3.0 \
    --var blue_error_rate=0.2 --var blue_errors_after=12 --var live=blue || status=$?
stop_load preview
stop_load live
[ "$status" -eq 1 ] || { echo "expected the after analysis to switch back (exit 1), got $status" >&2; exit 1; }
loadgen --url http://127.0.0.1:18180/ --duration 1 --threads 1 | grep -q "release: 2.1:" \
    || { echo "green (2.1) should be live again" >&2; exit 1; }

say "Done: 2.0 never went live; 2.1 went live once approved; 3.0 was switched back. green (2.1) is live."
