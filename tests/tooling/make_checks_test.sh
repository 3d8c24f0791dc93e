#!/usr/bin/env bash
# Shows that `make test`'s cheap checks are wired to fail: in a scratch tree holding the
# Makefile, scripts/ and .clang-format, `make lint` and `make format-check` pass on clean
# sources and fail, naming the file, once a forbidden call or a misformatted file is added.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset MAKEFLAGS MFLAGS MAKELEVEL  # do not inherit an outer make's jobserver

cp "$repo/Makefile" "$repo/.clang-format" "$tmp/"
cp -r "$repo/scripts" "$tmp/scripts"
mkdir -p "$tmp/src/probe"
cat >"$tmp/src/probe/ok.cc" <<'SRC'
// A clean source: deterministic and clang-formatted.
#include <cstdint>

namespace keel::probe {

int64_t twice(int64_t x) { return 2 * x; }

}  // namespace keel::probe
SRC

failures=0
expect() {  # expect pass|fail TARGET [REGEX]: runs `make TARGET` in the scratch tree
  local want=$1 target=$2 regex=${3:-} rc=0
  make --no-print-directory -C "$tmp" "$target" >"$tmp/out" 2>&1 || rc=$?
  local ok=1
  if [[ $want == pass ]]; then (( rc == 0 )) || ok=0; else (( rc != 0 )) || ok=0; fi
  if [[ -n $regex ]] && ! grep -qE "$regex" "$tmp/out"; then ok=0; fi
  if (( ok )); then
    echo "ok: make $target: ${want} (exit $rc)${regex:+, output matches /$regex/}"
  else
    echo "FAIL: make $target should $want${regex:+ with /$regex/} (exit $rc):"
    cat "$tmp/out"
    failures=$((failures + 1))
  fi
}

expect pass lint "1 file\(s\) clean"
expect pass format-check "1 file\(s\) clang-formatted"

printf '#include <thread>\nvoid spawn() { std::thread t([] {}); }\n' >"$tmp/src/probe/bad.cc"
expect fail lint "src/probe/bad.cc:2: \[thread\] std::thread"
rm "$tmp/src/probe/bad.cc"
expect pass lint

printf 'namespace keel {\nint   badly_formatted( int x ){return x;}\n}\n' >"$tmp/src/probe/ugly.cc"
expect fail format-check "src/probe/ugly.cc"
make --no-print-directory -C "$tmp" format >/dev/null
expect pass format-check

# `make test` itself runs both checks, before any build (dry run: nothing is executed).
make --no-print-directory -C "$tmp" -n test >"$tmp/plan" 2>&1 || true
lint_at=$(grep -n "lint_determinism.py src" "$tmp/plan" | head -1 | cut -d: -f1)
format_at=$(grep -n "format.sh check" "$tmp/plan" | head -1 | cut -d: -f1)
build_at=$(grep -n "cmake --build" "$tmp/plan" | head -1 | cut -d: -f1)
if [[ -n $lint_at && -n $format_at && -n $build_at ]] && (( lint_at < build_at && format_at < build_at )); then
  echo "ok: make test runs the lint and the format check before building"
else
  echo "FAIL: make test does not run lint and format check before building:"; cat "$tmp/plan"
  failures=$((failures + 1))
fi

if (( failures > 0 )); then echo "$failures expectation(s) failed"; exit 1; fi
echo "make lint / format-check: all expectations met"
