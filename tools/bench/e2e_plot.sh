#!/usr/bin/env bash
# Plots of `splitwire bench e2e --csv` results.
# Usage: tools/bench/e2e_plot.sh RESULTS.csv OUT_PREFIX [LINK LINK LINK]
#   OUT_PREFIX-latency.png/.svg  total p50 latency against the link rate, one
#                                curve per method, both axes log; local
#                                execution (no link) is a dashed line
#   OUT_PREFIX-speedup.png/.svg  per link, the best bundle's p50 total against
#                                the best codec offload's (standard codecs and
#                                the original file): > 1 means split wins
#   OUT_PREFIX-stages.png/.svg   p50 per stage, stacked, for every method at
#                                three links (default ltem 4g wired)
# Usage: tools/bench/e2e_plot.sh --adapt TRACE.csv SLO_MS OUT_PREFIX
#   OUT_PREFIX.png/.svg from `bench e2e --adapt-trace`: per request over time,
#   measured and predicted total latency against the objective (top), and
#   the rate point chosen, one colour per bundle, on the links' steps (bottom)
# Needs gnuplot (Debian gnuplot-nox).
set -euo pipefail

if [ "${1:-}" = --adapt ]; then
  [ $# -eq 4 ] || { echo "usage: $0 --adapt TRACE.csv SLO_MS OUT_PREFIX" >&2; exit 2; }
  trace=$2 slo=$3 out=$4
  command -v gnuplot >/dev/null || { echo "e2e_plot.sh: gnuplot not found" >&2; exit 1; }
  head -1 "$trace" | grep -q '^seq,t_ms,link,bundle,' || { echo "e2e_plot.sh: $trace is not an adapt trace" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # Columns: 1 seq, 2 t_ms, 3 link, 4 bundle, 5 predicted, 6 total. Bundles
  # numbered in order of first use; a label where the link changes.
  awk -F, -v dir="$tmp" '
    NR == 1 { next }
    {
      if (!($4 in id)) { id[$4] = ++n; print n, $4 > (dir "/bundles") }
      print $2 / 1000, $6, $5, id[$4] > (dir "/b" id[$4] ".dat")
      print $2 / 1000, $5 > (dir "/pred.dat")
      if ($3 != last) { print $2 / 1000, $3 > (dir "/steps.dat"); last = $3 }
    }' "$trace"
  adapt_plot() {
    echo "set terminal $1"
    echo "set output '$2'"
    echo "set multiplot layout 2,1"
    echo "set grid lc rgb '#dddddd'"
    echo "set xlabel 'time since the first adaptive request, s'"
    echo "set ylabel 'total latency, ms'"
    echo "set key outside right font ',9'"
    local plots=("'$tmp/pred.dat' using 1:2 with lines lw 1.5 lc rgb '#7f7f7f' title 'predicted'"
      "$slo with lines dt 2 lw 2 lc rgb 'black' title 'objective ${slo} ms'")
    local k name
    while read -r k name; do
      plots+=("'$tmp/b$k.dat' using 1:2 with points pt 7 ps 0.9 lc $k title '$name'")
    done < "$tmp/bundles"
    local IFS=,
    echo "plot ${plots[*]}"
    unset IFS
    echo "set ylabel 'rate point'"
    echo "set yrange [0.5:$(wc -l < "$tmp/bundles").5]"
    echo "set ytics 1"
    plots=("'$tmp/steps.dat' using 1:(0.6):2 with labels left font ',8' notitle")
    while read -r k name; do
      plots+=("'$tmp/b$k.dat' using 1:4 with points pt 5 ps 0.8 lc $k title '$name'")
    done < "$tmp/bundles"
    IFS=,
    echo "plot ${plots[*]}"
    echo "unset multiplot"
  }
  adapt_plot "pngcairo size 1100,700" "$out.png" | gnuplot
  adapt_plot "svg size 1100,700" "$out.svg" | gnuplot
  echo "wrote $out (.png, .svg)"
  exit 0
fi

if [ $# -lt 2 ]; then
  echo "usage: $0 RESULTS.csv OUT_PREFIX [LINK LINK LINK]" >&2
  exit 2
fi
csv=$1
out=$2
shift 2
links=("$@")
[ ${#links[@]} -gt 0 ] || links=(ltem 4g wired)
command -v gnuplot >/dev/null || { echo "e2e_plot.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
[ -r "$csv" ] || { echo "e2e_plot.sh: cannot read $csv" >&2; exit 1; }
head -1 "$csv" | grep -q '^link,method,kind,' || { echo "e2e_plot.sh: $csv is not bench e2e CSV" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Columns: 1 link, 2 method, 3 kind, 7 rate_bps, 12.. stage p50/p99 pairs
# (pre enc ent net srv total), 22 total_p50.
awk -F, -v dir="$tmp" '
  NR == 1 { next }
  {
    f = $2; gsub(/[^A-Za-z0-9._-]/, "_", f)
    if ($3 == "local") { print $22 > (dir "/local.val"); next }
    if ($7 == "" || $22 == "") next
    print $7 / 1e6, $22, $1 > (dir "/m_" f ".dat")
    if (!(f in seen)) { seen[f] = 1; print f, $2, $3 >> (dir "/methods") }
    # Best of each kind per link, for the speed-up.
    key = $1
    rate[key] = $7 / 1e6
    if ($3 == "bundle" && (!(key in bb) || $22 < bb[key])) { bb[key] = $22; bbm[key] = $2 }
    if (($3 == "codec" || $3 == "original") && (!(key in bc) || $22 < bc[key])) { bc[key] = $22; bcm[key] = $2 }
  }
  END {
    for (k in rate)
      if ((k in bb) && (k in bc))
        printf "%s %s %s %s %s\n", rate[k], k, bc[k] / bb[k], bbm[k], bcm[k] > (dir "/speedup.raw")
  }' "$csv"
[ -s "$tmp/methods" ] || { echo "e2e_plot.sh: no rows with a link rate in $csv" >&2; exit 1; }
for f in "$tmp"/m_*.dat; do sort -g "$f" -o "$f"; done
[ -s "$tmp/speedup.raw" ] && sort -g "$tmp/speedup.raw" > "$tmp/speedup.dat"

style() { # kind -> line style
  case $1 in
    bundle) echo "lw 2.5 pt 7" ;;
    codec) echo "lw 1.5 pt 5 dt 1" ;;
    *) echo "lw 1.5 pt 2 dt 3" ;;
  esac
}

latency() {
  echo "set terminal $1"
  echo "set output '$2'"
  cat <<'GP'
set logscale xy
set xlabel 'emulated link rate, Mbit/s (log scale; both directions, with the preset delays)'
set ylabel 'p50 total latency per image, ms (log scale)'
set grid xtics ytics mxtics mytics lc rgb '#dddddd'
set key outside right top font ',9'
GP
  local plots=() f name kind
  while read -r f name kind; do
    plots+=("'$tmp/m_$f.dat' using 1:2 with linespoints $(style "$kind") title '$name'")
  done < "$tmp/methods"
  if [ -s "$tmp/local.val" ]; then
    plots+=("$(head -1 "$tmp/local.val") with lines dt 2 lw 2 lc rgb 'black' title 'local (whole backbone on the client)'")
  fi
  local IFS=,
  echo "plot ${plots[*]}"
}

speedup() {
  echo "set terminal $1"
  echo "set output '$2'"
  cat <<GP
set logscale x
set logscale y 2
set xlabel 'emulated link rate, Mbit/s (log scale)'
set ylabel 'best codec offload p50 / best bundle p50'
set grid xtics ytics lc rgb '#dddddd'
set key top left font ',9'
plot '$tmp/speedup.dat' using 1:3 with linespoints lw 2.5 pt 7 lc rgb '#d62728' title 'speed-up of split inference', \
     '' using 1:3:2 with labels offset 0,1.2 font ',8' notitle, \
     1 with lines dt 2 lc rgb 'black' title 'break-even'
GP
}

# Stacked stages: local first, then one block of bars per link in the
# order given, one bar per method; an empty stage counts as 0.
awk -F, -v want="${links[*]}" '
  function z(v) { return v == "" ? 0 : v }
  BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) order[w[i]] = i }
  NR == 1 { next }
  ($1 in order) || $3 == "local" {
    name = $2; sub(/^bundle:/, "", name)
    printf "%d %d \"%s %s\" %s %s %s %s %s\n", ($3 == "local" ? 0 : order[$1]), NR,
      ($3 == "local" ? "" : $1), name, z($12), z($14), z($16), z($18), z($20)
  }' "$csv" | sort -k1,1n -k2,2n | cut -d' ' -f3- > "$tmp/stages.dat"

stages() {
  echo "set terminal $1"
  echo "set output '$2'"
  cat <<GP
set style data histograms
set style histogram rowstacked
set style fill solid 0.85 border -1
set boxwidth 0.75
set xtics rotate by -60 font ',8'
set ylabel 'p50 per stage, ms'
set grid ytics lc rgb '#dddddd'
set key top left font ',9'
set bmargin 12
plot '$tmp/stages.dat' using 2:xtic(1) title 'client preprocess', \
     '' using 3 title 'encoder / codec / backbone', \
     '' using 4 title 'entropy coding', \
     '' using 5 title 'network (link + stacks)', \
     '' using 6 title 'server'
GP
}

latency "pngcairo size 1100,650" "$out-latency.png" | gnuplot
latency "svg size 1100,650" "$out-latency.svg" | gnuplot
if [ -s "$tmp/speedup.dat" ]; then
  speedup "pngcairo size 900,550" "$out-speedup.png" | gnuplot
  speedup "svg size 900,550" "$out-speedup.svg" | gnuplot
fi
if [ -s "$tmp/stages.dat" ]; then
  stages "pngcairo size 1300,650" "$out-stages.png" | gnuplot
  stages "svg size 1300,650" "$out-stages.svg" | gnuplot
fi
echo "wrote $out-latency, $out-speedup and $out-stages (.png, .svg)"
