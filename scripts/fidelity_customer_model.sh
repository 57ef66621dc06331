#!/usr/bin/env bash
# The fidelity experiment on a customer-style model nobody tuned for EGIS (issue: test
# fidelity on any customer's model): one variability setting, K = 4, 3 seeds, every data-free
# method (the seed's EGIS, the variation-aware egis-va, the total-variation prior egis-tv,
# spread preselection, the cost-weighted
# and the cross-validated rewards, random K, noise) against the dataset-aware classifier, with and without a 1% escape
# budget. The same chips for every method.
#
#   STYLE=nhwc     bash scripts/fidelity_customer_model.sh   # tf2onnx-style NHWC, raw 0..255 pixels
#   STYLE=smoothed bash scripts/fidelity_customer_model.sh   # torch, label smoothing 0.1
#   STYLE=normout  bash scripts/fidelity_customer_model.sh   # torch, normalisation outside, batch 1
#   STYLE=vgg16    bash scripts/fidelity_customer_model.sh   # the shipped cifar10_vgg16 (not retrained)
#   STYLE=mobilenet bash scripts/fidelity_customer_model.sh  # the shipped cifar10_mobilenet
# Knobs: CHIPS (labelled = evaluation count, default 250), IMAGES (labelling images, 1000),
# VARIABILITY (typical | extreme), SIGMA (sigma_tot; default the seed's: 0.15 mobilenet, else 0.3),
# METHODS, BUDGET_METHODS (those scored under the 1% budget), OUT, EGIS_WORKERS (2), TV_WEIGHT
# (10: egis-tv's prior weight). The variation-aware SID is made only when egis-va or egis-select
# is among METHODS or BUDGET_METHODS (both defaults include them).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
source scripts/common.sh
egis=.venv/bin/egis
style=${STYLE:-nhwc}
variability=${VARIABILITY:-typical}
case "$style" in
  nhwc)     contract=(--pixel-range 0,255)
            train=($py -m egis.models.customer_style.train_nhwc --epochs 5) ;;
  smoothed) contract=()
            train=($py -m egis.models.customer_style.train_torch --style smoothed --epochs 5) ;;
  normout)  contract=(--mean 0.4914,0.4822,0.4465 --std 0.2470,0.2435,0.2616)
            train=($py -m egis.models.customer_style.train_torch --style normout --epochs 5) ;;
  vgg16|mobilenet) contract=()   # shipped: contract in the model's metadata, never retrained
            shipped=models/cifar10_$style/model.onnx
            train=(false "shipped model $shipped is missing") ;;
  *) echo "STYLE must be nhwc, smoothed, normout, vgg16 or mobilenet" >&2; exit 2 ;;
esac
sigma=${SIGMA:-$(seed_sigma "$style")}
case "$variability" in typical|extreme) ;; *) echo "VARIABILITY must be typical or extreme" >&2; exit 2 ;; esac
preset=(--set sigma_tot=$sigma --set preset=$variability)
out=${OUT:-runs/fidelity_$style}
model=${MODEL:-${shipped:-runs/customer/$style.onnx}}
zip=${CIFAR_ZIP:-../shared/datasets/cifar10/cifar10-jpeg.zip}
chips=${CHIPS:-250}
export EGIS_THREADS=1 EGIS_WORKERS=${EGIS_WORKERS:-2}
[ -f "$model" ] || "${train[@]}" --out "$model"
pops=$out/pops/$variability
check_sigma "$pops/labelled.json" "$sigma"
mkdir -p "$pops"
for part in labelled:1 evaluation:2; do
  name=${part%%:*}; seed=${part##*:}
  [ -f "$pops/${name}_accuracy.csv" ] && continue
  $egis duts make "$model" -o "$pops/$name.json" "${preset[@]}" --count "$chips" --seed "$seed" "${contract[@]}"
  $egis label "$model" "$pops/$name.json" --data "$zip" --subdir test --images "${IMAGES:-1000}" \
      --with-accuracy -o "$pops/${name}_accuracy.csv" "${contract[@]}"
done
[ -d "$out/sid" ] || $egis synthesize "$model" -o "$out/sid" --images 512 --threads 2 -q "${contract[@]}"
methods=${METHODS:-egis,egis-va,egis-tv,egis-random,egis-spread,egis-cost,egis-cv,egis-select,uniform,da-classifier}
budget_methods=${BUDGET_METHODS:-egis,egis-va,egis-tv,egis-cost,egis-select,uniform,da-classifier}
variants=()
case ",$methods,$budget_methods," in
  *,egis-va,*|*,egis-select,*)
    # the variation-aware set: 4 chips of the fab's variability model, a population of their
    # own (seed 7: neither labelled nor evaluation chips); made only when a method uses it
    [ -f "$pops/synthesis_chips.json" ] || $egis duts make "$model" -o "$pops/synthesis_chips.json" "${preset[@]}" \
        --count 4 --seed 7 "${contract[@]}"
    [ -d "$out/sid_va_$variability" ] || $egis synthesize "$model" -o "$out/sid_va_$variability" --images 512 \
        --threads 2 -q --variation "$pops/synthesis_chips.json" --variation-weight "${VA_WEIGHT:-1}" "${contract[@]}"
    variants+=(--sid-va "$out/sid_va_$variability") ;;
esac
# the total-variation prior's set (egis-tv, and an egis-select candidate): the seed's loss plus
# the prior, no chips involved. An evaluation folder made before egis-tv existed refuses to
# resume with it: evaluate egis-tv into a folder of its own (METHODS=egis-tv OUT=...).
tv=${TV_WEIGHT:-10}
case ",$methods,$budget_methods," in
  *,egis-tv,*|*,egis-select,*)
    variants+=(--sid-tv "$out/sid_tv$tv")
    [ -d "$out/sid_tv$tv" ] || $egis synthesize "$model" -o "$out/sid_tv$tv" --images 512 --threads 2 -q \
        --tv-weight "$tv" "${contract[@]}" ;;
esac
common=(--sid "$out/sid" "${variants[@]}" --populations "$out/pops" --variability "$variability"
        --real "$zip" --real-subdir test --images 256 --seed-count 3 -k 4 --baseline-k 4 --trials 3
        --name "customer_$style" --responses "$out/responses" -q "${contract[@]}")
$egis evaluate "$model" "${common[@]}" -o "$out/eval_$variability" --cutoffs A50,A60,A70 --methods "$methods"
# the budget evaluate measures the same stimulus sets (uniform included: an egis-select
# candidate) on the same chips: the shared response folder holds them already
budget_dir=$out/eval_budget_$variability
$egis evaluate "$model" "${common[@]}" -o "$budget_dir" --cutoffs A50,A70 \
    --methods "$budget_methods" --max-escape 1%
echo done
