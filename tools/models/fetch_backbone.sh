#!/usr/bin/env bash
# Produces the float ONNX backbone from the shared uint8 TFLite model, if it
# is not there yet.  Idempotent: prints the path and does nothing else when
# the file exists and is newer than its sources.
# Usage: tools/models/fetch_backbone.sh [OUT.onnx]
#   default OUT: <repo>/build/models/mobilenet_v2_1.0_224.onnx
#   SPLITWIRE_SHARED overrides where the shared data lives (default ../shared).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${SPLITWIRE_SHARED:-$root/../shared}
src=$shared/models/pretrained/mobilenet_v2_1.0_224_quant.tflite
out=${1:-$root/build/models/mobilenet_v2_1.0_224.onnx}
py=/usr/bin/python3
[ -x "$py" ] || py=python3

if [ ! -f "$src" ]; then
  echo "fetch_backbone: $src not found (set SPLITWIRE_SHARED)" >&2
  exit 1
fi
here=$(dirname "$0")
if [ -f "$out" ] && [ -f "${out%.onnx}.json" ] && [ "$out" -nt "$src" ] &&
   [ "$out" -nt "$here/tflite_import.py" ] && [ "$out" -nt "$here/tflite_fb.py" ]; then
  echo "$out"
  exit 0
fi
if ! "$py" -c 'import flatbuffers, onnx, numpy' 2>/dev/null; then
  echo "fetch_backbone: needs python3-flatbuffers, python3-onnx, python3-numpy (tools/setup.sh)" >&2
  exit 1
fi
"$py" "$here/tflite_import.py" --tflite "$src" --out "$out" >&2
echo "$out"
