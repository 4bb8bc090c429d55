#!/usr/bin/env bash
# Run every fuzz target, one after another on one core, each until it has
# made RUNS executions or spent SECONDS, and print what each did.
#
#   fuzz/run.sh [SECONDS] [RUNS] [TARGET...]     (defaults: 300, 10000000, all)
#
# Builds with `cargo fuzz build -s none` (RUSTC_BOOTSTRAP=1 on stable Rust)
# unless FUZZ_NO_BUILD is set. New inputs go to $FUZZ_DIR (default
# /tmp/cutover-fuzz/TARGET), never into fuzz/corpus; crashes to
# $FUZZ_DIR/artifacts/TARGET/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
secs="${1:-300}"; runs="${2:-10000000}"; shift $(( $# > 2 ? 2 : $# ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(habits exec_reply haproxy_reply caddy_config journal state saved_plan config)
dir="${FUZZ_DIR:-/tmp/cutover-fuzz}"
cd "$here"
if [ -z "${FUZZ_NO_BUILD:-}" ]; then
    RUSTC_BOOTSTRAP=1 cargo fuzz build -s none
fi
bin="${CARGO_TARGET_DIR:-$here/target}/x86_64-unknown-linux-gnu/release"
for t in "${targets[@]}"; do
    mkdir -p "$dir/$t" "$dir/artifacts/$t"
    extra=()
    [ "$t" = config ] && extra=(-dict="$here/hcl.dict")
    start=$(date +%s)
    set +e
    "$bin/$t" "$dir/$t" "$here/corpus/$t" -runs="$runs" -max_total_time="$secs" \
        -artifact_prefix="$dir/artifacts/$t/" -print_final_stats=1 "${extra[@]}" \
        > "$dir/$t.log" 2>&1
    rc=$?
    set -e
    done_line=$(grep -E "^Done [0-9]+ runs" "$dir/$t.log" | tail -1)
    execs=$(grep -E "stat::number_of_executed_units" "$dir/$t.log" | awk '{print $2}' | tail -1)
    echo "$t: exit $rc, ${execs:-?} executions in $(( $(date +%s) - start )) s; ${done_line:-no Done line}; crashes: $(ls "$dir/artifacts/$t" | wc -l)"
done
