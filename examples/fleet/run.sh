#!/usr/bin/env bash
# The fleet example, end to end, on loopback:
#   1. build cutover and the demo app;
#   2. start one HAProxy with three services (api, web, docs), each a map
#      key and a blue and a green backend (installing HAProxy from the OS
#      packages when it is missing and we are root);
#   3. apply: six colours from one map (three blocks with for_each), every
#      service blue (1.4.1);
#   4. deploy 1.4.2 to web's green and cut web over, under load through
#      every service: only web's router switches;
#   5. clean up: stop HAProxy and the demo apps by their process ids.
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
    say "Cleaned up (HAProxy and demo apps stopped; logs were in $run)"
}
trap cleanup EXIT

: > "$run/live.map"
QUICKSTART_RUN="$run" haproxy -db -f "$here/haproxy.cfg" > "$run/haproxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$run/admin.sock" ] && break; sleep 0.1; done
[ -S "$run/admin.sock" ] || { cat "$run/haproxy.log" >&2; echo "HAProxy did not start" >&2; exit 1; }
say "HAProxy: api on 127.0.0.1:18181, web on :18182, docs on :18183"

say "cutover plan   (first run: six colours from one map, every service goes live on blue)"
cutover -C "$here" plan
cutover -C "$here" apply --auto-approve

vars=(--var 'green={ web = "1.4.2" }' --var 'live={ web = "green" }')
say "cutover plan ${vars[*]}   (only web changes)"
cutover -C "$here" plan "${vars[@]}"

say "cutover apply --json, while a load loop sends requests through every service"
for port in 18181 18182 18183; do
    loadgen --url "http://127.0.0.1:$port/" --stop-file "$run/stop-load" --threads 1 > "$run/load-$port.txt" &
    loads+=($!)
done
sleep 1
cutover -C "$here" apply --auto-approve --json "${vars[@]}" \
    | tee "$run/apply.jsonl" | grep '"cutover_done"'
sleep 1
touch "$run/stop-load"
load_status=0
for pid in "${loads[@]}"; do wait "$pid" || load_status=$?; done
loads=()
cat "$run"/load-*.txt

say "What each service serves now"
for port in 18181 18182 18183; do printf '127.0.0.1:%s  ' "$port"; curl -s "http://127.0.0.1:$port/"; done
cutover -C "$here" status "${vars[@]}"

say "cutover plan again: nothing left to do"
cutover -C "$here" plan --detailed-exitcode "${vars[@]}"

if [ "$load_status" -ne 0 ]; then
    echo "Some requests failed during the cut-over." >&2
    exit 1
fi
grep -q '"router":"svc\[\\"web\\"\]"' "$run/apply.jsonl" || { echo "web did not cut over" >&2; exit 1; }
if grep '"type":"cutover_done"' "$run/apply.jsonl" | grep -v 'svc\[\\"web\\"\]' | grep -q .; then
    echo "a router other than web's switched" >&2
    exit 1
fi
say "Done: web runs 1.4.2 on green; api and docs stayed on blue. No request failed."
