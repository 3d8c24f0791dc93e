#!/usr/bin/env bash
# Runs CI locally on exactly what is committed: clones HEAD of this repository into a fresh
# directory (default build-ci-clone/, removed first) and runs .ci/run there. Catches what a
# working tree hides: a committed file that needs an uncommitted one, a misformatted commit.
#
# Usage: scripts/ci_local.sh [DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir=${1:-build-ci-clone}
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
rm -rf "$dir"
git clone --quiet --no-hardlinks . "$dir"
echo "ci: running .ci/run on $(git -C "$dir" log -1 --format='%h %s') in $dir"
cd "$dir"
start=$SECONDS
status=0
CI=true .ci/run </dev/null || status=$?
echo "ci: exit $status after $(( SECONDS - start ))s wall"
exit "$status"
