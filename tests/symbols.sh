#!/bin/sh
# Every global the libraries define carries the project's prefix: spw_ for
# the API, spw__ for internals (the static archive holds those too; the
# shared library exports the API alone).
# Usage: symbols.sh NM libsplitwire.a libsplitwire.so
nm=$1 archive=$2 shared=$3
fail=0
# AddressSanitizer adds an __odr_asan.NAME (clang: __odr_asan_gen_NAME) global
# for each global NAME: judged by the NAME it guards.
bad=$("$nm" -g --defined-only "$archive" | awk 'NF == 3 && $2 ~ /[A-Z]/ {print $3}' |
  sed -E 's/^__odr_asan(\.|_gen_)//' | grep -v '^spw_' | sort -u)
if [ -n "$bad" ]; then
  echo "$archive defines globals without the spw_ prefix:"
  echo "$bad" | head -20
  echo "($(echo "$bad" | wc -l) in all)"
  fail=1
fi
n=$("$nm" -g --defined-only "$archive" | awk 'NF == 3 && $2 ~ /[A-Z]/' | wc -l)
[ "$n" -gt 0 ] || { echo "$archive: no globals read"; fail=1; }
bad=$("$nm" -D --defined-only "$shared" | awk 'NF == 3 && $2 ~ /[A-Z]/ {print $3}' |
  grep -v '^spw_[a-z0-9]'; true)
if [ -n "$bad" ]; then
  echo "$shared exports more than the API:"
  echo "$bad" | head -20
  fail=1
fi
[ $fail = 0 ] && echo "symbols: $n globals in the archive, every one spw_ or spw__; the shared library exports spw_ alone"
exit $fail
