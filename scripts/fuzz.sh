#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time on its seed corpus; fails on any crash.
#
# Usage: scripts/fuzz.sh BUILD_DIR   (a -DKEEL_FUZZ=ON build, e.g. build-fuzz)
# Env:   FUZZ_SECONDS  time per target (default 60)
#
# Targets are discovered from fuzz/*_fuzz.cc; target <stem> is BUILD_DIR/fuzz/<stem>, its
# seed corpus fuzz/corpus/<stem>/. New inputs go to BUILD_DIR/fuzz-corpus/<stem>/ (the seed
# corpus in the tree is only read), crash inputs to BUILD_DIR/fuzz-artifacts/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=${1:?usage: $0 BUILD_DIR}
seconds=${FUZZ_SECONDS:-60}
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: FUZZ_SECONDS must be a positive integer" >&2; exit 2; }

shopt -s nullglob
sources=(fuzz/*_fuzz.cc)
if (( ${#sources[@]} == 0 )); then
  echo "fuzz: no fuzz targets (fuzz/*_fuzz.cc); nothing to run"
  exit 0
fi

mkdir -p "$build/fuzz-artifacts"
failed=()
summary=()
for src in "${sources[@]}"; do
  stem=$(basename "$src" .cc)
  bin="$build/fuzz/$stem"
  if [[ ! -x "$bin" ]]; then
    echo "fuzz: $bin was not built" >&2
    failed+=("$stem")
    summary+=("$(printf '%-32s %s' "$stem" "NOT BUILT")")
    continue
  fi
  work="$build/fuzz-corpus/$stem"
  mkdir -p "$work"
  corpora=("$work")
  if [[ -d "fuzz/corpus/$stem" ]]; then
    corpora+=("fuzz/corpus/$stem")
  else
    echo "fuzz: warning: no seed corpus fuzz/corpus/$stem/" >&2
  fi
  rm -f "$build/fuzz-artifacts/$stem-"*  # crash inputs of an earlier run
  log="$build/fuzz-artifacts/$stem.log"
  echo "== fuzz: $stem for ${seconds}s (log: $log)"
  rc=0
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-artifacts/$stem-" "${corpora[@]}" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if (( rc != 0 )); then
    failed+=("$stem")
    summary+=("$(printf '%-32s FAILED (exit %d) after %s runs' "$stem" "$rc" "${runs:-?}")")
    tail -40 "$log"
    for a in "$build/fuzz-artifacts/$stem-"*; do
      echo "fuzz: reproduce with: $bin $a"
    done
  else
    summary+=("$(printf '%-32s ok, %s runs in %ss' "$stem" "${runs:-?}" "$seconds")")
  fi
done

echo "== fuzz summary (${#sources[@]} target(s), ${seconds}s each)"
printf '  %s\n' "${summary[@]}"
if (( ${#failed[@]} > 0 )); then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: all ${#sources[@]} target(s) ran clean"
