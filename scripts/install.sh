#!/usr/bin/env bash
# Creates .venv and installs egis-toolkit with every dependency, avoiding this project's
# known traps (measured, see docs/install.md):
#  - torch must be pinned (torch==2.13.0): an unpinned torch resolves to a multi-GB CUDA build;
#  - onnx2torch declares torchvision, whose PyPI wheels break CPU torch: install it --no-deps
#    (toolkit/torch_bridge.py makes its import work without torchvision);
#  - protobuf<7 (7.x breaks skl2onnx's tree-ensemble export) is pinned in pyproject.toml.
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.egis-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q --no-deps "onnx2torch==1.5.15"
  .venv/bin/python -m pip install -q -e ".[test]"
  touch "$stamp"
fi
