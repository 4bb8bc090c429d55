#!/bin/sh
# Router read: which colour receives live traffic now?
# stdout: {"live": "blue"} or {"live": null} when nothing is routed yet.
set -eu
cat > /dev/null
file="${STATE_DIR:-.state}/router-$CUTOVER_ROUTER.live"
if [ -f "$file" ]; then
  printf '{"live": "%s"}\n' "$(cat "$file")"
else
  printf '{"live": null}\n'
fi
