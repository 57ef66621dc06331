#!/usr/bin/env bash
# egis-distil (METHOD=egis-distil, the default), egis-tv-distil (METHOD=egis-tv-distil: the
# same on the prior's W = 10 images, runs/fidelity_<style>/sid_tv10) or egis-both-distil (one
# pool of both sets, 256 images of each; added 2026-12-06) on the customer-style
# models of scripts/fidelity_customer_model.sh (runs/fidelity_<style>: their populations,
# labels and SID; 250 + 250 chips for nhwc typical, 200 + 200 for the others; 256 images per
# set). SETTINGS picks style:variability pairs (default: the first three measured); the goal
# tables cover every pair with a finished budget evaluation. Unlabelled chips: the labelled chips' spec with seed 3 and UNLABELLED
# (2000) chips (unlabelled_spec.py). The evaluations read the existing evaluations' responses
# (their cache folder), so only the unlabelled chips are simulated (egis-both-distil's pool has
# a cache of its own: the labelled and evaluation chips are simulated on it again). K = 4, 3 seeds, A50 / A60 /
# A70 with the chance level; the 1% budget at A50 / A70 (as the fidelity script's budget runs).
# Outputs here (prefix tv_ for egis-tv-distil, both_ for egis-both-distil): <style>_<variability>_*.csv,
# customer_goal_<METHOD>.txt and customer_goal_egis.txt (the seed's EGIS on the same cells),
# customer_chance_pooled[_tv|_both].txt. HERE moves these outputs elsewhere.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export EGIS_THREADS=${EGIS_THREADS:-2} EGIS_WORKERS=${EGIS_WORKERS:-2}
here=${HERE:-docs/results/distil}   # where the tables and CSVs go
method=${METHOD:-egis-distil}
case "$method" in
  egis-distil) prefix=; pooled=customer_chance_pooled.txt ;;
  egis-tv-distil) prefix=tv_; pooled=customer_chance_pooled_tv.txt ;;
  egis-both-distil) prefix=both_; pooled=customer_chance_pooled_both.txt ;;
  *) echo "METHOD must be egis-distil, egis-tv-distil or egis-both-distil" >&2; exit 2 ;;
esac
for setting in ${SETTINGS:-nhwc:typical smoothed:extreme normout:extreme}; do
  style=${setting%%:*}; v=${setting##*:}
  case "$style" in
    nhwc) contract=(--pixel-range 0,255) ;;
    smoothed) contract=() ;;
    normout) contract=(--mean 0.4914,0.4822,0.4465 --std 0.2470,0.2435,0.2616) ;;
  esac
  fid=runs/fidelity_$style; out=runs/distil/$prefix${style}_$v
  .venv/bin/python docs/results/distil/unlabelled_spec.py "$fid/pops/$v" "${UNLABELLED:-2000}"
  variant=(); [ "$method" = egis-distil ] || variant=(--sid-tv $fid/sid_tv10)
  # the fidelity run's response cache: inside its evaluation before 2026-12-06, shared since
  cache=$fid/eval_$v/cache; [ -d "$cache" ] || cache=$fid/responses
  common=(--sid $fid/sid --populations $fid/pops --variability $v --images 256 --seed-count 3 -k 4
          --baseline-k 4 --trials 3 "${variant[@]}" --methods $method --name customer_$style
          --responses $cache -q "${contract[@]}")
  date -u "+%T $style $v"
  .venv/bin/egis evaluate runs/customer/$style.onnx "${common[@]}" --cutoffs A50,A60,A70 --chance 100 -o $out/eval_$v
  mkdir -p $out/eval_budget_$v
  cp $out/eval_$v/choices.json $out/eval_budget_$v/choices.json
  .venv/bin/egis evaluate runs/customer/$style.onnx "${common[@]}" --cutoffs A50,A70 --max-escape 1% \
      -o $out/eval_budget_$v
  cp $out/eval_$v/results.csv $here/$prefix${style}_${v}_results.csv
  cp $out/eval_budget_$v/results.csv $here/$prefix${style}_${v}_results_budget1.csv
  cp $out/eval_$v/chance.csv $here/$prefix${style}_${v}_chance.csv
done
date -u "+%T goal cells"
distil=(); seed=()
for setting in nhwc:typical nhwc:extreme smoothed:typical smoothed:extreme normout:typical normout:extreme; do
  style=${setting%%:*}; v=${setting##*:}; fid=runs/fidelity_$style; d=runs/distil/$prefix${style}_$v
  base=uniform,da-classifier
  [ -f $d/eval_budget_$v/summary.json ] || continue
  distil+=("$style-$v=$fid/eval_$v:$base+$d/eval_$v@$fid/eval_budget_$v:$base+$d/eval_budget_$v")
  seed+=("$style-$v=$fid/eval_$v:$base,egis@$fid/eval_budget_$v:$base,egis")
done
.venv/bin/python scripts/goal_cells.py --method $method "${distil[@]}" > $here/customer_goal_$method.txt
.venv/bin/python scripts/goal_cells.py --method egis "${seed[@]}" > $here/customer_goal_egis.txt
shopt -s nullglob   # the settings measured so far
.venv/bin/python scripts/chance_pooled.py $here/${prefix}{nhwc,smoothed,normout}_*_chance.csv > $here/$pooled
date -u "+%T done"
