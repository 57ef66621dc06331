#!/usr/bin/env bash
# The fidelity methods on the shipped digits model: the first CHIPS (400) labelled and
# evaluation chips of each shipped population, the seed's SID and a variation-aware SID per
# variability setting (4 chips of a population of their own, seed 7), every data-free method
# against the dataset-aware classifier, K = 4, 3 seeds, A50 and A70. The variation-aware SIDs are
# made only when METHODS includes egis-va or egis-select (the default does).
#   CHIPS=400 bash scripts/fidelity_digits.sh
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
egis=.venv/bin/egis
out=${OUT:-runs/fidelity_digits}
model=models/digits/model.onnx
chips=${CHIPS:-400}
export EGIS_THREADS=1 EGIS_WORKERS=${EGIS_WORKERS:-2}
methods=${METHODS:-egis,egis-va,egis-random,egis-spread,egis-cost,egis-cv,egis-select,uniform,da-classifier}
[ -d "$out/sid" ] || $egis synthesize "$model" -o "$out/sid" --images 512 --threads 2 -q
for variability in typical extreme; do
  pops=$out/pops/$variability
  mkdir -p "$pops"
  for name in labelled evaluation; do   # the first $chips chips of the shipped population
    $py - "$model" "models/digits/populations/$variability/$name.json" "$pops/$name.json" "$chips" <<'PY'
import json, sys
spec = json.load(open(sys.argv[2])); spec["count"] = int(sys.argv[4]); spec["model_path"] = sys.argv[1]
json.dump(spec, open(sys.argv[3], "w"), indent=2, sort_keys=True)
PY
    head -n $((chips + 1)) "models/digits/populations/$variability/${name}_accuracy.csv" > "$pops/${name}_accuracy.csv"
  done
  va=()
  case ",$methods," in
    *,egis-va,*|*,egis-select,*)   # the variation-aware set, made only when a method uses it
      [ -f "$out/chips_$variability.json" ] || $egis duts make "$model" -o "$out/chips_$variability.json" \
          --set sigma_tot=0.3 --set preset=$variability --count 4 --seed 7
      [ -d "$out/sid_va_$variability" ] || $egis synthesize "$model" -o "$out/sid_va_$variability" --images 512 \
          --threads 2 -q --variation "$out/chips_$variability.json"
      va=(--sid-va "$out/sid_va_$variability") ;;
  esac
  $egis evaluate "$model" --sid "$out/sid" "${va[@]}" --populations "$out/pops" \
      --variability "$variability" --real builtin:digits -o "$out/eval_$variability" --images 256 --seed-count 3 \
      -k 4 --baseline-k 4 --cutoffs A50,A70 --trials 3 --methods "$methods" --name digits -q
done
echo done
