#!/usr/bin/env bash
# Creates .venv and installs egis-toolkit with every dependency, avoiding this project's
# known traps (measured, see docs/install.md):
#  - torch must be pinned (torch==2.13.0): an unpinned torch resolves to a multi-GB CUDA build;
#  - onnx2torch declares torchvision, whose PyPI wheels break CPU torch: install it --no-deps
#    (toolkit/torch_bridge.py makes its import work without torchvision);
#  - protobuf<7 (7.x breaks skl2onnx's tree-ensemble export) is pinned in pyproject.toml;
#  - aihwkit (optional: plugin `aihwkit`) declares torchvision, cmake, scikit-build and mypy:
#    install its 1.1.0 wheel --no-deps, binary only (1.2.0 is source-only). Installed when
#    EGIS_EXTRAS names it (EGIS_EXTRAS=aihwkit bash scripts/install.sh) and always in CI (CI=true).
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
AIHWKIT=aihwkit==1.1.0
case ",${EGIS_EXTRAS:-}," in *,aihwkit,*) want_aihwkit=1 ;; *) want_aihwkit=0 ;; esac
if [ "${CI:-}" = true ]; then want_aihwkit=1; fi
if [ "$want_aihwkit" = 1 ] && ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('aihwkit') != '${AIHWKIT#*==}')" 2>/dev/null; then
  .venv/bin/python -m pip install -q --no-deps --only-binary=:all: "$AIHWKIT"
  .venv/bin/python -c "from aihwkit.inference.noise.reram import ReRamWan2022NoiseModel" \
    || { echo "aihwkit installed but does not import beside this torch; see docs/install.md" >&2; exit 1; }
fi
# Ray (optional: chip-parallel work on a cluster, egis.toolkit.runner.RayRunner): when
# EGIS_EXTRAS names it, and in CI so its tests run. protobuf stays below 7 (skl2onnx).
RAY=ray==2.60.0
case ",${EGIS_EXTRAS:-}," in *,ray,*) want_ray=1 ;; *) want_ray=0 ;; esac
if [ "${CI:-}" = true ]; then want_ray=1; fi
if [ "$want_ray" = 1 ] && ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('ray') != '${RAY#*==}')" 2>/dev/null; then
  .venv/bin/python -m pip install -q --only-binary=:all: "$RAY" "protobuf<7"
  .venv/bin/python -c "import ray" || { echo "ray installed but does not import; see docs/install.md" >&2; exit 1; }
fi
