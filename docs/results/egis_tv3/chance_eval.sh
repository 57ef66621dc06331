#!/usr/bin/env bash
# The chance level without a budget, through `egis evaluate --chance 100` on run.sh's finished
# evaluations: every row is done, so the evaluation only draws 100 random K = 4 sets per
# stimulus set, measures the evaluation chips on their images (shared response folder) and
# writes chance.csv and the report's "Against chance" section. Outputs: <model>_<variability>_chance.csv.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export EGIS_THREADS=${EGIS_THREADS:-2} EGIS_WORKERS=${EGIS_WORKERS:-2}
zip=${CIFAR_ZIP:-../shared/datasets/cifar10/cifar10-jpeg.zip}
here=docs/results/egis_tv3
for setting in ${SETTINGS:-vgg16:typical vgg16:extreme mobilenet:extreme mobilenet:typical}; do
  m=${setting%%:*}; v=${setting##*:}
  M=models/cifar10_$m/model.onnx; run=runs/seed_${m}_f3; tv=runs/seed_${m}_f3_tv3
  date -u "+%T $m $v"
  .venv/bin/egis evaluate $M --sid $run/sid --sid-tv $tv/sid --populations $run/pops --variability $v \
      --real "$zip" --real-subdir test --images 512 --seed-count 3 -k 4 --baseline-k 4 --trials 3 \
      --cutoffs A50,A60,A70 --methods egis,egis-tv,egis-select --name cifar10_$m --responses $tv/responses \
      --chance 100 -q -o $tv/eval_$v
  cp $tv/eval_$v/chance.csv $here/${m}_${v}_chance.csv
done
date -u "+%T done"
