#!/usr/bin/env bash
# The ALB example, end to end, against moto's server on loopback (AWS's API,
# not AWS: docs/alb.md says what moto does not check):
#   1. build cutover and the demo app; make the moto virtual environment
#      (scripts/moto-venv.sh, PyPI) when it is missing;
#   2. start moto on 127.0.0.1:15000 and create, with boto3 from the same
#      environment (moto_alb.py), a VPC, an ALB, a target group per colour
#      with a target registered in each, and an HTTP listener forwarding to
#      blue's target group (seeded: the ARNs are main.hcl's defaults);
#   3. apply: the demo apps start, blue stays live, the preview rule shows
#      green;
#   4. plan and apply 1.4.2 to green and the cut-over to green: green's
#      health gate, then ONE ModifyListener; the preview rule then shows blue;
#   5. plan again: nothing left; clean up (moto and the demo apps stopped by
#      their process ids).
# Exit status 0 only when every step worked.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/../.." && pwd -P)"
run="$here/.run"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

"$repo/scripts/moto-venv.sh"
venv="${CUTOVER_MOTO_VENV:-$repo/target/moto-venv}"

if (: <>"/dev/tcp/127.0.0.1/15000") 2>/dev/null; then
    echo "Something already listens on 127.0.0.1:15000 (a previous run still going?); stop it first." >&2
    exit 1
fi

say "Building cutover and the demo app"
cargo build --quiet --manifest-path "$repo/Cargo.toml" --bins
target_dir="$(cargo metadata --quiet --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
export PATH="${target_dir:-$repo/target}/debug:$PATH"
export NO_COLOR="${NO_COLOR:-}"
# moto's credentials, and nothing of this machine's AWS configuration.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true

rm -rf "$run" && mkdir -p "$run"
moto_pid=""
cleanup() {
    set +e
    if [ -f "$run/cutover.state.json" ]; then
        for pid in $(grep -o '"pid": *[0-9]*' "$run/cutover.state.json" | grep -o '[0-9]*$'); do
            kill "$pid" 2>/dev/null
        done
    fi
    [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null && wait "$moto_pid" 2>/dev/null
    say "Cleaned up (moto and demo apps stopped; logs were in $run)"
}
trap cleanup EXIT

say "Starting moto's server on 127.0.0.1:15000"
"$venv/bin/moto_server" -H 127.0.0.1 -p 15000 > "$run/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 100); do
    (: <>"/dev/tcp/127.0.0.1/15000") 2>/dev/null && break
    kill -0 "$moto_pid" 2>/dev/null || break
    sleep 0.1
done
(: <>"/dev/tcp/127.0.0.1/15000") 2>/dev/null || { cat "$run/moto.log" >&2; echo "moto did not start" >&2; exit 1; }

say "Creating the ALB, its target groups and its listener in moto"
"$venv/bin/python" "$here/moto_alb.py" http://127.0.0.1:15000 setup --seed 42 | tee "$run/alb.json"

say "cutover plan   (first run: both colours are created, blue stays live, the preview rule shows green)"
cutover -C "$here" plan
say "cutover apply"
cutover -C "$here" apply --auto-approve

say "cutover plan --var green_release=1.4.2 --var live=green"
cutover -C "$here" plan --var green_release=1.4.2 --var live=green
say "cutover apply"
cutover -C "$here" apply --auto-approve --var green_release=1.4.2 --var live=green

say "The listener's rules in moto now"
"$venv/bin/python" "$here/moto_alb.py" http://127.0.0.1:15000 rules \
    "$(sed -n 's/.*"listener": "\([^"]*\)".*/\1/p' "$run/alb.json")"

say "cutover plan again: nothing left to do"
cutover -C "$here" plan --detailed-exitcode --var green_release=1.4.2 --var live=green

say "Done: green (1.4.2) is live on the ALB, blue (1.4.1) stays warm behind the preview rule."
echo "The way back would be: cutover -C examples/alb rollback router.public"
