#!/usr/bin/env bash
# The seed paper's protocol on a shipped model (issue: simulation at the machine's limit, and
# the seed paper's protocol at full scale): 1000 labelled + 1000 evaluation chips per
# variability setting, labels from the full 10,000-image CIFAR-10 test set by adaptive
# labelling, N = 2048 images per stimulus set, K = 2/4/8/16, 3 seeds, the baselines.
#
#   MODEL=cifar10_vgg16 VARIABILITY=typical bash scripts/seed_protocol.sh
#
# Adaptive labelling places every chip against each decision point the evaluation uses and
# measures it on all 10,000 images only when one of them lies in its 99.5% interval:
#   labelled chips:   the thresholds of A50, A60 and A70 (egis label --decide A60,A70);
#   evaluation chips: those three thresholds (from the labelled side file) and each minus
#                     1 point, the critical-escape line (--margin 0.01).
# Every metric egis evaluate reports only compares accuracies with these points, so it equals
# the exhaustive labelling's up to that confidence; each accuracy CSV's images column says
# which chips are exact. Each step is skipped when its output exists (resume after a stop).
# Knobs: CHIPS (1000), N (2048), K (2,4,8,16), SEEDS (3), TRIALS (3), METHODS, SIGMA (the seed's:
# 0.3 VGG16, 0.15 MobileNet), OUT (runs/seed_<model>), EGIS_WORKERS (2), FIRST (500), VA_WEIGHT
# (1), TV_WEIGHT (10: egis-tv's prior), FORMAT (population format of new chips; default the newest), UNTIL (labels or sids: stop after that step), BUDGET (1: also the 1% escape budget at K = 4), BUDGET_CONFIDENCE (e.g. 75%: that budget also held at this confidence), CHANCE (100: random K-sets for the chance level; 0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
source scripts/common.sh
egis=.venv/bin/egis
name=${MODEL:-cifar10_vgg16}
variability=${VARIABILITY:-typical}
case "$name" in
  cifar10_vgg16|cifar10_mobilenet) ;;
  *) echo "MODEL must be cifar10_vgg16 or cifar10_mobilenet" >&2; exit 2 ;;
esac
sigma=${SIGMA:-$(seed_sigma "$name")}
case "$variability" in typical|extreme) ;; *) echo "VARIABILITY must be typical or extreme" >&2; exit 2 ;; esac
model=models/$name/model.onnx
zip=${CIFAR_ZIP:-../shared/datasets/cifar10/cifar10-jpeg.zip}
[ -f "$zip" ] || { echo "CIFAR-10 not found at $zip (set CIFAR_ZIP)" >&2; exit 2; }
out=${OUT:-runs/seed_$name}
chips=${CHIPS:-1000}
n=${N:-2048}
export EGIS_THREADS=1 EGIS_WORKERS=${EGIS_WORKERS:-2}
preset=(--set sigma_tot=$sigma --set preset=$variability)
adaptive=(--adaptive --first "${FIRST:-500}" --with-accuracy --data "$zip" --subdir test)
pops=$out/pops/$variability
mkdir -p "$pops" "$out/logs"
stamp() { date -u +%H:%M:%S; }
check_sigma "$pops/labelled.json" "$sigma"

for part in labelled:1 evaluation:2; do
  part_name=${part%%:*}; seed=${part##*:}
  [ -f "$pops/$part_name.json" ] || $egis duts make "$model" -o "$pops/$part_name.json" "${preset[@]}" \
      --count "$chips" --seed "$seed" ${FORMAT:+--format-version "$FORMAT"}
done
if [ ! -f "$pops/labelled_accuracy.csv" ]; then
  echo "$(stamp) labelling $chips labelled chips"
  $egis label "$model" "$pops/labelled.json" "${adaptive[@]}" --cutoff A50 --decide A60,A70 \
      -o "$pops/labelled_accuracy.csv"
fi
# the labelled chips' three thresholds, as the evaluation will compute them
read -r t50 t60 t70 < <($py -c "import json,sys; d=json.load(open(sys.argv[1]))['adaptive']['decided_at']; \
print(d['A50'], d['A60'], d['A70'])" "$pops/labelled_accuracy.json")
if [ ! -f "$pops/evaluation_accuracy.csv" ]; then
  echo "$(stamp) labelling $chips evaluation chips at $t50, $t60, $t70 and each minus 1 point"
  $egis label "$model" "$pops/evaluation.json" "${adaptive[@]}" --cutoff-from "$pops/labelled_accuracy.json" \
      --decide "$t60,$t70" --margin 0.01 -o "$pops/evaluation_accuracy.csv"
fi
[ "${UNTIL:-}" = labels ] && { echo "$(stamp) labels done (UNTIL=labels)"; exit 0; }
if [ ! -d "$out/sid" ]; then
  echo "$(stamp) synthesising $n images"
  $egis synthesize "$model" -o "$out/sid" --images "$n" --threads 2 -q
fi
# da-regressor is left out by default: it trains on the labelled chips' accuracies, which
# adaptive labelling only estimates away from the decision points. The seed's own methods
# alone: METHODS=egis,egis-random,gaussian,uniform,untrained,da-classifier (no variation-aware
# or prior's set is then synthesised or measured).
methods=${METHODS:-egis,egis-va,egis-tv,egis-random,egis-cv,egis-spread,egis-relevance,egis-cost,egis-select,gaussian,uniform,untrained,da-classifier}
variant_args=()
case ",$methods," in *,egis-va,*|*,egis-select,*) variant_args=(--sid-va "$out/sid_va_$variability") ;; esac
# the variation-aware set (egis-va): 4 chips of the fab's variability model, a population of
# their own (seed 7: neither labelled nor evaluation chips)
if [ ${#variant_args[@]} -gt 0 ]; then
  [ -f "$pops/synthesis_chips.json" ] || $egis duts make "$model" -o "$pops/synthesis_chips.json" "${preset[@]}" \
      --count 4 --seed 7 ${FORMAT:+--format-version "$FORMAT"}
  if [ ! -d "$out/sid_va_$variability" ]; then
    echo "$(stamp) synthesising $n variation-aware images"
    $egis synthesize "$model" -o "$out/sid_va_$variability" --images "$n" --threads 2 -q \
        --variation "$pops/synthesis_chips.json" --variation-weight "${VA_WEIGHT:-1}"
  fi
fi
# the total-variation prior's set (egis-tv): the seed's loss plus the prior at TV_WEIGHT (10)
tv_sid=$out/sid_tv${TV_WEIGHT:-10}
case ",$methods," in
  *,egis-tv,*|*,egis-select,*)
    variant_args+=(--sid-tv "$tv_sid")
    if [ ! -d "$tv_sid" ]; then
      echo "$(stamp) synthesising $n images with the total-variation prior"
      $egis synthesize "$model" -o "$tv_sid" --images "$n" --threads 2 -q --tv-weight "${TV_WEIGHT:-10}"
    fi ;;
esac
[ "${UNTIL:-}" = sids ] && { echo "$(stamp) stimulus sets done (UNTIL=sids)"; exit 0; }
echo "$(stamp) evaluating $methods"
$egis evaluate "$model" --sid "$out/sid" "${variant_args[@]}" --populations "$out/pops" --variability "$variability" \
    --real "$zip" --real-subdir test --images "$n" --seed-count "${SEEDS:-3}" -k "${K:-2,4,8,16}" \
    --baseline-k 4 --trials "${TRIALS:-3}" --cutoffs A50,A60,A70 --methods "$methods" \
    --name "$name" --responses "$out/responses" -q -o "$out/eval_$variability"
# the chance level of the EGIS choices at K = 4 (bench/bench_chance_level.py): CHANCE (100) random
# K-sets of the same images scored on the evaluation chips, so "annealing beats chance" is read
# against the mean of many random sets, not the one random set per seed of the egis-random row;
# CHANCE=0 skips it
chance=$out/eval_$variability/chance_level.csv
if [ "${CHANCE:-100}" != 0 ] && [ ! -f "$chance" ]; then
  echo "$(stamp) the chance level of the K = 4 choices (${CHANCE:-100} random sets)"
  $py bench/bench_chance_level.py "$out" --model "$model" --variability "$variability" \
      --sets "${CHANCE:-100}" --csv "$chance" > "$out/logs/chance_$variability.txt"
fi
# the 1% escape budget at K = 4 on the same choices: the budget only moves the detectors'
# threshold, so the annealing (choices.json) and the chips' responses (the shared response
# folder) are reused and only the scoring runs again; BUDGET=0 skips it
# BUDGET_CONFIDENCE=75% also scores the budget held at that confidence (egis evaluate
# --escape-confidence) into eval_<variability>_budget1_c<level>
levels=("")
[ -n "${BUDGET_CONFIDENCE:-}" ] && levels+=("$BUDGET_CONFIDENCE")
for level in "${levels[@]}"; do
  budget=$out/eval_${variability}_budget1${level:+_c${level%\%}}
  [ "${BUDGET:-1}" = 1 ] && [ ! -f "$budget/report.md" ] || continue
  echo "$(stamp) scoring the K = 4 choices with --max-escape 1%${level:+ at confidence $level}"
  mkdir -p "$budget"
  [ -f "$budget/choices.json" ] || cp "$out/eval_$variability/choices.json" "$budget/choices.json"
  $egis evaluate "$model" --sid "$out/sid" "${variant_args[@]}" --populations "$out/pops" \
      --variability "$variability" --real "$zip" --real-subdir test --images "$n" --seed-count "${SEEDS:-3}" \
      -k 4 --baseline-k 4 --trials "${TRIALS:-3}" --cutoffs A50,A60,A70 --methods "$methods" \
      --max-escape 1% ${level:+--escape-confidence "$level"} --name "$name" --responses "$out/responses" -q \
      -o "$budget"
done
echo "$(stamp) done"
