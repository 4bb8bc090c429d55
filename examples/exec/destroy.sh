#!/bin/sh
# Environment destroy: remove $CUTOVER_ENVIRONMENT. Removing what is already
# gone is not an error. stdout: {}
set -eu
cat > /dev/null
rm -f ".state/$CUTOVER_ENVIRONMENT.release"
printf '{}\n'
