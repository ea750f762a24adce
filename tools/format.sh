#!/bin/sh
# The C sources' format (.clang-format, clang-format 14 from Debian 12).
#   tools/format.sh          rewrite the tracked .c/.h files in place
#   tools/format.sh --check  change nothing; list the files that differ, exit 1 if any
set -eu
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format.sh: clang-format is not installed" >&2; exit 2; }
files=$(git ls-files '*.c' '*.h')
if [ "${1:-}" = "--check" ]; then
  bad=0
  for f in $files; do
    clang-format --style=file "$f" | cmp -s - "$f" || { echo "format.sh: $f differs"; bad=1; }
  done
  [ $bad -eq 0 ] && echo "format.sh: $(echo "$files" | wc -l) files formatted"
  exit $bad
fi
# shellcheck disable=SC2086 # paths without spaces
clang-format --style=file -i $files
