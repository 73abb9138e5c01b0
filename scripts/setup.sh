#!/usr/bin/env bash
# Create ./.venv and install pyramidpose (the embedded default model needs no extra) and the test tools.
# torch is pinned to 2.13.0 here because that CPU wheel is what this project's machines carry;
# users elsewhere can install any torch>=2.3 first and then `pip install -e .`.
# Optional extras, asked for with PYRAMIDPOSE_EXTRAS (comma-separated), e.g.
#   PYRAMIDPOSE_EXTRAS=blazepose scripts/setup.sh   # BlazePose (mediapipe, ai-edge-litert; Python < 3.13)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS="onnx,test${PYRAMIDPOSE_EXTRAS:+,${PYRAMIDPOSE_EXTRAS}}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[${EXTRAS}]"
echo "pyramidpose installed in $(pwd)/.venv (extras: ${EXTRAS})"
