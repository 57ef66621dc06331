#!/usr/bin/env bash
# The customer-style settings the distilled methods had not been measured on (2026-12-06; run
# then as runs/complete/chain.sh with these lines): per setting, the fidelity run with only the
# methods issue #18's goal is read by (EGIS, egis-tv, uniform noise, the dataset-aware test; with
# and without the 1% budget), then egis-tv-distil and egis-distil on the same chips
# (customer.sh). 200 + 200 chips each. SETS picks style:variability pairs. Then
# `bash docs/results/distil/goal_all.sh METHOD` and docs/results/budget_ranking/every_setting.sh
# tabulate every setting.
set -euo pipefail
cd "$(dirname "$0")/../../.."
for s in ${SETS:-nhwc:extreme smoothed:typical normout:typical}; do
  date -u "+%T fidelity $s"
  STYLE=${s%%:*} VARIABILITY=${s##*:} CHIPS=200 METHODS=egis,egis-tv,uniform,da-classifier \
    BUDGET_METHODS=egis,egis-tv,uniform,da-classifier bash scripts/fidelity_customer_model.sh
  date -u "+%T tv-distil $s"
  METHOD=egis-tv-distil SETTINGS=$s bash docs/results/distil/customer.sh
  date -u "+%T distil $s"
  METHOD=egis-distil SETTINGS=$s bash docs/results/distil/customer.sh
  st=${s%%:*}; v=${s##*:}
  cp runs/fidelity_$st/eval_$v/results.csv docs/results/distil/fidelity_${st}_${v}_results.csv
  cp runs/fidelity_$st/eval_budget_$v/results.csv docs/results/distil/fidelity_${st}_${v}_results_budget1.csv
done
date -u "+%T done"
