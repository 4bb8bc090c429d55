#!/usr/bin/env bash
# The Python virtual environment with moto's server (and boto3, which moto
# brings), for the ALB tests and examples/alb: AWS has no local server, so
# the AWS SDK is pointed at moto on loopback (docs/alb.md).
#
#   scripts/moto-venv.sh            # creates target/moto-venv when missing
#   CUTOVER_MOTO_VENV=DIR scripts/moto-venv.sh
#
# Idempotent: a venv whose moto_server runs is left alone. The version is
# pinned so that every machine tests against the same moto.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MOTO_VERSION=5.2.5
venv=${CUTOVER_MOTO_VENV:-target/moto-venv}

if [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c 'import moto, boto3' 2>/dev/null; then
    exit 0
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "python3 cannot make a virtual environment; install with: sudo apt-get install -y python3-venv" >&2
    exit 1
fi
echo "==> creating $venv with moto[server]==$MOTO_VERSION (PyPI)"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
"$venv/bin/moto_server" --help >/dev/null
