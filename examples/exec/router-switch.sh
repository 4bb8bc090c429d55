#!/bin/sh
# Router switch: send all live traffic to $CUTOVER_TARGET.
# stdout: {"live": "<the colour now live>"}; cutover then runs router-read.sh
# and fails the cut-over unless it reports the same colour.
set -eu
cat > /dev/null
case " $CUTOVER_COLOURS " in
  *" $CUTOVER_TARGET "*) ;;
  *) echo "unknown colour '$CUTOVER_TARGET' (known: $CUTOVER_COLOURS)" >&2; exit 1 ;;
esac
dir="${STATE_DIR:-.state}"
mkdir -p "$dir"
# A real switch would repoint the load balancer at $CUTOVER_TARGET_ENDPOINTS.
printf '%s\n' "$CUTOVER_TARGET" > "$dir/router-$CUTOVER_ROUTER.live.tmp"
mv "$dir/router-$CUTOVER_ROUTER.live.tmp" "$dir/router-$CUTOVER_ROUTER.live"
printf '{"live": "%s"}\n' "$CUTOVER_TARGET"
