#!/bin/sh
# Checks that the command-line tool is a client of the public API only, and
# that the shared library exports exactly what the public headers declare.
#
#   public_api.sh sources DIR...     no file under DIR includes a header other
#                                    than <system>, "splitwire/..." or DIR's
#                                    own, and none names an spw__ symbol
#   public_api.sh imports BIN LIB    BIN needs LIB, links none of the library
#                                    statically (defines no spw__ symbol),
#                                    and every symbol it imports that LIB
#                                    defines is a public spw_ one
#   public_api.sh exports LIB INC    LIB's dynamic symbols are exactly the
#                                    SPW_API functions declared in INC/*.h
#
# Prints each violation; exits 0 when there is none, 1 otherwise.
set -u
fail=0
bad() {
  echo "public_api: $*"
  fail=1
}

case ${1:-} in
sources)
  shift
  for dir in "$@"; do
    own=$(basename "$dir")
    for f in $(find "$dir" -name '*.[ch]' | sort); do
      # Quoted includes: the public headers or the tool's own files.
      grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
        grep -v "\"splitwire/[^\"]*\"" | grep -v "\"tools/[^\"/]*/[^\"]*\"" |
        grep -v "\"$own/" | while IFS= read -r line; do
          echo "public_api: $f:$line: not a public header"
        done | grep . && fail=1
      # Project directories reached through angle brackets count too.
      grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<(runtime|drivers|netpath|tests)/' "$f" |
        sed "s|^|public_api: $f:|; s|\$|: not a public header|" | grep . && fail=1
      grep -n 'spw__' "$f" | sed "s|^|public_api: $f:|; s|\$|: internal spw__ name|" | grep . && fail=1
    done
  done
  ;;
imports)
  bin=$2 lib=$3
  soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  readelf -d "$bin" | grep -q "(NEEDED).*\[$soname\]" || bad "$bin does not load $soname"
  own=$(nm --defined-only "$bin" 2>/dev/null | awk '$3 ~ /^spw__/ {print $3}')
  [ -z "$own" ] || bad "$bin carries library internals: $(echo $own | head -c 300)"
  defs=$(mktemp)
  nm -D --defined-only "$lib" | awk '{print $3}' | sort -u >"$defs"
  nm -D --undefined-only "$bin" | awk '{print $2}' | sed 's/@.*//' | sort -u |
    comm -12 - "$defs" | while IFS= read -r sym; do
      case $sym in
        spw__*) echo "public_api: $bin imports the internal $sym" ;;
        spw_*) ;;
        *) echo "public_api: $bin imports $sym from $soname (not an spw_ name)" ;;
      esac
    done | grep . && fail=1
  n=$(nm -D --undefined-only "$bin" | awk '{print $2}' | sed 's/@.*//' | sort -u | comm -12 - "$defs" | wc -l)
  rm -f "$defs"
  [ "$n" -gt 0 ] || bad "$bin imports nothing from $soname"
  echo "public_api: $bin imports $n public symbols from $soname"
  ;;
exports)
  lib=$2 inc=$3
  decl=$(mktemp) defs=$(mktemp)
  # SPW_API declarations keep the function name on the SPW_API line.
  cat "$inc"/*.h | grep 'SPW_API' | grep -o '\bspw_[a-z0-9_]*[[:space:]]*(' |
    tr -d '( ' | sort -u >"$decl"
  nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' | sort -u >"$defs"
  comm -23 "$defs" "$decl" | sed 's/^/public_api: exported but not declared public: /' | grep . && fail=1
  comm -13 "$defs" "$decl" | sed 's/^/public_api: declared SPW_API but not exported: /' | grep . && fail=1
  echo "public_api: $(wc -l <"$defs") exported symbols, $(wc -l <"$decl") declared"
  rm -f "$decl" "$defs"
  ;;
*)
  echo "usage: public_api.sh sources DIR... | imports BIN LIB | exports LIB INCLUDE_DIR" >&2
  exit 2
  ;;
esac
exit $fail
