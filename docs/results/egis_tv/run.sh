#!/usr/bin/env bash
# egis-tv (egis synthesize --tv-weight 10) through the seed protocol's evaluation, on the
# populations and labels of the four full-protocol runs (scripts/seed_protocol.sh, format-3
# chips; runs/seed_<model>_f3): K = 4, 3 seeds, A50 / A60 / A70, with and without the 1%
# budget, then the budget's cost at chance (100 random K-sets) for EGIS, real and egis-tv
# images. Outputs: <model>_<variability>_results[_budget1].csv and _choices.json here;
# chance_budget/ for the chance level.
#
# As measured (2026-12-05), the VGG16 set was runs/proto/sid_tv10_cli and the MobileNet one
# runs/seed_mobilenet_f3/sid_tv10, both made by the command below (the VGG16 images are
# byte-identical to it; its meta.json says kind "egis", written before egis-tv had a kind),
# and the evaluations read the labelled chips' responses from bench_stimulus_information's
# cache of the same chips and images (bit-identical to what egis evaluate computes; checked
# on VGG16 typical) instead of simulating them again. Without the cache each evaluation
# simulates 1000 chips x 2048 images first (6-11 min).
set -euo pipefail
cd "$(dirname "$0")/../../.."
export EGIS_THREADS=1 EGIS_WORKERS=2
zip=${CIFAR_ZIP:-../shared/datasets/cifar10/cifar10-jpeg.zip}
here=docs/results/egis_tv
mkdir -p $here/chance_budget
for setting in vgg16:typical vgg16:extreme mobilenet:typical mobilenet:extreme; do
  m=${setting%%:*}; v=${setting##*:}
  M=models/cifar10_$m/model.onnx; run=runs/seed_${m}_f3; out=runs/seed_${m}_f3_tv/eval_tv_$v
  [ -d $run/sid_tv10 ] || .venv/bin/egis synthesize $M -o $run/sid_tv10 --images 2048 --threads 2 -q --tv-weight 10
  common=(--sid $run/sid --sid-tv $run/sid_tv10 --populations $run/pops --variability $v --real "$zip"
          --real-subdir test --images 2048 --seed-count 3 -k 4 --baseline-k 4 --trials 3 --cutoffs A50,A60,A70
          --methods egis-tv --name cifar10_$m -q)
  .venv/bin/egis evaluate $M "${common[@]}" -o $out
  mkdir -p ${out}_budget1
  [ -d ${out}_budget1/cache ] || cp -al $out/cache ${out}_budget1/cache
  cp $out/choices.json ${out}_budget1/choices.json
  .venv/bin/egis evaluate $M "${common[@]}" --max-escape 1% -o ${out}_budget1
  cp $out/results.csv $here/${m}_${v}_results.csv
  cp ${out}_budget1/results.csv $here/${m}_${v}_results_budget1.csv
  cp $out/choices.json $here/${m}_${v}_choices.json
  for stim in egis real egis-tv; do
    ev=$run/eval_${v}_budget1; extra=()
    [ $stim = egis-tv ] && { ev=${out}_budget1; extra=(--sid-tv $run/sid_tv10); }
    [ $stim = real ] && extra=(--real "$zip" --real-subdir test)
    .venv/bin/python bench/bench_chance_level.py $run --model $M --variability $v --stimulus $stim --eval $ev \
        --max-escape 1% "${extra[@]}" --csv $here/chance_budget/${m}_${v}_${stim}.csv \
        2> $here/chance_budget/${m}_${v}_${stim}.err > $here/chance_budget/${m}_${v}_${stim}.txt
  done
done
# the prior's chance level without a budget, VGG16 typical (chance_tv_typical.*)
.venv/bin/python bench/bench_chance_level.py runs/seed_vgg16_f3 --model models/cifar10_vgg16/model.onnx \
    --variability typical --stimulus egis-tv --sid-tv runs/seed_vgg16_f3/sid_tv10 \
    --eval runs/seed_vgg16_f3_tv/eval_tv_typical --csv $here/chance_tv_typical.csv 2>/dev/null > $here/chance_tv_typical.txt
# the goal, cell by cell, for egis-tv and the seed's EGIS
settings=()
for m in vgg16 mobilenet; do for v in typical extreme; do
  r=runs/seed_${m}_f3; t=runs/seed_${m}_f3_tv
  settings+=("$m-$v=$r/eval_$v+$t/eval_tv_$v@$r/eval_${v}_budget1+$t/eval_tv_${v}_budget1")
done; done
for method in egis-tv egis; do .venv/bin/python scripts/goal_cells.py --method $method "${settings[@]}"; done
# customer-style models (nhwc_typical_*, smoothed_extreme_*, normout_extreme_*):
#   STYLE=nhwc CHIPS=250 IMAGES=1000 bash scripts/fidelity_customer_model.sh   (every method, egis-tv included)
#   smoothed / normout extreme: the existing runs plus egis-tv in folders of its own, e.g.
#   egis synthesize runs/customer/smoothed.onnx -o runs/fidelity_smoothed/sid_tv10 --images 512 --threads 2 -q --tv-weight 10
#   egis evaluate runs/customer/smoothed.onnx --sid runs/fidelity_smoothed/sid --sid-tv runs/fidelity_smoothed/sid_tv10 \
#       --populations runs/fidelity_smoothed/pops --variability extreme --real "$zip" --real-subdir test --images 256 \
#       --seed-count 3 -k 4 --baseline-k 4 --trials 3 --methods egis-tv --cutoffs A50,A60,A70 -o runs/fidelity_smoothed/eval_tv_extreme
#   (and --cutoffs A50,A70 --max-escape 1% -o .../eval_tv_budget_extreme; normout adds
#   --mean 0.4914,0.4822,0.4465 --std 0.2470,0.2435,0.2616)
# W = 3 on MobileNet typical (mobilenet_typical_w3_*): the 512-image set of the weight sweep
# (runs/tv_weights/sid_tv3, docs/results/stimulus_information/README.md), --images 512,
# otherwise as above: egis evaluate ... --sid-tv runs/tv_weights/sid_tv3 --images 512 --methods egis-tv
