#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, the CLI end to end and
# the real-router integration tests. Routers come from the OS packages; when
# one is missing this script installs it if it runs as root, and otherwise
# says which command installs it (scripts/os-packages.sh: nothing the machine
# already runs is touched).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# Missing routers: installed (as root) or named with their install command;
# the tests themselves fail, never skip, when one is still missing.
scripts/os-packages.sh haproxy caddy nginx initdb=postgresql git prometheus python3 python3-venv || true
# moto's server for the aws_alb tests, from PyPI (the tests fail with this
# command when it is still missing).
scripts/moto-venv.sh || true

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> cargo test"
cargo test --workspace
