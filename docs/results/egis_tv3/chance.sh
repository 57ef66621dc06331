#!/usr/bin/env bash
# The budget's cost at chance for the N = 512 pools of run.sh: 100 random K = 4 sets of the
# seed's EGIS images and of the W = 3 prior's, scored under the 1% budget on the evaluation
# chips (bench/bench_chance_level.py --eval, which also checks each annealed choice's TA, CTE
# and YL against results.csv). Outputs: chance_budget/<model>_<variability>_<stimulus>.{txt,csv}.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export EGIS_THREADS=${EGIS_THREADS:-2}
here=docs/results/egis_tv3
mkdir -p $here/chance_budget
for setting in ${SETTINGS:-vgg16:typical vgg16:extreme mobilenet:extreme mobilenet:typical}; do
  m=${setting%%:*}; v=${setting##*:}
  M=models/cifar10_$m/model.onnx; run=runs/seed_${m}_f3; tv=runs/seed_${m}_f3_tv3
  for stim in egis egis-tv; do
    extra=()
    [ $stim = egis-tv ] && extra=(--sid-tv $tv/sid)
    date -u "+%T $m $v $stim"
    .venv/bin/python bench/bench_chance_level.py $run --model $M --variability $v --stimulus $stim \
        --eval $tv/eval_${v}_budget1 --max-escape 1% "${extra[@]}" --csv $here/chance_budget/${m}_${v}_${stim}.csv \
        2>/dev/null > $here/chance_budget/${m}_${v}_${stim}.txt
  done
done
date -u "+%T done"
