#!/usr/bin/env bash
# The haproxy-pair example (one router over two HAProxys), end to end, on loopback:
#   1. build cutover and the demo app;
#   2. start two HAProxys (instances "a" and "b") from haproxy-a.cfg and
#      haproxy-b.cfg (installing HAProxy from the OS packages when it is
#      missing and we are root);
#   3. apply: blue (1.4.1) goes live on both;
#   4. apply 1.4.2 to green and the cut-over to green on both instances at
#      once, while a load loop sends requests through each, and show when
#      each instance switched (the JSON cutover_done line);
#   5. clean up: stop the HAProxys and the demo apps by their process ids.
# Exit status 0 only when every step worked and no request failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/../.." && pwd -P)"
run="$here/.run"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

"$repo/scripts/os-packages.sh" haproxy

say "Building cutover and the demo app"
cargo build --quiet --manifest-path "$repo/Cargo.toml" --bins
target_dir="$(cargo metadata --quiet --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
export PATH="${target_dir:-$repo/target}/debug:$PATH"
export NO_COLOR="${NO_COLOR:-}"

rm -rf "$run" && mkdir -p "$run"
pids=()
loads=()
cleanup() {
    set +e
    for pid in "${loads[@]}"; do kill "$pid" 2>/dev/null; done
    if [ -f "$run/cutover.state.json" ]; then
        for pid in $(grep -o '"pid": *[0-9]*' "$run/cutover.state.json" | grep -o '[0-9]*$'); do
            kill "$pid" 2>/dev/null
        done
    fi
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    say "Cleaned up (HAProxys and demo apps stopped; logs were in $run)"
}
trap cleanup EXIT

for x in a b; do
    : > "$run/live-$x.map"
    QUICKSTART_RUN="$run" haproxy -db -f "$here/haproxy-$x.cfg" > "$run/haproxy-$x.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do [ -S "$run/admin-$x.sock" ] && break; sleep 0.1; done
    [ -S "$run/admin-$x.sock" ] || { cat "$run/haproxy-$x.log" >&2; echo "HAProxy $x did not start" >&2; exit 1; }
done
say "Two HAProxys: a on 127.0.0.1:18085, b on 127.0.0.1:18086"

say "cutover plan   (first run: both colours are created, blue goes live on both instances)"
cutover -C "$here" plan
cutover -C "$here" apply --auto-approve

say "cutover plan --var green_release=1.4.2 --var live=green"
cutover -C "$here" plan --var green_release=1.4.2 --var live=green

say "cutover apply --json, while a load loop sends requests through each instance"
for port in 18085 18086; do
    loadgen --url "http://127.0.0.1:$port/" --stop-file "$run/stop-load" --threads 1 > "$run/load-$port.txt" &
    loads+=($!)
done
sleep 1
cutover -C "$here" apply --auto-approve --json --var green_release=1.4.2 --var live=green \
    | tee "$run/apply.jsonl" | grep '"cutover_done"'
sleep 1
touch "$run/stop-load"
load_status=0
for pid in "${loads[@]}"; do wait "$pid" || load_status=$?; done
loads=()
cat "$run"/load-*.txt

say "cutover plan again: nothing left to do"
cutover -C "$here" plan --detailed-exitcode --var green_release=1.4.2 --var live=green

if [ "$load_status" -ne 0 ]; then
    echo "Some requests failed during the cut-over." >&2
    exit 1
fi
say "Done: green (1.4.2) is live on both instances. No request failed."
