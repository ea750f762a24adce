#!/usr/bin/env bash
# Installs what the training and backbone-check tools need on top of the
# runtime's packages (never needed to build or test the C runtime). Idempotent.
set -euo pipefail
exec bash "$(dirname "$0")/../setup.sh" \
  python3-torch python3-torchvision python3-pil \
  python3-pyarmnn libarmnn-cpuref-backend22
