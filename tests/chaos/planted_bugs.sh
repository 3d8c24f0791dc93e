#!/usr/bin/env bash
# Shows that the simulator catches each planted classic bug (docs/simulation.md) within a
# bounded number of seeds: builds `keel` with -DKEEL_PLANT_BUGS=ON in its own build tree,
# then, for each bug, runs `keel sim --plant BUG` and requires a violation.
# Usage: planted_bugs.sh SOURCE_DIR BUILD_DIR [SEEDS]
set -euo pipefail
src=$1
build=$2
seeds=${3:-200}
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEEL_PLANT_BUGS=ON \
  > "$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
ninja -C "$build" -j2 keel > "$build.build.log" 2>&1 || { tail -50 "$build.build.log"; exit 1; }
keel=$build/main/keel

# The clean build must pass the same seeds with no bug planted: the failures below are the bugs'.
status=0
for bug in ack_before_sync double_vote commit_prev_term skip_truncate vote_not_persisted \
           sim_ack_before_sync sim_unsynced_truncate; do
  scenario=partition
  case $bug in sim_*) scenario=world ;; esac
  out=$("$keel" sim --plant "$bug" --scenario "$scenario" --seeds "$seeds" --jobs 2 2>/dev/null || true)
  first=$(printf '%s\n' "$out" | grep -m1 '^FAIL seed=' || true)
  verdict=$(printf '%s\n' "$out" | grep '^verdict:' || true)
  if [ -n "$first" ]; then
    echo "caught $bug: $verdict"
    echo "  first: ${first:0:200}"
  else
    echo "MISSED $bug in $seeds seeds: $verdict"
    status=1
  fi
done
exit $status
