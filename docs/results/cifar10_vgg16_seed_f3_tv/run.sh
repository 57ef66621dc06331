set -e
cd /work/main
export EGIS_THREADS=1 EGIS_WORKERS=2
M=models/cifar10_vgg16/model.onnx
out=runs/seed_vgg16_f3_tv
zip=../shared/datasets/cifar10/cifar10-jpeg.zip
date -u +%T
.venv/bin/egis evaluate $M --sid runs/proto/sid_tv10_cli --populations runs/seed_vgg16_f3/pops --variability typical \
  --real "$zip" --real-subdir test --images 2048 --seed-count 3 -k 4 --baseline-k 4 --trials 3 --cutoffs A50,A60,A70 \
  --methods egis,egis-random --name cifar10_vgg16 -q -o $out/eval_typical
date -u +%T
mkdir -p $out/eval_typical_budget1
cp -al $out/eval_typical/cache $out/eval_typical_budget1/cache
cp $out/eval_typical/choices.json $out/eval_typical_budget1/choices.json
.venv/bin/egis evaluate $M --sid runs/proto/sid_tv10_cli --populations runs/seed_vgg16_f3/pops --variability typical \
  --real "$zip" --real-subdir test --images 2048 --seed-count 3 -k 4 --baseline-k 4 --trials 3 --cutoffs A50,A60,A70 \
  --methods egis,egis-random --max-escape 1% --name cifar10_vgg16 -q -o $out/eval_typical_budget1
date -u +%T; echo done
