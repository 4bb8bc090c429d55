#!/bin/sh
# Environment read: report what runs as $CUTOVER_ENVIRONMENT.
# stdout: {"exists": true, "release": "..."} or {"exists": false}
set -eu
cat > /dev/null
file=".state/$CUTOVER_ENVIRONMENT.release"
if [ -f "$file" ]; then
  # Escape backslashes and quotes so the release is a valid JSON string.
  release=$(sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' "$file")
  printf '{"exists": true, "release": "%s"}\n' "$release"
else
  printf '{"exists": false}\n'
fi
