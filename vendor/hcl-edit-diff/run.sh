#!/usr/bin/env bash
# Compare upstream hcl-edit 0.10.0 with the vendored copy on every file named
# on stdin, one process per file so that a parse upstream backtracks on for
# minutes can be stopped (LIMIT seconds, default 5): such a file is counted
# as "upstream did not finish" and the vendored copy's answer alone is kept.
#   find /tmp/cutover-fuzz/config -type f | vendor/hcl-edit-diff/run.sh
# (a corpus a fuzzer is writing to changes under it: copy it first)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
limit=${LIMIT:-5}
target=${CARGO_TARGET_DIR:-$here/target}
(cd "$here" && CARGO_TARGET_DIR=$target cargo build --release -q)
bin=$target/release/hcl-edit-diff
same=0 differ=0 slow=0
while IFS= read -r f; do
    rc=0
    out=$(timeout "$limit" "$bin" "$f" 2>&1) || rc=$?
    if [ "$rc" = 0 ]; then
        case $out in
            *"differ 0"*) same=$((same + 1)) ;;
            *) differ=$((differ + 1)); echo "DIFFER $f" ;;
        esac
    elif [ "$rc" = 124 ]; then
        slow=$((slow + 1)); echo "UPSTREAM-SLOW $f"
    else
        echo "run.sh: $f: $out" >&2; exit 1
    fi
done
echo "files $((same + differ + slow)): same $same, differ $differ, upstream did not finish within ${limit}s $slow"
