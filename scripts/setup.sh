#!/usr/bin/env bash
# Create ./.venv and install pyramidpose with the embedded default model and the test tools.
# torch is pinned to 2.13.0 here because that CPU wheel is what this project's machines carry;
# users elsewhere can install any torch>=2.3 first and then `pip install -e ".[default]"`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[default,onnx,test]"
echo "pyramidpose installed in $(pwd)/.venv"
