#!/usr/bin/env bash
# Tests scripts/deps.sh with stand-ins for dpkg-query, apt-get, sudo and id on PATH, so no
# real package is touched: it must do nothing when all packages are present, install
# exactly the missing ones (apt-get update first, non-interactive) as root, go through sudo
# when not root, and fail clearly when neither is possible.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
deps="$repo/scripts/deps.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A PATH with only the stand-ins and the few real tools deps.sh uses (no real sudo).
bin="$tmp/bin"
mkdir -p "$bin"
for tool in bash env cat dirname grep; do ln -s "$(command -v "$tool")" "$bin/$tool"; done
cat >"$bin/dpkg-query" <<'STUB'
#!/bin/bash
pkg=${!#}
if grep -qx "$pkg" "$FAKE_INSTALLED"; then printf 'install ok installed'; exit 0; fi
echo "dpkg-query: no packages found matching $pkg" >&2; exit 1
STUB
cat >"$bin/apt-get" <<'STUB'
#!/bin/bash
echo "apt-get DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-unset} $*" >>"$FAKE_LOG"
STUB
cat >"$bin/id" <<'STUB'
#!/bin/bash
echo "$FAKE_UID"
STUB
cat >"$bin/sudo.stub" <<'STUB'
#!/bin/bash
echo "sudo $*" >>"$FAKE_LOG"
exec "$@"
STUB
chmod +x "$bin"/*

printf '# a comment\ncmake  # trailing comment\n\nninja-build\nclang-14\n' >"$tmp/packages.txt"
export FAKE_INSTALLED="$tmp/installed" FAKE_LOG="$tmp/log"
failures=0
check() {  # check NAME CONDITION...: report one expectation
  local name=$1; shift
  if "$@"; then echo "ok: $name"; else echo "FAIL: $name"; failures=$((failures + 1)); fi
}
run() {  # run UID: runs deps.sh, output in $tmp/out, status in $status, apt calls in $FAKE_LOG
  : >"$FAKE_LOG"
  status=0
  FAKE_UID=$1 PATH="$bin" bash "$deps" "$tmp/packages.txt" >"$tmp/out" 2>&1 || status=$?
}

# 1. Everything installed: nothing runs, and it says so.
printf 'cmake\nninja-build\nclang-14\n' >"$FAKE_INSTALLED"
run 0
check "all present: exit 0" test "$status" -eq 0
check "all present: no apt-get, no sudo" test ! -s "$FAKE_LOG"
check "all present: says nothing to do" grep -q "all 3 Debian packages are installed" "$tmp/out"

# 2. Two missing, as root: update once, then install exactly those two, non-interactively.
printf 'ninja-build\n' >"$FAKE_INSTALLED"
run 0
check "root: exit 0" test "$status" -eq 0
check "root: update first" bash -c "head -1 '$FAKE_LOG' | grep -q 'noninteractive .* update$'"
check "root: installs only the missing" bash -c \
  "sed -n 2p '$FAKE_LOG' | grep -q 'noninteractive .*install --no-install-recommends cmake clang-14$'"
check "root: two apt-get calls, no sudo" bash -c "[ \$(wc -l <'$FAKE_LOG') -eq 2 ] && ! grep -q sudo '$FAKE_LOG'"

# 3. Missing, not root, sudo available: apt-get goes through sudo.
mv "$bin/sudo.stub" "$bin/sudo"
run 1000
check "user: exit 0" test "$status" -eq 0
check "user: apt-get through sudo" bash -c \
  "grep -q '^sudo env DEBIAN_FRONTEND=noninteractive apt-get .*install --no-install-recommends cmake clang-14$' '$FAKE_LOG'"
check "user: installs with DEBIAN_FRONTEND=noninteractive" grep -q "^apt-get DEBIAN_FRONTEND=noninteractive .*install" "$FAKE_LOG"

# 4. Missing, not root, no sudo: fails and names what is missing.
mv "$bin/sudo" "$bin/sudo.stub"
run 1000
check "no sudo: fails" test "$status" -ne 0
check "no sudo: names the missing packages" grep -q "missing cmake clang-14" "$tmp/out"
check "no sudo: no apt-get" test ! -s "$FAKE_LOG"

if (( failures > 0 )); then
  echo "--- last deps.sh output ---"; cat "$tmp/out"
  echo "$failures expectation(s) failed"; exit 1
fi
echo "deps.sh: all expectations met"
