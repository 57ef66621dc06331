#!/usr/bin/env bash
# egis-both-distil (2026-12-06): egis-distil on one pool of the seed's and the prior's images
# (256 of each), on the two NHWC settings where egis-tv-distil was more than a point below the
# dataset-aware test at A50, with every other method of the goal on the same chips.
# The NHWC model was rebuilt this session (runs/ did not survive; train_nhwc.py gave a model of
# other weights, see docs/results.md), so every method is measured again on it, and the outputs
# go to docs/results/distil/nhwc_rebuild/, not over the committed files of the earlier build.
# Needs NHWC extreme's fidelity folder and its two distilled evaluations (complete.sh with
# SETS=nhwc:extreme, whose copies in docs/results/distil were then restored from git; they are
# copied here from runs/distil/).
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HERE=docs/results/distil/nhwc_rebuild
mkdir -p $HERE
for p in "" tv_; do   # complete.sh's two distilled evaluations of NHWC extreme, beside the others
  d=runs/distil/${p}nhwc_extreme
  cp $d/eval_extreme/results.csv $HERE/${p}nhwc_extreme_results.csv
  cp $d/eval_budget_extreme/results.csv $HERE/${p}nhwc_extreme_results_budget1.csv
  cp $d/eval_extreme/chance.csv $HERE/${p}nhwc_extreme_chance.csv
done
date -u "+%T both nhwc:extreme"
METHOD=egis-both-distil SETTINGS=nhwc:extreme bash docs/results/distil/customer.sh
date -u "+%T fidelity nhwc:typical"
STYLE=nhwc VARIABILITY=typical CHIPS=250 METHODS=egis,egis-tv,uniform,da-classifier \
  BUDGET_METHODS=egis,egis-tv,uniform,da-classifier bash scripts/fidelity_customer_model.sh
for m in egis-tv-distil egis-distil egis-both-distil; do
  date -u "+%T $m nhwc:typical"
  METHOD=$m SETTINGS=nhwc:typical bash docs/results/distil/customer.sh
done
for v in typical extreme; do
  cp runs/fidelity_nhwc/eval_$v/results.csv $HERE/fidelity_nhwc_${v}_results.csv
  cp runs/fidelity_nhwc/eval_budget_$v/results.csv $HERE/fidelity_nhwc_${v}_results_budget1.csv
done
date -u "+%T done"
