#!/usr/bin/env bash
# egis-distil on the four full-protocol runs (scripts/seed_protocol.sh, runs/seed_<model>_f3:
# their populations and labels, 1000 labelled + 1000 evaluation chips). The fab's unlabelled
# chips: the labelled chips' spec (the same variability model) with a seed of its own (3) and
# UNLABELLED (2000) chips, written to runs/seed_<model>_f3/pops/<variability>/unlabelled.json.
# The pool is the seed's EGIS images, N = 512 (the first 512 of the run's SID), as in
# docs/results/egis_tv3, and the evaluation shares that run's response folder, so the labelled
# and evaluation chips' responses are read, not simulated; only the unlabelled chips are.
# K = 4, 3 seeds, A50 / A60 / A70, with the chance level (--chance 100) and with the 1% budget.
# Outputs here: <model>_<variability>_results[_budget1].csv, _choices.json, _chance.csv;
# goal_egis-distil.txt (scripts/goal_cells.py against the runs' noise and dataset-aware rows)
# and chance_pooled.txt (scripts/chance_pooled.py: minus chance pooled over the 12 cells).
set -euo pipefail
cd "$(dirname "$0")/../../.."
export EGIS_THREADS=${EGIS_THREADS:-2} EGIS_WORKERS=${EGIS_WORKERS:-2}
here=docs/results/distil
for setting in ${SETTINGS:-vgg16:typical mobilenet:typical vgg16:extreme mobilenet:extreme}; do
  m=${setting%%:*}; v=${setting##*:}
  M=models/cifar10_$m/model.onnx; run=runs/seed_${m}_f3; tv=runs/seed_${m}_f3_tv3; out=runs/distil/${m}_$v
  .venv/bin/python - "$run/pops/$v" "${UNLABELLED:-2000}" <<'PY'
import json, sys
from pathlib import Path
base, count = Path(sys.argv[1]), int(sys.argv[2])
spec = json.loads((base / "labelled.json").read_text())
spec.update(seed=3, count=count, note="the fab's unlabelled chips (egis-distil): the labelled chips' spec, seed 3")
(base / "unlabelled.json").write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
PY
  common=(--sid $run/sid --populations $run/pops --variability $v
          --images 512 --seed-count 3 -k 4 --baseline-k 4 --trials 3 --cutoffs A50,A60,A70
          --methods egis-distil --name cifar10_$m --responses $tv/responses -q)
  date -u "+%T $m $v"
  .venv/bin/egis evaluate $M "${common[@]}" --chance 100 -o $out/eval_$v
  mkdir -p $out/eval_${v}_budget1
  cp $out/eval_$v/choices.json $out/eval_${v}_budget1/choices.json
  .venv/bin/egis evaluate $M "${common[@]}" --max-escape 1% -o $out/eval_${v}_budget1
  cp $out/eval_$v/results.csv $here/${m}_${v}_results.csv
  cp $out/eval_${v}_budget1/results.csv $here/${m}_${v}_results_budget1.csv
  cp $out/eval_$v/choices.json $here/${m}_${v}_choices.json
  cp $out/eval_$v/chance.csv $here/${m}_${v}_chance.csv
done
date -u "+%T goal cells"
settings=()
for m in vgg16 mobilenet; do for v in typical extreme; do
  r=runs/seed_${m}_f3; d=runs/distil/${m}_$v
  base=uniform,gaussian,untrained,da-classifier
  [ -f $d/eval_${v}_budget1/summary.json ] && \
    settings+=("$m-$v=$r/eval_$v:$base+$d/eval_$v@$r/eval_${v}_budget1:$base+$d/eval_${v}_budget1")
done; done
.venv/bin/python scripts/goal_cells.py --method egis-distil "${settings[@]}" > $here/goal_egis-distil.txt
.venv/bin/python scripts/chance_pooled.py $here/{vgg16,mobilenet}_*_chance.csv > $here/chance_pooled.txt
date -u "+%T done"
