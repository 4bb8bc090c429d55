#!/usr/bin/env bash
# The Caddy example, end to end, on loopback:
#   1. build cutover and the demo app;
#   2. start Caddy from this directory's caddy.json (installing it from the
#      OS packages when it is missing and we are root): HTTP on
#      127.0.0.1:18081, admin API on 127.0.0.1:18091, nothing saved outside
#      .run/ (HOME and XDG dirs there, `persist: false`);
#   3. apply: blue (1.4.1) goes live (cutover creates its route in Caddy);
#   4. plan and apply 1.4.2 to green and the cut-over to green, while a load
#      loop sends requests through Caddy and counts failures;
#   5. clean up: stop Caddy and the demo apps by their process ids.
# Exit status 0 only when every step worked and no request failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/../.." && pwd -P)"
run="$here/.run"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# Installed from the OS packages when missing (as root; otherwise the
# install command is printed): nothing the machine already runs is touched.
"$repo/scripts/os-packages.sh" caddy

# Caddy binds with SO_REUSEPORT: a leftover Caddy on these ports would
# silently share the traffic instead of making this one fail to start.
for port in 18081 18091 9111 9112; do
    if (: <>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "Something already listens on 127.0.0.1:$port (a previous run still going?); stop it first." >&2
        exit 1
    fi
done

# GET http://127.0.0.1:$1$2 with plain bash; prints the status line.
http_status() {
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$2" "$1" >&3
    head -n 1 <&3
    exec 3<&-
}

say "Building cutover and the demo app"
cargo build --quiet --manifest-path "$repo/Cargo.toml" --bins
# Where cargo put them (CARGO_TARGET_DIR or the build config may move target/).
target_dir="$(cargo metadata --quiet --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
export PATH="${target_dir:-$repo/target}/debug:$PATH"
export NO_COLOR="${NO_COLOR:-}"

rm -rf "$run" && mkdir -p "$run"
caddy_pid=""
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
    [ -n "$caddy_pid" ] && kill "$caddy_pid" 2>/dev/null && wait "$caddy_pid" 2>/dev/null
    say "Cleaned up (Caddy and demo apps stopped; logs were in $run)"
}
trap cleanup EXIT

say "Starting Caddy on 127.0.0.1:18081 (admin API on 127.0.0.1:18091)"
HOME="$run" XDG_DATA_HOME="$run/data" XDG_CONFIG_HOME="$run/config" \
    caddy run --config "$here/caddy.json" > "$run/caddy.log" 2>&1 &
caddy_pid=$!
for _ in $(seq 100); do
    case "$(http_status 18091 /config/ 2>/dev/null)" in *" 200 "*) break ;; esac
    kill -0 "$caddy_pid" 2>/dev/null || break
    sleep 0.1
done
case "$(http_status 18081 /router-health 2>/dev/null)" in
    *" 200 "*) ;;
    *) cat "$run/caddy.log" >&2; echo "Caddy did not start" >&2; exit 1 ;;
esac

say "cutover plan   (first run: both colours are created, cutover's route is created, blue goes live)"
cutover -C "$here" plan
say "cutover apply"
cutover -C "$here" apply --auto-approve

say "Through Caddy now:"
loadgen --url http://127.0.0.1:18081/ --duration 1 --threads 1

say "cutover plan --var green_release=1.4.2 --var live=green"
cutover -C "$here" plan --var green_release=1.4.2 --var live=green

say "cutover apply, while a load loop sends requests through Caddy"
loadgen --url http://127.0.0.1:18081/ --stop-file "$run/stop-load" --threads 2 > "$run/load.txt" &
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
echo "The way back would be: cutover -C examples/caddy rollback router.public"
