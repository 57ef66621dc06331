#!/usr/bin/env bash
# The 1% budget against the number of labelled chips (bench/bench_budget_labels.py) on the four
# full-protocol runs: the dataset-aware test, the seed's EGIS (512-image pool,
# docs/results/egis_tv3) and egis-tv-distil, each with its K = 4 choices held fixed and its
# detector refitted on D = 250 / 500 / 1000 labelled chips (3 random draws below 1000).
# Outputs here: labels_<model>_<variability>.txt, labels_<model>_<variability>_D<count>.csv and
# labels_compare_D<count>.txt (bench_budget_ranking.py compare over the 12 cells at each count).
# Simulates nothing.
set -euo pipefail
cd "$(dirname "$0")/../../.."
here=docs/results/budget_ranking
for setting in ${SETTINGS-vgg16:typical mobilenet:typical vgg16:extreme mobilenet:extreme}; do
  m=${setting%%:*}; v=${setting##*:}
  .venv/bin/python bench/bench_budget_labels.py --populations runs/seed_${m}_f3/pops --variability $v \
    --name $m-$v --csv-prefix $here/labels_${m}_$v \
    runs/seed_${m}_f3/eval_${v}_budget1:da-classifier runs/seed_${m}_f3_tv3/eval_${v}_budget1:egis \
    runs/distil/tv_${m}_$v/eval_${v}_budget1:egis-tv-distil > $here/labels_${m}_$v.txt
done
for d in 250 500 1000; do
  .venv/bin/python bench/bench_budget_ranking.py compare $here/labels_{vgg16,mobilenet}_{typical,extreme}_D$d.csv \
    > $here/labels_compare_D$d.txt
done
