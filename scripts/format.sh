#!/usr/bin/env bash
# clang-format over every C++ source of Keel (the repo's .clang-format: Google, 100 columns).
#
# Usage: scripts/format.sh check   lists misformatted files, exits 1 if any
#        scripts/format.sh fix     rewrites them in place
#
# Runs from the repository root over src sim net disk main tests bench fuzz (fuzz corpora
# excluded); directories that do not exist are skipped. Prefers clang-format-14, the version
# CI installs, so that every machine formats alike.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=${1:-}
[[ "$mode" == check || "$mode" == fix ]] || { echo "usage: $0 check|fix" >&2; exit 2; }

if command -v clang-format-14 >/dev/null 2>&1; then
  fmt=clang-format-14
elif command -v clang-format >/dev/null 2>&1; then
  fmt=clang-format
else
  echo "format: clang-format-14 not found (make deps installs it)" >&2
  exit 2
fi

dirs=()
for d in src sim net disk main tests bench fuzz; do
  [[ -d "$d" ]] && dirs+=("$d")
done
files=()
if (( ${#dirs[@]} > 0 )); then
  while IFS= read -r -d '' f; do files+=("$f"); done < <(
    find "${dirs[@]}" -path fuzz/corpus -prune -o -type f \
      \( -name '*.h' -o -name '*.hh' -o -name '*.hpp' -o -name '*.cc' -o -name '*.cpp' \) \
      -print0 | sort -z)
fi

if [[ "$mode" == fix ]]; then
  (( ${#files[@]} == 0 )) || "$fmt" -i "${files[@]}"
  echo "format: formatted ${#files[@]} file(s) with $fmt"
  exit 0
fi

bad=()
for f in "${files[@]}"; do
  "$fmt" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if (( ${#bad[@]} > 0 )); then
  echo "format: ${#bad[@]} of ${#files[@]} file(s) not clang-formatted (run \`make format\`):"
  printf '  %s\n' "${bad[@]}"
  "$fmt" --dry-run "${bad[0]}" 2>&1 | head -20
  exit 1
fi
echo "format: ${#files[@]} file(s) clang-formatted ($fmt)"
