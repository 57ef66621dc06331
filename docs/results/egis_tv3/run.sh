#!/usr/bin/env bash
# The total-variation prior at W = 3 (egis synthesize --tv-weight 3) on the four full-protocol
# runs (scripts/seed_protocol.sh, runs/seed_<model>_f3: their populations and labels), with
# the seed's EGIS and egis-select (choosing between the two sets per setting from the labelled
# chips alone) in the same evaluation, so all three choose from pools of the same size:
# N = 512 images each (the EGIS pool is the first 512 of the run's 2048-image SID). K = 4,
# 3 seeds, A50 / A60 / A70, with and without the 1% budget. The two evaluations of a setting
# share one response folder (egis evaluate --responses), so the budget one simulates nothing.
# Noise and dataset-aware baselines: the run's own 2048-image evaluations, merged by
# scripts/goal_cells.py (same chips, checked). Outputs: <model>_<variability>_results[_budget1].csv
# and _choices.json here; goal_<method>.txt, the goal cell by cell; <model>_<variability>_chance.csv,
# the chance level without a budget (egis evaluate --chance 100: 100 random K = 4 sets per pool).
# As measured, --chance was added afterwards: the first evaluate line with --chance 100 was
# rerun on the finished evaluations (every row resumes, so only the random sets are measured
# and scored); rerunning this script does the same.
# As measured (2026-12-05) the two sets of the prior were made with --threads 1 (runs/tv_weights/
# sid_tv3 for MobileNet, sid_tv3_vgg16 for VGG16, copied to runs/seed_<model>_f3_tv3/sid).
set -euo pipefail
cd "$(dirname "$0")/../../.."
export EGIS_THREADS=${EGIS_THREADS:-2} EGIS_WORKERS=${EGIS_WORKERS:-2}
zip=${CIFAR_ZIP:-../shared/datasets/cifar10/cifar10-jpeg.zip}
here=docs/results/egis_tv3
for setting in ${SETTINGS:-vgg16:typical vgg16:extreme mobilenet:extreme mobilenet:typical}; do
  m=${setting%%:*}; v=${setting##*:}
  M=models/cifar10_$m/model.onnx; run=runs/seed_${m}_f3; tv=runs/seed_${m}_f3_tv3
  [ -d $tv/sid ] || .venv/bin/egis synthesize $M -o $tv/sid --images 512 --threads 2 -q --tv-weight 3
  common=(--sid $run/sid --sid-tv $tv/sid --populations $run/pops --variability $v --real "$zip"
          --real-subdir test --images 512 --seed-count 3 -k 4 --baseline-k 4 --trials 3 --cutoffs A50,A60,A70
          --methods egis,egis-tv,egis-select --name cifar10_$m --responses $tv/responses -q)
  date -u "+%T $m $v"
  .venv/bin/egis evaluate $M "${common[@]}" --chance 100 -o $tv/eval_$v
  mkdir -p $tv/eval_${v}_budget1
  cp $tv/eval_$v/choices.json $tv/eval_${v}_budget1/choices.json
  .venv/bin/egis evaluate $M "${common[@]}" --max-escape 1% -o $tv/eval_${v}_budget1
  cp $tv/eval_$v/results.csv $here/${m}_${v}_results.csv
  cp $tv/eval_${v}_budget1/results.csv $here/${m}_${v}_results_budget1.csv
  cp $tv/eval_$v/choices.json $here/${m}_${v}_choices.json
  cp $tv/eval_$v/chance.csv $here/${m}_${v}_chance.csv
done
date -u "+%T goal cells"
settings=()
for m in vgg16 mobilenet; do for v in typical extreme; do
  r=runs/seed_${m}_f3; t=runs/seed_${m}_f3_tv3
  base=uniform,gaussian,untrained,da-classifier
  [ -f $t/eval_${v}_budget1/summary.json ] && \
    settings+=("$m-$v=$r/eval_$v:$base+$t/eval_$v@$r/eval_${v}_budget1:$base+$t/eval_${v}_budget1")
done; done
for method in egis-tv egis-select egis; do
  .venv/bin/python scripts/goal_cells.py --method $method "${settings[@]}" > $here/goal_$method.txt
done
