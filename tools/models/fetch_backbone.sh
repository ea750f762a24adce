#!/usr/bin/env bash
# Produces the float ONNX backbones from the shared uint8 TFLite models, if
# they are not there yet.  Idempotent: prints the MobileNetV2 path and does
# nothing else when the files exist and are newer than their sources.
# Usage: tools/models/fetch_backbone.sh [OUT.onnx]
#   default OUT: <repo>/build/models/mobilenet_v2_1.0_224.onnx
#   SPLITWIRE_SHARED overrides where the shared data lives (default ../shared).
# Next to it goes MobileNetV1 0.75 @ 192 imported at 224 x 224
# (mobilenet_v1_0.75_192_at224.onnx), the second backbone behind the mb
# encoder; a missing V1 source only skips that file, with a note.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${SPLITWIRE_SHARED:-$root/../shared}
src=$shared/models/pretrained/mobilenet_v2_1.0_224_quant.tflite
out=${1:-$root/build/models/mobilenet_v2_1.0_224.onnx}
src_v1=$shared/models/pretrained/mobilenet_v1_0.75_192_quant.tflite
out_v1=$(dirname "$out")/mobilenet_v1_0.75_192_at224.onnx
py=/usr/bin/python3
[ -x "$py" ] || py=python3

if [ ! -f "$src" ]; then
  echo "fetch_backbone: $src not found (set SPLITWIRE_SHARED)" >&2
  exit 1
fi
here=$(dirname "$0")
fresh() { # ONNX file, its source: both outputs newer than every input
  [ -f "$1" ] && [ -f "${1%.onnx}.json" ] && [ "$1" -nt "$2" ] &&
    [ "$1" -nt "$here/tflite_import.py" ] && [ "$1" -nt "$here/tflite_fb.py" ]
}
need_py() {
  if ! "$py" -c 'import flatbuffers, onnx, numpy' 2>/dev/null; then
    echo "fetch_backbone: needs python3-flatbuffers, python3-onnx, python3-numpy (tools/setup.sh)" >&2
    exit 1
  fi
}
if ! fresh "$out" "$src"; then
  need_py
  "$py" "$here/tflite_import.py" --tflite "$src" --out "$out" >&2
fi
if [ ! -f "$src_v1" ]; then
  echo "fetch_backbone: $src_v1 not found; no MobileNetV1 backbone" >&2
elif ! fresh "$out_v1" "$src_v1"; then
  need_py
  "$py" "$here/tflite_import.py" --tflite "$src_v1" --out "$out_v1" \
    --id mobilenet_v1_0.75_192_at224 --input-size 224 >&2
fi
echo "$out"
