#!/bin/sh
# Environment deploy: make $CUTOVER_ENVIRONMENT run $CUTOVER_RELEASE.
# stdin:  {"action": "deploy", "environment": {...}, "settings": {...}, "private": ...}
# stdout: {"identity": "...", "private": {...}}
set -eu
cat > /dev/null                      # everything needed is in CUTOVER_* variables
dir=".state"
mkdir -p "$dir"
# A real deploy would start the release here, e.g.
#   systemctl restart "app@$CUTOVER_ENVIRONMENT"
# Write a temporary file and rename it, so a reader never sees half a file.
printf '%s\n' "$CUTOVER_RELEASE" > "$dir/$CUTOVER_ENVIRONMENT.release.tmp"
mv "$dir/$CUTOVER_ENVIRONMENT.release.tmp" "$dir/$CUTOVER_ENVIRONMENT.release"
echo "deployed $CUTOVER_RELEASE to $CUTOVER_ENVIRONMENT ($CUTOVER_ENDPOINTS)" >&2
printf '{"identity": "%s@%s", "private": {"file": "%s"}}\n' \
  "$CUTOVER_ENVIRONMENT" "$CUTOVER_RELEASE" "$dir/$CUTOVER_ENVIRONMENT.release"
