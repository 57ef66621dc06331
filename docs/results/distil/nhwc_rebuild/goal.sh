#!/usr/bin/env bash
# Issue #18's goal cells of the rebuilt NHWC model (both.sh), per method, against the
# dataset-aware test and uniform noise on the same chips: goal_<method>.txt here.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
here=docs/results/distil/nhwc_rebuild
fid=runs/fidelity_nhwc; base=uniform,da-classifier
for method in egis egis-distil egis-tv-distil egis-both-distil; do
  case "$method" in egis-distil) prefix= ;; egis-tv-distil) prefix=tv_ ;; egis-both-distil) prefix=both_ ;; esac
  settings=()
  for v in typical extreme; do
    if [ "$method" = egis ]; then
      settings+=("nhwc-$v=$fid/eval_$v:$base,egis@$fid/eval_budget_$v:$base,egis")
    else
      d=runs/distil/${prefix}nhwc_$v
      settings+=("nhwc-$v=$fid/eval_$v:$base+$d/eval_$v@$fid/eval_budget_$v:$base+$d/eval_budget_$v")
    fi
  done
  .venv/bin/python scripts/goal_cells.py --method $method "${settings[@]}" > $here/goal_$method.txt
done
