#!/usr/bin/env bash
# Install the programs the tests or an example need from the OS packages,
# only those missing, without disturbing what the machine already runs:
#
#   scripts/os-packages.sh haproxy caddy nginx initdb=postgresql git python3-venv
#
# - A program already on PATH is left alone (its service too).
# - As root with apt-get, the missing ones are installed with their packaged
#   services kept from starting (they would take ports 80/443): through
#   /usr/sbin/policy-rc.d, which this script creates only when there is none
#   and removes only when it created it; and each newly installed service is
#   masked (a /dev/null link in /etc/systemd/system, made only when no unit
#   file of that name exists there), which stays: remove it with
#   `systemctl unmask NAME` to run that service yourself.
# - Otherwise it prints the apt-get command and exits 1.
# A failed apt-get leaves no policy-rc.d and no mask behind.
set -euo pipefail

# An argument is a program, or PROGRAM=PACKAGE when the package is named
# otherwise (initdb=postgresql). PostgreSQL's programs live outside PATH on
# Debian (/usr/lib/postgresql/VERSION/bin): found there too. A program
# `python3-venv` stands for "python3 can make a virtual environment"
# (Debian's python3 cannot without its python3-venv package).
have() {
    if [ "$1" = python3-venv ]; then
        python3 -c 'import venv, ensurepip' >/dev/null 2>&1
        return
    fi
    command -v "$1" >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/$1" >/dev/null 2>&1
}
missing=()
for arg in "$@"; do
    program=${arg%%=*}
    package=${arg#*=}
    have "$program" || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing: ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "==> installing ${missing[*]} from the OS packages (their services kept from starting)"
created=()
policy=/usr/sbin/policy-rc.d
undo() {
    for path in "${created[@]}"; do rm -f "$path"; done
}
trap undo EXIT
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# made by cutover scripts/os-packages.sh for one install\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created+=("$policy")
fi
masks=()
for service in "${missing[@]}"; do
    # Only the packages that bring a service that would take a port.
    case "$service" in haproxy | caddy | nginx | postgresql | prometheus) ;; *) continue ;; esac
    unit=/etc/systemd/system/$service.service
    if [ -d /etc/systemd/system ] && [ ! -e "$unit" ] && [ ! -L "$unit" ]; then
        ln -s /dev/null "$unit"
        created+=("$unit")
        masks+=("$unit")
    fi
done
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Only what the programs need: no recommended extras (prometheus would
# bring prometheus-node-exporter, a service of its own on port 9100).
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Installed: the masks stay (the services must not start at boot either);
# only the policy file made for this install goes.
for unit in "${masks[@]}"; do
    for i in "${!created[@]}"; do [ "${created[$i]}" = "$unit" ] && unset 'created[i]'; done
done
[ "${#masks[@]}" -gt 0 ] && echo "==> masked ${masks[*]} (systemctl unmask to use them)"
exit 0
