#!/bin/sh
# Runs one command and checks both its exit code and its output, so that a
# CLI test can never pass on the text alone (ctest's PASS_REGULAR_EXPRESSION
# ignores the exit code).
#
#   expect.sh [--rc N] [--match RE]... [--no-match RE]... [--skip-rc N] -- CMD [ARGS...]
#
#   --rc N        the exit code CMD must return (default 0)
#   --match RE    a Perl regular expression the whole output (stdout and
#                 stderr together) must contain; '\n' matches a line break
#   --no-match RE one it must not contain
#   --skip-rc N   when CMD exits N, report a skip (exit 77) instead of failing
#
# Prints the command's output, then one line per failed check; exits 0 when
# every check holds, 1 otherwise, 77 for a skip.
set -u
want_rc=0
skip_rc=
matches=
nomatches=
nl='
'
while [ $# -gt 0 ]; do
  case $1 in
    --rc) want_rc=$2; shift 2 ;;
    --skip-rc) skip_rc=$2; shift 2 ;;
    --match) matches="$matches$2$nl"; shift 2 ;;
    --no-match) nomatches="$nomatches$2$nl"; shift 2 ;;
    --) shift; break ;;
    *) echo "expect.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "expect.sh: no command given" >&2; exit 2; }

out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ -n "$skip_rc" ] && [ "$rc" -eq "$skip_rc" ]; then
  echo "expect.sh: skipped (exit $rc)"
  exit 77
fi
ok=0
if [ "$rc" -ne "$want_rc" ]; then
  echo "expect.sh: FAIL: exit code $rc, expected $want_rc"
  ok=1
fi
# grep -z reads the whole output as one record, so patterns may span lines.
# (printf, not echo: dash's echo would turn a pattern's \n into a line break.)
IFS=$nl
for re in $matches; do
  printf '%s' "$out" | grep -Pzq -- "$re" ||
    { printf 'expect.sh: FAIL: output lacks /%s/\n' "$re"; ok=1; }
done
for re in $nomatches; do
  printf '%s' "$out" | grep -Pzq -- "$re" &&
    { printf 'expect.sh: FAIL: output contains /%s/\n' "$re"; ok=1; }
done
exit $ok
