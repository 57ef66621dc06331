#!/usr/bin/env bash
# egis-both-distil on digits (2026-12-06), with every method of digits.sh on the same chips:
# digits.sh with egis-both-distil added, its evaluations under runs/distil/digits_both_<v> and
# its outputs in docs/results/distil/digits_both/. Typical is the third setting where
# egis-tv-distil was more than a point below the dataset-aware test at A50. The chips are those
# of digits.sh, so the uniform and dataset-aware rows can be checked against
# docs/results/distil/digits_<variability>_results*.csv.
# Run 2026-12-06 as two calls, typical (04:00-04:51 UTC) then VARIABILITY=extreme (04:51-05:00).
set -euo pipefail
cd "$(dirname "$0")/../../.."
VARIABILITIES=${VARIABILITY:-typical extreme} HERE=docs/results/distil/digits_both RUNS=runs/distil/digits_both \
  METHODS=egis,egis-tv,egis-distil,egis-tv-distil,egis-both-distil,uniform,da-classifier \
  bash docs/results/distil/digits.sh
.venv/bin/python scripts/chance_pooled.py docs/results/distil/digits_both/digits_*_chance.csv \
  > docs/results/distil/digits_both/chance_pooled.txt
