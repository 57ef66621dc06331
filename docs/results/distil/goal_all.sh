#!/usr/bin/env bash
# Issue #18's goal for one method over every model and setting measured with the distilled
# methods: the four full-protocol runs (run.sh), the six customer-style settings (customer.sh)
# and digits (digits.sh), each against the dataset-aware test and the noise measured on the
# same chips (scripts/goal_cells.py). Reads finished evaluations only.
#   bash docs/results/distil/goal_all.sh egis-tv-distil > docs/results/distil/goal_all_egis-tv-distil.txt
set -euo pipefail
cd "$(dirname "$0")/../../.."
method=${1:?usage: goal_all.sh METHOD (egis, egis-distil or egis-tv-distil)}
case "$method" in
  egis-tv-distil) prefix=tv_ ;;
  egis-distil) prefix= ;;
  egis) prefix= ;;   # the seed's EGIS: docs/results/egis_tv3's 512-image pool, the fidelity runs' own
  *) echo "METHOD must be egis, egis-distil or egis-tv-distil" >&2; exit 2 ;;
esac
settings=()
add() {   # NAME=FOLDERS@BUDGET_FOLDERS, kept only when every folder holds a finished evaluation
  local folder
  for folder in $(echo "${1#*=}" | tr '@+' '  '); do
    [ -f "${folder%%:*}/summary.json" ] || { echo "not measured, left out: ${1%%=*} (${folder%%:*})" >&2; return 0; }
  done
  settings+=("$1")
}
for m in vgg16 mobilenet; do for v in typical extreme; do   # full protocol: EGIS from the 512-image pool
  r=runs/seed_${m}_f3; d=runs/distil/$prefix${m}_$v; base=uniform,gaussian,untrained,da-classifier
  if [ "$method" = egis ]; then
    e=runs/seed_${m}_f3_tv3
    add "$m-$v=$r/eval_$v:$base+$e/eval_$v:egis@$r/eval_${v}_budget1:$base+$e/eval_${v}_budget1:egis"
  else
    add "$m-$v=$r/eval_$v:$base+$d/eval_$v@$r/eval_${v}_budget1:$base+$d/eval_${v}_budget1"
  fi
done; done
for setting in nhwc:typical nhwc:extreme smoothed:typical smoothed:extreme normout:typical normout:extreme; do
  style=${setting%%:*}; v=${setting##*:}; fid=runs/fidelity_$style; d=runs/distil/$prefix${style}_$v
  base=uniform,da-classifier
  if [ "$method" = egis ]; then
    add "$style-$v=$fid/eval_$v:$base,egis@$fid/eval_budget_$v:$base,egis"
  else
    add "$style-$v=$fid/eval_$v:$base+$d/eval_$v@$fid/eval_budget_$v:$base+$d/eval_budget_$v"
  fi
done
for v in typical extreme; do
  add "digits-$v=runs/distil/digits_$v/eval_$v@runs/distil/digits_$v/eval_budget_$v"
done
.venv/bin/python scripts/goal_cells.py --method "$method" "${settings[@]}"
