#!/bin/sh
# Runs a test command only when what it needs is here; otherwise says what is
# missing and exits 77, which ctest reports as a skip (never as a pass).
# tools/test.sh then fails the run when the test is not in tests/may_skip.txt.
#
#   require.sh [--shared DIR] [--file PATH] [--program NAME] [--py-module MOD]... -- CMD [ARGS...]
#
#   --shared DIR     the shared data directory (Imagenette val, TFLite models)
#   --file PATH      a file that must exist (a converted backbone, say)
#   --program NAME   a program that must be on PATH
#   --py-module MOD  a module /usr/bin/python3 (or python3) must import
set -u
py=/usr/bin/python3
[ -x "$py" ] || py=python3
skip() { echo "skipped: $*"; exit 77; }
while [ $# -gt 0 ]; do
  case $1 in
    --shared)
      [ -d "$2/data/imagenette2-224/val" ] ||
        skip "../shared missing (looked in $2; configure with -DSPW_SHARED_DIR=DIR or SPLITWIRE_SHARED=DIR)"
      shift 2 ;;
    --file) [ -f "$2" ] || skip "$2 missing"; shift 2 ;;
    --program) command -v "$2" >/dev/null 2>&1 || skip "no $2 on PATH"; shift 2 ;;
    --py-module)
      "$py" -c "import $2" >/dev/null 2>&1 || skip "$py cannot import $2"
      shift 2 ;;
    --) shift; break ;;
    *) echo "require.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "require.sh: no command given" >&2; exit 2; }
exec "$@"
