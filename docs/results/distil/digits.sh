#!/usr/bin/env bash
# egis-distil and egis-tv-distil on the shipped digits model, with the seed's EGIS, egis-tv,
# uniform noise and the dataset-aware classifier on the same chips: the first 400 + 400 chips
# of each shipped population (scripts/fidelity_digits.sh makes them and the seed's SID), the
# prior's W = 10 set of 512 images, 2000 unlabelled chips per setting (the labelled chips' spec
# with seed 3), 256 images per set, K = 4, 3 seeds, A50 / A70 (the digits cutoffs) with the
# chance level, and again under the 1% budget on the same choices.
# Outputs here: digits_<variability>_{results,results_budget1,chance}.csv and
# digits_goal_<method>.txt for egis, egis-tv, egis-distil and egis-tv-distil (digits_goal.sh).
# Knobs (defaults: the run of 2026-12-06 01:16 UTC): METHODS, VARIABILITIES ("typical extreme"),
# HERE (the output folder), RUNS (evaluations go to ${RUNS}_<variability>; runs/distil/digits).
set -euo pipefail
cd "$(dirname "$0")/../../.."
export EGIS_THREADS=${EGIS_THREADS:-1} EGIS_WORKERS=${EGIS_WORKERS:-1}
here=${HERE:-docs/results/distil}
runs=${RUNS:-runs/distil/digits}
fid=runs/fidelity_digits
model=models/digits/model.onnx
egis=.venv/bin/egis
mkdir -p $here
[ -f $fid/eval_extreme/summary.json ] || OUT=$fid METHODS=egis CHIPS=400 bash scripts/fidelity_digits.sh
[ -d $fid/sid_tv10 ] || $egis synthesize $model -o $fid/sid_tv10 --images 512 --threads 2 -q --tv-weight 10
methods=${METHODS:-egis,egis-tv,egis-distil,egis-tv-distil,uniform,da-classifier}
for v in ${VARIABILITIES:-typical extreme}; do
  .venv/bin/python docs/results/distil/unlabelled_spec.py $fid/pops/$v "${UNLABELLED:-2000}"
  out=${runs}_$v
  common=(--sid $fid/sid --sid-tv $fid/sid_tv10 --populations $fid/pops --variability $v --real builtin:digits
          --images 256 --seed-count 3 -k 4 --baseline-k 4 --trials 3 --methods $methods --name digits
          --responses $fid/responses --cutoffs A50,A70 -q)
  date -u "+%T digits $v"
  $egis evaluate $model "${common[@]}" --chance 100 -o $out/eval_$v
  mkdir -p $out/eval_budget_$v
  cp $out/eval_$v/choices.json $out/eval_budget_$v/choices.json
  $egis evaluate $model "${common[@]}" --max-escape 1% -o $out/eval_budget_$v
  cp $out/eval_$v/results.csv $here/digits_${v}_results.csv
  cp $out/eval_budget_$v/results.csv $here/digits_${v}_results_budget1.csv
  cp $out/eval_$v/chance.csv $here/digits_${v}_chance.csv
done
bash docs/results/distil/digits_goal.sh "$runs" "$here" "$methods"
date -u "+%T done"
