#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, the CLI end to end and
# the real-router integration tests. Routers come from the OS packages; when
# one is missing this script installs it if it runs as root, and otherwise
# says which command installs it (the tests themselves fail, never skip, when
# a router is missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

missing=()
for bin in haproxy caddy nginx; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing ${missing[*]} from the OS packages"
        for svc in "${missing[@]}"; do ln -sf /dev/null "/etc/systemd/system/$svc.service" 2>/dev/null || true; done
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
        rm -f /usr/sbin/policy-rc.d
    else
        echo "missing: ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
    fi
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> cargo test"
cargo test --workspace
