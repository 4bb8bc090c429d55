#!/usr/bin/env bash
# The chaos bench: --applies steps of release bumps and cut-overs under load
# while a seeded schedule of faults strikes at random moments; invariants
# checked after every step. See chaos.py for what runs and what is checked,
# and docs/reliability.md for the figures.
#
#   benches/chaos/run.sh [--seed N] [--applies 200] [--faults-per-kind 22]
#                        [--router haproxy|nginx] [--max-seconds 1800]
#                        [--sabotage gate|state]
#
# Needs haproxy, nginx, chattr and python3, and root (chattr +i). Builds the
# release binaries into $CARGO_TARGET_DIR (default target/); CUTOVER=PATH
# runs another cutover binary. Loopback only; runtime files in
# $CHAOS_RUN_DIR (default /tmp/cutover-chaos). Exit 1 when any invariant
# was violated.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/../.." && pwd -P)"
target="${CARGO_TARGET_DIR:-$repo/target}"

for tool in haproxy nginx chattr python3; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
        echo "$tool is missing: apt-get install -y $tool" >&2; exit 1; }
done

if [ -z "${CHAOS_NO_BUILD:-}" ]; then
    echo "chaos: building cutover and demo-app (release)" >&2
    CARGO_TARGET_DIR="$target" cargo build --quiet --release --manifest-path "$repo/Cargo.toml" \
        --bin cutover --bin demo-app
fi
export PATH="$target/release:$PATH:/usr/sbin"
export PYTHONDONTWRITEBYTECODE=1
exec timeout --signal=INT --kill-after=60 "${CHAOS_HARD_LIMIT:-7200}" python3 "$here/chaos.py" "$@"
