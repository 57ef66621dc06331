#!/usr/bin/env bash
# egis-tv-distil: egis-distil on the total-variation prior's images (W = 3, N = 512: the sets
# of docs/results/egis_tv3), on the four full-protocol runs, with the unlabelled chips run.sh
# wrote (runs/seed_<model>_f3/pops/<variability>/unlabelled.json: 2000 chips, seed 3; run.sh
# first). Shares docs/results/egis_tv3's response folder, so only the unlabelled chips'
# responses to the prior's images are simulated. K = 4, 3 seeds, A50 / A60 / A70, --chance 100
# and the 1% budget. Outputs here: tv_<model>_<variability>_*.csv, goal_egis-tv-distil.txt,
# chance_pooled_tv.txt.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export EGIS_THREADS=${EGIS_THREADS:-2} EGIS_WORKERS=${EGIS_WORKERS:-2}
here=docs/results/distil
for setting in ${SETTINGS:-vgg16:typical mobilenet:typical vgg16:extreme mobilenet:extreme}; do
  m=${setting%%:*}; v=${setting##*:}
  M=models/cifar10_$m/model.onnx; run=runs/seed_${m}_f3; tv=runs/seed_${m}_f3_tv3; out=runs/distil/tv_${m}_$v
  common=(--sid $run/sid --sid-tv $tv/sid --populations $run/pops --variability $v
          --images 512 --seed-count 3 -k 4 --baseline-k 4 --trials 3 --cutoffs A50,A60,A70
          --methods egis-tv-distil --name cifar10_$m --responses $tv/responses -q)
  date -u "+%T $m $v"
  .venv/bin/egis evaluate $M "${common[@]}" --chance 100 -o $out/eval_$v
  mkdir -p $out/eval_${v}_budget1
  cp $out/eval_$v/choices.json $out/eval_${v}_budget1/choices.json
  .venv/bin/egis evaluate $M "${common[@]}" --max-escape 1% -o $out/eval_${v}_budget1
  cp $out/eval_$v/results.csv $here/tv_${m}_${v}_results.csv
  cp $out/eval_${v}_budget1/results.csv $here/tv_${m}_${v}_results_budget1.csv
  cp $out/eval_$v/chance.csv $here/tv_${m}_${v}_chance.csv
done
date -u "+%T goal cells"
settings=()
for m in vgg16 mobilenet; do for v in typical extreme; do
  r=runs/seed_${m}_f3; d=runs/distil/tv_${m}_$v
  base=uniform,gaussian,untrained,da-classifier
  [ -f $d/eval_${v}_budget1/summary.json ] && \
    settings+=("$m-$v=$r/eval_$v:$base+$d/eval_$v@$r/eval_${v}_budget1:$base+$d/eval_${v}_budget1")
done; done
.venv/bin/python scripts/goal_cells.py --method egis-tv-distil "${settings[@]}" > $here/goal_egis-tv-distil.txt
.venv/bin/python scripts/chance_pooled.py $here/tv_*_chance.csv > $here/chance_pooled_tv.txt
date -u "+%T done"
