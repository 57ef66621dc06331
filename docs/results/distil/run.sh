#!/usr/bin/env bash
# egis-distil (METHOD=egis-distil, the default) or egis-tv-distil (METHOD=egis-tv-distil: the
# same on the total-variation prior's W = 3 images of docs/results/egis_tv3) on the four
# full-protocol runs (scripts/seed_protocol.sh, runs/seed_<model>_f3: their populations and
# labels, 1000 labelled + 1000 evaluation chips). The fab's unlabelled chips: the labelled
# chips' spec with a seed of its own (3) and UNLABELLED (2000) chips, written to
# runs/seed_<model>_f3/pops/<variability>/unlabelled.json (unlabelled_spec.py).
# The pools are N = 512 images (the seed's: the first 512 of the run's SID), as in
# docs/results/egis_tv3, and the evaluation shares that run's response folder, so the labelled
# and evaluation chips' responses are read, not simulated; only the unlabelled chips are.
# K = 4, 3 seeds, A50 / A60 / A70, with the chance level (--chance 100) and with the 1% budget.
# Outputs here (prefix tv_ for egis-tv-distil): <model>_<variability>_results[_budget1].csv,
# _choices.json, _chance.csv; goal_<METHOD>.txt (scripts/goal_cells.py against the runs' noise
# and dataset-aware rows) and chance_pooled[_tv].txt (scripts/chance_pooled.py: minus chance
# pooled over the 12 cells).
set -euo pipefail
cd "$(dirname "$0")/../../.."
export EGIS_THREADS=${EGIS_THREADS:-2} EGIS_WORKERS=${EGIS_WORKERS:-2}
here=docs/results/distil
method=${METHOD:-egis-distil}
case "$method" in
  egis-distil) prefix=; pooled=chance_pooled.txt ;;
  egis-tv-distil) prefix=tv_; pooled=chance_pooled_tv.txt ;;
  *) echo "METHOD must be egis-distil or egis-tv-distil" >&2; exit 2 ;;
esac
for setting in ${SETTINGS:-vgg16:typical mobilenet:typical vgg16:extreme mobilenet:extreme}; do
  m=${setting%%:*}; v=${setting##*:}
  M=models/cifar10_$m/model.onnx; run=runs/seed_${m}_f3; tv=runs/seed_${m}_f3_tv3; out=runs/distil/$prefix${m}_$v
  .venv/bin/python $here/unlabelled_spec.py "$run/pops/$v" "${UNLABELLED:-2000}"
  variant=(); [ "$method" = egis-tv-distil ] && variant=(--sid-tv $tv/sid)
  common=(--sid $run/sid "${variant[@]}" --populations $run/pops --variability $v
          --images 512 --seed-count 3 -k 4 --baseline-k 4 --trials 3 --cutoffs A50,A60,A70
          --methods $method --name cifar10_$m --responses $tv/responses -q)
  date -u "+%T $m $v"
  .venv/bin/egis evaluate $M "${common[@]}" --chance 100 -o $out/eval_$v
  mkdir -p $out/eval_${v}_budget1
  cp $out/eval_$v/choices.json $out/eval_${v}_budget1/choices.json
  .venv/bin/egis evaluate $M "${common[@]}" --max-escape 1% -o $out/eval_${v}_budget1
  cp $out/eval_$v/results.csv $here/$prefix${m}_${v}_results.csv
  cp $out/eval_${v}_budget1/results.csv $here/$prefix${m}_${v}_results_budget1.csv
  cp $out/eval_$v/choices.json $here/$prefix${m}_${v}_choices.json
  cp $out/eval_$v/chance.csv $here/$prefix${m}_${v}_chance.csv
done
date -u "+%T goal cells"
settings=()
for m in vgg16 mobilenet; do for v in typical extreme; do
  r=runs/seed_${m}_f3; d=runs/distil/$prefix${m}_$v
  base=uniform,gaussian,untrained,da-classifier
  [ -f $d/eval_${v}_budget1/summary.json ] && \
    settings+=("$m-$v=$r/eval_$v:$base+$d/eval_$v@$r/eval_${v}_budget1:$base+$d/eval_${v}_budget1")
done; done
.venv/bin/python scripts/goal_cells.py --method $method "${settings[@]}" > $here/goal_$method.txt
.venv/bin/python scripts/chance_pooled.py $here/${prefix}{vgg16,mobilenet}_*_chance.csv > $here/$pooled
date -u "+%T done"
