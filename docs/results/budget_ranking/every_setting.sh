#!/usr/bin/env bash
# Each detector's ranking at the 1% budget over every budget cell measured (28): the four
# full-protocol runs and the first three customer-style settings as rescored by run.sh (their
# per-seed CSVs here), and the settings measured on 2026-12-06 (NHWC extreme, smoothed and
# normout typical: docs/results/distil/customer.sh; digits: docs/results/distil/digits.sh),
# whose budget evaluations carry YL_at_budget in their results.csv (copied to docs/results/distil).
# Reads committed CSVs only. Output: every_compare.txt.
set -euo pipefail
cd "$(dirname "$0")/../../.."
here=docs/results/budget_ranking; d=docs/results/distil
csvs=($here/{vgg16,mobilenet}_{typical,extreme}.csv $here/{nhwc_typical,smoothed_extreme,normout_extreme}.csv)
for setting in nhwc:extreme smoothed:typical normout:typical; do
  s=${setting%%:*}; v=${setting##*:}
  for f in $d/fidelity_${s}_${v}_results_budget1.csv $d/${s}_${v}_results_budget1.csv $d/tv_${s}_${v}_results_budget1.csv; do
    csvs+=("$s-$v=$f")
  done
done
for v in typical extreme; do csvs+=("digits-$v=$d/digits_${v}_results_budget1.csv"); done
.venv/bin/python bench/bench_budget_ranking.py compare "${csvs[@]}" > $here/every_compare.txt
