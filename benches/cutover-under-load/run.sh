#!/usr/bin/env bash
# The cut-over benchmark: for each of HAProxy, Caddy and nginx, N alternating
# cut-overs (blue -> green -> blue ...) made by `cutover apply` under load, then
# the same N switches made by hand (the baseline), counting failed requests.
#
#   benches/cutover-under-load/run.sh [--cutovers 20] [--routers haproxy,caddy,nginx] [--fleets 2,4]
#
# --fleets adds the fleet case: one router over 2 and 4 HAProxy instances
# (--fleets "" leaves it out, --routers "" runs only it).
#
# Needs haproxy, caddy, nginx, wrk, curl and python3 (Debian:
# apt-get install -y haproxy caddy nginx wrk curl python3); the fleet case
# alone needs only haproxy and python3. Builds the release
# binaries (cutover, demo-app, loadgen) into $CARGO_TARGET_DIR (default
# target/). Everything listens on 127.0.0.1 only; runtime files go to
# $BENCH_RUN_DIR (default /tmp/cutover-under-load), outside the repository.
# See bench.py for what one measuring window is, and docs/benchmarks.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/../.." && pwd -P)"
target="${CARGO_TARGET_DIR:-$repo/target}"

# bench.py checks the tools of the cases asked for (haproxy, caddy, nginx,
# wrk, curl); python3 is needed to run it at all.
command -v python3 >/dev/null 2>&1 || { echo "python3 is missing: apt-get install -y python3" >&2; exit 1; }

echo "bench: building cutover, demo-app and loadgen (release)" >&2
CARGO_TARGET_DIR="$target" cargo build --quiet --release --manifest-path "$repo/Cargo.toml" --bins
export PATH="$target/release:$PATH:/usr/sbin"
exec python3 "$here/bench.py" "$@"
