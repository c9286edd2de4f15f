#!/usr/bin/env bash
# Install Debian packages for the build/test tooling, if they are missing.
#
#   scripts/apt-install.sh PACKAGE...
#
# Exit 0 when every package is installed (already, or now). Exit 3, with a message on
# stderr, when something is missing and we cannot install it (not root, or no apt-get).
# `apt-get update` runs only when a plain install fails (e.g. the package lists of a
# fresh container are empty). Package installs never start services here: a
# policy-rc.d is in place for the duration, so e.g. Debian's postgresql package does
# not leave its main cluster running.
set -euo pipefail

missing=()
for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "apt-install: missing Debian package(s): ${missing[*]}." >&2
    echo "apt-install: cannot install them (needs root and apt-get); install them with:" >&2
    echo "    sudo apt-get install -y ${missing[*]}" >&2
    exit 3
fi

export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
fi

apt=(apt-get install -y -q -o Dpkg::Use-Pty=0 "${missing[@]}")
echo "apt-install: installing ${missing[*]}" >&2
if ! "${apt[@]}" >&2; then
    echo "apt-install: install failed; running apt-get update and retrying" >&2
    apt-get update -q >&2
    "${apt[@]}" >&2
fi
