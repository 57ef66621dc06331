#!/usr/bin/env bash
# The fidelity experiment on a customer-style model nobody tuned for EGIS (issue: test
# fidelity on any customer's model): the tf2onnx-style NHWC CIFAR-10 CNN of
# egis.models.customer_style.train_nhwc, typical variation, K = 4, 3 seeds, every data-free
# method against the dataset-aware classifier, with and without a 1% escape budget.
#   CHIPS=250 IMAGES=1000 bash scripts/fidelity_customer_model.sh
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
egis=.venv/bin/egis
out=${OUT:-runs/fidelity_nhwc}
model=${MODEL:-runs/customer/nhwc.onnx}
zip=${CIFAR_ZIP:-../shared/datasets/cifar10/cifar10-jpeg.zip}
contract=(--pixel-range 0,255)          # what the customer declares: raw pixels, NHWC
chips=${CHIPS:-250}
export EGIS_THREADS=1 EGIS_WORKERS=${EGIS_WORKERS:-2}
[ -f "$model" ] || $py -m egis.models.customer_style.train_nhwc --epochs 5 --out "$model"
mkdir -p "$out/pops/typical"
for part in labelled:1 evaluation:2; do
  name=${part%%:*}; seed=${part##*:}
  $egis duts make "$model" -o "$out/pops/typical/$name.json" --set sigma_tot=0.3 --set preset=typical \
      --count "$chips" --seed "$seed" "${contract[@]}"
  $egis label "$model" "$out/pops/typical/$name.json" --data "$zip" --subdir test --images "${IMAGES:-1000}" \
      --with-accuracy -o "$out/pops/typical/${name}_accuracy.csv" "${contract[@]}"
done
[ -d "$out/sid" ] || $egis synthesize "$model" -o "$out/sid" --images 512 --threads 1 -q "${contract[@]}"
methods=egis,egis-random,egis-spread,uniform,untrained,da-classifier
$egis evaluate "$model" --sid "$out/sid" --populations "$out/pops" --variability typical --real "$zip" \
    --real-subdir test -o "$out/eval" --images 256 --seed-count 3 -k 4 --baseline-k 4 --cutoffs A50,A60,A70 \
    --trials 3 --methods "$methods" --name customer_nhwc -q "${contract[@]}"
$egis evaluate "$model" --sid "$out/sid" --populations "$out/pops" --variability typical --real "$zip" \
    --real-subdir test -o "$out/eval_budget" --images 256 --seed-count 3 -k 4 --baseline-k 4 --cutoffs A50,A70 \
    --trials 3 --methods "$methods" --max-escape 1% --name customer_nhwc -q "${contract[@]}"
echo done
