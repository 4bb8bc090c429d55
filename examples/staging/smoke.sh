#!/bin/sh
# The staging test: the colour about to go live, through the router's
# preview when it shows that colour, else at its own endpoint. It must
# answer /version with the release cutover is about to put live, every time.
set -eu
url="${CUTOVER_PREVIEW_URL:-http://${CUTOVER_TARGET_ENDPOINTS%%,*}/}"
echo "smoke: testing $CUTOVER_TARGET at ${url}version (expecting release $EXPECT_RELEASE)"
loadgen --url "${url}version" --duration 1 --threads 1 > ".run/smoke-$CUTOVER_TARGET.txt"
cat ".run/smoke-$CUTOVER_TARGET.txt"
grep -q "\"release\":\"$EXPECT_RELEASE\"" ".run/smoke-$CUTOVER_TARGET.txt"
