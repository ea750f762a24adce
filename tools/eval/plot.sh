#!/usr/bin/env bash
# Rate-accuracy plot of `splitwire eval --csv` results.
# Usage: tools/eval/plot.sh RESULTS.csv [MORE.csv ...] OUT_PREFIX
#   writes OUT_PREFIX.png and OUT_PREFIX.svg: bits per pixel (log scale) against
#   top-1, one panel over the 1000 ImageNet classes and one over the data set's
#   own classes, one curve per method (bundles: one per family, the name
#   without its -l<lambda> suffix); the uncompressed backbone is a dashed
#   horizontal line. Where rows carry `--fidelity` columns (agree, kl), a
#   third panel shows how often the top-1 is the backbone's own. Needs
#   gnuplot (Debian gnuplot-nox).
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 RESULTS.csv [MORE.csv ...] OUT_PREFIX" >&2
  exit 2
fi
if ! command -v gnuplot >/dev/null; then
  echo "plot.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2
  exit 1
fi
out=${!#}
csvs=("${@:1:$#-1}")
for f in "${csvs[@]}"; do
  [ -r "$f" ] || { echo "plot.sh: cannot read $f" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One whitespace-separated file per method (bpp, top-1 1000-way and 10-way and
# agreement with the backbone in percent, setting), sorted by rate. Headers
# and rows without a rate are dropped; a missing accuracy stays "nan", which
# gnuplot leaves out.
awk -F, -v dir="$tmp" '
  function pct(v) { return v == "nan" ? "nan" : v * 100 }
  FNR == 1 && $1 == "method" { next }
  NF >= 7 && $5 != "nan" && $5 + 0 > 0 {
    gsub(/"/, "", $2)
    m = $1
    # Bundles: one curve per family, the name without its rate suffix
    # (svbi-mnv2-s28-l4 -> bundle-svbi-mnv2-s28).
    if (m == "bundle") { fam = $2; sub(/-l[0-9p.]+$/, "", fam); gsub(/[^A-Za-z0-9._-]/, "_", fam); m = "bundle-" fam }
    print $5, pct($6), pct($7), pct(NF >= 8 ? $8 : "nan"), $2 > (dir "/" m ".raw")
  }' "${csvs[@]}"
# Known methods first, in a fixed order; anything else after them.
methods=()
for m in $(cd "$tmp" && ls bundle-*.raw 2>/dev/null | sed 's/\.raw$//') jpeg webp avif backbone \
    $(cd "$tmp" && ls *.raw 2>/dev/null | sed 's/\.raw$//'); do
  [ -e "$tmp/$m.raw" ] && [ ! -e "$tmp/$m.dat" ] || continue
  sort -g "$tmp/$m.raw" > "$tmp/$m.dat"
  methods+=("$m")
done
if [ ${#methods[@]} -eq 0 ]; then
  echo "plot.sh: no result rows in ${csvs[*]}" >&2
  exit 1
fi

# Fixed colours and titles per method, so plots of different runs compare.
style() {
  case $1 in
    bundle-svbi*-w96*) echo "lc rgb '#e377c2' pt 7 ps 1.1 lw 2|${1#bundle-} (small decoder)" ;;
    bundle-svbi*) echo "lc rgb '#d62728' pt 7 ps 1.2 lw 2.5|${1#bundle-} (SVBI)" ;;
    bundle-es*) echo "lc rgb '#ff7f0e' pt 11 ps 1.2 lw 2|${1#bundle-} (Entropic Student)" ;;
    bundle-*) echo "lc rgb '#8c564b' pt 7 ps 1.1 lw 2|bundles (${1#bundle-})" ;;
    jpeg) echo "lc rgb '#1f77b4' pt 5 ps 0.8 lw 1.8|JPEG (libjpeg-turbo)" ;;
    webp) echo "lc rgb '#2ca02c' pt 9 ps 0.9 lw 1.8|WebP (libwebp)" ;;
    avif) echo "lc rgb '#9467bd' pt 13 ps 0.9 lw 1.8|AVIF (libavif + aom)" ;;
    *) echo "lc rgb '#7f7f7f' pt 3 ps 0.9 lw 1.5|$1" ;;
  esac
}

# Any measured agreement (column 4 not nan) adds the third panel.
fidelity=$(awk '$4 != "nan" { f = 1 } END { print f + 0 }' "$tmp"/*.dat)

panel() { # $1 = column (2: 1000-way, 3: the set's classes, 4: agreement), $2 = title
  local col=$1 plots=() m st
  echo "set title \"$2\""
  for m in "${methods[@]}"; do
    [ "$m" = backbone ] && continue
    st=$(style "$m")
    plots+=("'$tmp/$m.dat' using 1:$col with linespoints ${st%%|*} title '${st#*|}'")
  done
  if [ -e "$tmp/backbone.dat" ] && [ "$col" != 4 ]; then
    # A line at the uncompressed accuracy, and a point where the original
    # files sit on the rate axis.
    local bpp a1000 a10 rest y
    read -r bpp a1000 a10 rest < "$tmp/backbone.dat"
    y=$a1000
    [ "$col" = 3 ] && y=$a10
    if [ "$y" != nan ]; then
      plots+=("$y with lines dt 2 lw 1.5 lc rgb 'black' title 'uncompressed backbone'")
      plots+=("'$tmp/backbone.dat' using 1:$col with points pt 2 ps 1.5 lc rgb 'black' title 'original JPEG files ($(printf '%.2f' "$bpp") bpp)'")
    fi
  fi
  local IFS=,
  echo "plot ${plots[*]}"
}

script() { # $1 = terminal, $2 = output file
  cat <<GNUPLOT
set terminal $1
set output '$2'
set logscale x 2
set xrange [0.05:8]
set xtics ("1/16" 0.0625, "1/8" 0.125, "1/4" 0.25, "1/2" 0.5, "1" 1, "2" 2, "4" 4, "8" 8)
set yrange [0:100]
set format y '%.0f%%'
set grid xtics ytics lc rgb '#dddddd'
set key below horizontal maxcols 2 width 2 font ',9' spacing 1.1
set xlabel 'bits per pixel (log scale)'
set bmargin 12
set ylabel 'top-1 accuracy'
set multiplot layout 1,$((2 + fidelity))
GNUPLOT
  panel 2 "top-1 over the 1000 ImageNet classes"
  panel 3 "top-1 over the data set's classes only"
  if [ "$fidelity" = 1 ]; then
    echo "set ylabel 'top-1 is the backbone''s own'"
    panel 4 "agreement with the uncompressed backbone"
  fi
  echo "unset multiplot"
}

width=$((1280 + 640 * fidelity))
script "pngcairo size $width,620 font 'DejaVu Sans,10'" "$out.png" | gnuplot
script "svg size $width,620 dynamic font 'DejaVu Sans,10'" "$out.svg" | gnuplot
echo "$out.png"
echo "$out.svg"
