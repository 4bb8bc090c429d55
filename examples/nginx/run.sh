#!/usr/bin/env bash
# The nginx example, end to end, on loopback:
#   1. build cutover and the demo app;
#   2. start nginx from this directory's nginx.conf (installing it from the
#      OS packages when it is missing and we are root), with its prefix, pid
#      file and logs in .run/: HTTP on 127.0.0.1:18082, and the include that
#      cutover owns (first copied from initial-include.conf);
#   3. apply: blue (1.4.1) goes live (cutover rewrites the include, runs
#      `nginx -t`, reloads nginx and checks what the new workers serve);
#   4. plan and apply 1.4.2 to green and the cut-over to green, while a load
#      loop sends requests through nginx and counts failures;
#   5. clean up: stop nginx and the demo apps by their process ids.
# Exit status 0 only when every step worked and no request failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/../.." && pwd -P)"
run="$here/.run"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

nginx_bin="$(command -v nginx || true)"
[ -n "$nginx_bin" ] || [ ! -x /usr/sbin/nginx ] || nginx_bin=/usr/sbin/nginx
if [ -z "$nginx_bin" ]; then
    # Installed from the OS packages (as root; otherwise the install command
    # is printed): nothing the machine already runs is touched.
    "$repo/scripts/os-packages.sh" nginx
    nginx_bin=/usr/sbin/nginx
fi
# cutover runs `nginx -t` itself: make sure it finds the same binary.
export PATH="$PATH:$(dirname "$nginx_bin")"

for port in 18082 18092 9121 9122; do
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
# When we are root, nginx's workers run as an unprivileged user.
chmod 755 "$run"
cp "$here/initial-include.conf" "$run/public.conf"
nginx_pid=""
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
    # SIGQUIT: nginx's graceful stop.
    [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    say "Cleaned up (nginx and demo apps stopped; logs were in $run)"
}
trap cleanup EXIT

say "Starting nginx on 127.0.0.1:18082 (prefix $run/)"
"$nginx_bin" -p "$run/" -c "$here/nginx.conf" -e "$run/error.log" > "$run/nginx.out" 2>&1 &
nginx_pid=$!
for _ in $(seq 100); do
    if [ "$(cat "$run/nginx.pid" 2>/dev/null)" = "$nginx_pid" ]; then
        case "$(http_status 18082 /router-health 2>/dev/null)" in *" 200 "*) break ;; esac
    fi
    kill -0 "$nginx_pid" 2>/dev/null || break
    sleep 0.1
done
case "$(http_status 18082 /router-health 2>/dev/null)" in
    *" 200 "*) ;;
    *) cat "$run/nginx.out" "$run/error.log" >&2 2>/dev/null; echo "nginx did not start" >&2; exit 1 ;;
esac

say "cutover plan   (first run: both colours are created, blue goes live)"
cutover -C "$here" plan
say "cutover apply"
cutover -C "$here" apply --auto-approve

say "Through nginx now:"
loadgen --url http://127.0.0.1:18082/ --duration 1 --threads 1

say "cutover plan --var green_release=1.4.2 --var live=green"
cutover -C "$here" plan --var green_release=1.4.2 --var live=green

say "cutover apply, while a load loop sends requests through nginx"
loadgen --url http://127.0.0.1:18082/ --stop-file "$run/stop-load" --threads 2 > "$run/load.txt" &
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
echo "The way back would be: cutover -C examples/nginx rollback router.public"
