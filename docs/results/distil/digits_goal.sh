#!/usr/bin/env bash
# Issue #18's goal cells of the digits evaluations made by digits.sh: every variability whose
# budget evaluation is finished under ${RUNS}_<variability>, per data-free method of METHODS,
# into HERE/digits_goal_<method>.txt. Reads finished evaluations only.
#   bash docs/results/distil/digits_goal.sh RUNS HERE METHODS
set -euo pipefail
cd "$(dirname "$0")/../../.."
runs=${1:?usage: digits_goal.sh RUNS HERE METHODS}; here=${2:?}; methods=${3:?}
settings=()
for v in typical extreme; do
  out=${runs}_$v
  [ -f $out/eval_budget_$v/summary.json ] && settings+=("digits-$v=$out/eval_$v@$out/eval_budget_$v")
done
for method in ${methods//,/ }; do
  case "$method" in uniform|da-classifier) continue ;; esac
  .venv/bin/python scripts/goal_cells.py --method $method "${settings[@]}" > $here/digits_goal_$method.txt
done
