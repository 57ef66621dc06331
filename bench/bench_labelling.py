"""Labelling + evaluation responses: two passes over the chips against one, in one run.

baseline: toolkit.labels.chip_accuracies on the customer's images, then
          toolkit.engine.population_logits on the stimuli (each chip's weights drawn twice),
          what `egis label` followed by `egis evaluate` costs;
one pass: chip_accuracies(..., also=(stimuli, out)) (each chip drawn once), what
          `python -m egis.models.populations ... --responses-for` does.

Usage: python bench/bench_labelling.py [MODEL.onnx] [--chips 20] [--images 256] [--stimuli 640]
Prints seconds per chip for both and their ratio, and checks that the logits agree.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from egis.toolkit.engine import population_logits  # noqa: E402
from egis.toolkit.labels import chip_accuracies  # noqa: E402
from egis.toolkit.model import load_model  # noqa: E402
from egis.toolkit.population import Population, PopulationSpec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(ROOT / "models/digits/model.onnx"))
    parser.add_argument("--chips", type=int, default=20)
    parser.add_argument("--images", type=int, default=256, help="customer images per chip")
    parser.add_argument("--stimuli", type=int, default=640, help="stimulus images per chip")
    parser.add_argument("--preset", default="typical")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    model = load_model(args.model)
    spec = PopulationSpec(model.sha256, "generic", {"sigma_tot": 0.3, "preset": args.preset}, 1, args.chips)
    population = Population(spec, model)
    rng = np.random.default_rng(0)
    shape = model.contract.image_shape
    x = rng.random((args.images, *shape), dtype=np.float32)
    y = rng.integers(0, model.num_classes, args.images)
    stimuli = rng.random((args.stimuli, *shape), dtype=np.float32)
    population.chip_weights(0)  # field sampler set-up paid before timing

    started = time.perf_counter()
    acc_two = chip_accuracies(population, x, y, progress=False, threads=args.threads)
    logits_two = population_logits(population, stimuli, progress=False, threads=args.threads)
    two = time.perf_counter() - started

    out = np.empty_like(logits_two)
    started = time.perf_counter()
    acc_one = chip_accuracies(population, x, y, progress=False, threads=args.threads, also=(stimuli, out))
    one = time.perf_counter() - started

    assert np.array_equal(acc_one, acc_two)
    diff = float(np.abs(out - logits_two).max())
    print(f"{Path(args.model).parent.name} {args.preset}, {args.chips} chips, {args.images} + "
          f"{args.stimuli} images, {args.threads} thread(s)")
    print(f"| method | s/chip |\n|---|---|\n| two passes (baseline) | {two / args.chips:.3f} |\n"
          f"| one pass | {one / args.chips:.3f} |")
    print(f"speed-up {two / one:.2f}x; max |logit difference| {diff:.2e}")


if __name__ == "__main__":
    main()
