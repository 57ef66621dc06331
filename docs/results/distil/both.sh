#!/usr/bin/env bash
# egis-both-distil (2026-12-06): egis-distil on one pool of the seed's and the prior's images
# (256 of each), on the two NHWC settings where egis-tv-distil was more than a point below the
# dataset-aware test at A50. Needs NHWC extreme's fidelity folder (complete.sh with
# SETS=nhwc:extreme); NHWC typical's is made here as before (250 + 250 chips, the goal's methods)
# and its rows copied beside the others, so they can be checked against
# docs/results/egis_tv/nhwc_typical_results*.csv, the run the committed distil rows share chips with.
set -euo pipefail
cd "$(dirname "$0")/../../.."
here=docs/results/distil
date -u "+%T both nhwc:extreme"
METHOD=egis-both-distil SETTINGS=nhwc:extreme bash $here/customer.sh
date -u "+%T fidelity nhwc:typical"
STYLE=nhwc VARIABILITY=typical CHIPS=250 METHODS=egis,egis-tv,uniform,da-classifier \
  BUDGET_METHODS=egis,egis-tv,uniform,da-classifier bash scripts/fidelity_customer_model.sh
cp runs/fidelity_nhwc/eval_typical/results.csv $here/fidelity_nhwc_typical_results.csv
cp runs/fidelity_nhwc/eval_budget_typical/results.csv $here/fidelity_nhwc_typical_results_budget1.csv
date -u "+%T both nhwc:typical"
METHOD=egis-both-distil SETTINGS=nhwc:typical bash $here/customer.sh
date -u "+%T done"
