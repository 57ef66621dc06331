#!/usr/bin/env bash
# Each detector's ranking at the 1% escape budget on the four full-protocol runs (issue #18):
# bench/bench_budget_ranking.py rescores the K = 4 choices of the finished budget evaluations
# (the seed runs' baselines: noise and the dataset-aware test; docs/results/egis_tv3's EGIS (512) /
# egis-tv / egis-select, docs/results/distil's egis-distil / egis-tv-distil), checks the chosen
# threshold's CTE / YL against each results.csv, and adds YL_at_budget (the least yield loss
# within 1% critical escapes on the evaluation chips, threshold in hindsight). Simulates nothing.
# Then the same on the customer-style models (docs/results/distil/customer.sh: nhwc typical,
# smoothed / normout extreme; the budget at A50 / A70).
# CONFIDENCE=0.75 chooses the thresholds at that level (egis compact --escape-confidence) instead
# of the runs' mean rule; its outputs go to c75/ (the level in percent).
# SETTINGS (default: the four full-protocol ones) picks which of those to rescore; the customer
# part always runs.
# Outputs here: <model>_<variability>.csv (per seed), compare.txt and customer_compare.txt.
set -euo pipefail
cd "$(dirname "$0")/../../.."
here=docs/results/budget_ranking
level=(); if [ -n "${CONFIDENCE:-}" ]; then
  level=(--confidence $CONFIDENCE); here=$here/c$(python3 -c "print(round($CONFIDENCE * 100))"); mkdir -p $here
fi
for setting in ${SETTINGS-vgg16:typical mobilenet:typical vgg16:extreme mobilenet:extreme}; do
  m=${setting%%:*}; v=${setting##*:}
  run=runs/seed_${m}_f3
  .venv/bin/python bench/bench_budget_ranking.py rescore "${level[@]}" --populations $run/pops --variability $v --name $m-$v \
    --csv $here/${m}_$v.csv \
    $run/eval_${v}_budget1:da-classifier,uniform,gaussian,untrained \
    runs/seed_${m}_f3_tv3/eval_${v}_budget1:egis,egis-tv,egis-select \
    runs/distil/${m}_$v/eval_${v}_budget1:egis-distil \
    runs/distil/tv_${m}_$v/eval_${v}_budget1:egis-tv-distil
done
.venv/bin/python bench/bench_budget_ranking.py compare $here/{vgg16,mobilenet}_{typical,extreme}.csv > $here/compare.txt
for setting in nhwc:typical smoothed:extreme normout:extreme; do
  style=${setting%%:*}; v=${setting##*:}
  fid=runs/fidelity_$style
  tv=($fid/eval_tv_budget_$v:egis-tv); [ "$style" = nhwc ] && tv=()
  base=egis,egis-select,uniform,da-classifier; [ "$style" = nhwc ] && base=$base,egis-tv
  .venv/bin/python bench/bench_budget_ranking.py rescore "${level[@]}" --populations $fid/pops --variability $v --name $style-$v \
    --csv $here/${style}_$v.csv $fid/eval_budget_$v:$base "${tv[@]}" \
    runs/distil/${style}_$v/eval_budget_$v:egis-distil runs/distil/tv_${style}_$v/eval_budget_$v:egis-tv-distil
done
.venv/bin/python bench/bench_budget_ranking.py compare $here/{nhwc_typical,smoothed_extreme,normout_extreme}.csv \
  > $here/customer_compare.txt
cat $here/compare.txt $here/customer_compare.txt
