#!/usr/bin/env bash
# egis-both-distil on digits (2026-12-06; VARIABILITY typical, the default: the third setting where
# egis-tv-distil was more than a point below the dataset-aware test at A50; or extreme), with every
# method of digits.sh on the same chips: the first 400 + 400 chips of the shipped population, the seed's SID and the
# prior's W = 10 set as digits.sh makes them, 2000 unlabelled chips (seed 3), 256 images per set
# (egis-both-distil: 256 of each), K = 4, 3 seeds, A50 / A70 with the chance level, then the 1%
# budget. The rows of the methods digits.sh measured can be checked against
# docs/results/distil/digits_<variability>_results*.csv. Outputs: docs/results/distil/digits_both/
# (digits_goal_<method>_<variability>.txt: the goal cells of that setting).
set -euo pipefail
cd "$(dirname "$0")/../../.."
export EGIS_THREADS=${EGIS_THREADS:-1} EGIS_WORKERS=${EGIS_WORKERS:-1}
here=docs/results/distil/digits_both
fid=runs/fidelity_digits
model=models/digits/model.onnx
egis=.venv/bin/egis
mkdir -p $here
[ -f $fid/eval_extreme/summary.json ] || OUT=$fid METHODS=egis CHIPS=400 bash scripts/fidelity_digits.sh
[ -d $fid/sid_tv10 ] || $egis synthesize $model -o $fid/sid_tv10 --images 512 --threads 2 -q --tv-weight 10
methods=egis,egis-tv,egis-distil,egis-tv-distil,egis-both-distil,uniform,da-classifier
v=${VARIABILITY:-typical}
.venv/bin/python docs/results/distil/unlabelled_spec.py $fid/pops/$v "${UNLABELLED:-2000}"
out=runs/distil/digits_both_$v
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
for method in egis egis-tv egis-distil egis-tv-distil egis-both-distil; do
  .venv/bin/python scripts/goal_cells.py --method $method "digits-$v=$out/eval_$v@$out/eval_budget_$v" \
      > $here/digits_goal_${method}_$v.txt
done
date -u "+%T done"
