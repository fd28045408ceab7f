#!/usr/bin/env bash
# Installs the Debian packages named as arguments when any is missing.
# As root: apt-get update, then apt-get install. Otherwise prints the exact
# command to run and exits 2, as a usage/config problem the user must fix.
set -euo pipefail
missing=()
for pkg in "$@"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$pkg")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ltvpipe: missing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "ltvpipe: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
	exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
