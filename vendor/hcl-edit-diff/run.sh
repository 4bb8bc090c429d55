#!/usr/bin/env bash
# Compare upstream hcl-edit 0.10.0 with the vendored copy on every file named
# on stdin, one process per file so that a parse upstream backtracks on for
# minutes can be stopped (LIMIT seconds, default 5): such a file is counted
# as "upstream did not finish" and the vendored copy's answer alone is kept.
#   find /tmp/cutover-fuzz/config -type f | vendor/hcl-edit-diff/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
limit=${LIMIT:-5}
target=${CARGO_TARGET_DIR:-$here/target}
(cd "$here" && CARGO_TARGET_DIR=$target cargo build --release -q)
bin=$target/release/hcl-edit-diff
same=0 differ=0 slow=0
while IFS= read -r f; do
    if out=$(timeout "$limit" "$bin" "$f"); then
        case $out in
            *"differ 0"*) same=$((same + 1)) ;;
            *) differ=$((differ + 1)); echo "DIFFER $f" ;;
        esac
    else
        slow=$((slow + 1)); echo "UPSTREAM-SLOW $f"
    fi
done
echo "files $((same + differ + slow)): same $same, differ $differ, upstream did not finish within ${limit}s $slow"
