#!/usr/bin/env bash
# Installs the Debian packages Keel needs that are not installed yet, and nothing else.
#
# Usage: scripts/deps.sh [PACKAGE_LIST]   (default: scripts/packages.txt)
#
# Checks each package with dpkg-query; when all are present it prints so and does nothing
# (no apt-get, no sudo, no network). Otherwise it runs `apt-get update` once and installs
# exactly the missing ones, non-interactively, as root or through sudo.
set -euo pipefail

list=${1:-"$(dirname "${BASH_SOURCE[0]}")/packages.txt"}
[[ -r "$list" ]] || { echo "deps: cannot read package list $list" >&2; exit 2; }

wanted=()
while read -r line; do
  line=${line%%#*}
  line=${line//[[:space:]]/}
  [[ -n "$line" ]] && wanted+=("$line")
done < "$list"

missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if (( ${#missing[@]} == 0 )); then
  echo "deps: all ${#wanted[@]} Debian packages are installed; nothing to do"
  exit 0
fi

as_root=()
if [[ "$(id -u)" != 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "deps: missing ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
  as_root=(sudo)
fi
apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y
     -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

echo "deps: installing ${#missing[@]} missing Debian package(s): ${missing[*]}"
"${apt[@]}" update
"${apt[@]}" install --no-install-recommends "${missing[@]}"
echo "deps: installed ${missing[*]}"
