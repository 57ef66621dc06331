#!/usr/bin/env bash
# egis-tv-distil (egis-distil on the prior's W = 10 images, runs/fidelity_<style>/sid_tv10) on the customer-style models of scripts/fidelity_customer_model.sh (runs/
# fidelity_<style>: their populations, labels and SID; 250 + 250 chips for nhwc typical,
# 200 + 200 for smoothed / normout extreme; 256 images per set). Unlabelled chips: the
# labelled chips' spec with seed 3 and UNLABELLED (2000) chips. The evaluations read the
# existing evaluations' responses (their cache folder), so only the unlabelled chips are
# simulated. K = 4, 3 seeds, A50 / A60 / A70 with the chance level; the 1% budget at A50 / A70
# (as the fidelity script's budget runs). Outputs here: tv_<style>_<variability>_*.csv. Run customer.sh first
# (it writes the unlabelled chips' specs).
set -euo pipefail
cd "$(dirname "$0")/../../.."
export EGIS_THREADS=${EGIS_THREADS:-2} EGIS_WORKERS=${EGIS_WORKERS:-2}
here=docs/results/distil
for setting in ${SETTINGS:-nhwc:typical smoothed:extreme normout:extreme}; do
  style=${setting%%:*}; v=${setting##*:}
  case "$style" in
    nhwc) contract=(--pixel-range 0,255) ;;
    smoothed) contract=() ;;
    normout) contract=(--mean 0.4914,0.4822,0.4465 --std 0.2470,0.2435,0.2616) ;;
  esac
  fid=runs/fidelity_$style; out=runs/distil/tv_${style}_$v
  .venv/bin/python - "$fid/pops/$v" "${UNLABELLED:-2000}" <<'PY'
import json, sys
from pathlib import Path
base, count = Path(sys.argv[1]), int(sys.argv[2])
spec = json.loads((base / "labelled.json").read_text())
spec.update(seed=3, count=count, note="the fab's unlabelled chips (egis-distil): the labelled chips' spec, seed 3")
(base / "unlabelled.json").write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
PY
  common=(--sid $fid/sid --populations $fid/pops --variability $v --images 256 --seed-count 3 -k 4
          --baseline-k 4 --trials 3 --sid-tv $fid/sid_tv10 --methods egis-tv-distil --name customer_$style
          --responses $fid/eval_$v/cache -q "${contract[@]}")
  date -u "+%T $style $v"
  .venv/bin/egis evaluate runs/customer/$style.onnx "${common[@]}" --cutoffs A50,A60,A70 --chance 100 -o $out/eval_$v
  mkdir -p $out/eval_budget_$v
  cp $out/eval_$v/choices.json $out/eval_budget_$v/choices.json
  .venv/bin/egis evaluate runs/customer/$style.onnx "${common[@]}" --cutoffs A50,A70 --max-escape 1% \
      -o $out/eval_budget_$v
  cp $out/eval_$v/results.csv $here/tv_${style}_${v}_results.csv
  cp $out/eval_budget_$v/results.csv $here/tv_${style}_${v}_results_budget1.csv
  cp $out/eval_$v/chance.csv $here/tv_${style}_${v}_chance.csv
done
date -u "+%T goal cells"
settings=()
for setting in nhwc:typical smoothed:extreme normout:extreme; do
  style=${setting%%:*}; v=${setting##*:}; fid=runs/fidelity_$style; d=runs/distil/tv_${style}_$v
  [ -f $d/eval_budget_$v/summary.json ] || continue
  settings+=("$style-$v=$fid/eval_$v:uniform,da-classifier+$d/eval_$v@$fid/eval_budget_$v:uniform,da-classifier+$d/eval_budget_$v")
done
.venv/bin/python scripts/goal_cells.py --method egis-tv-distil "${settings[@]}" > $here/customer_goal_egis-tv-distil.txt
.venv/bin/python scripts/chance_pooled.py $here/tv_{nhwc,smoothed,normout}_*_chance.csv > $here/customer_chance_pooled_tv.txt
date -u "+%T done"
