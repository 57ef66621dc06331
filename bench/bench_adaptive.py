"""Adaptive against exhaustive labelling, same chips, same images, one run.

Prints the wall time of each, their ratio, the chip-images run, and how often the adaptive
labels equal the exhaustive ones (the goal is >= 99.5% of chips). With ``--decide A60,A70
--margin 0.01`` (what ``egis evaluate`` compares accuracies with: every cutoff and every cutoff
minus 1 point) it also prints how often each chip lies on the same side of every decision
point as its exhaustive accuracy.

    python bench/bench_adaptive.py models/digits/model.onnx models/digits/populations/typical/labelled.json \\
        --data builtin:digits --chips 300 --first 120
    python bench/bench_adaptive.py models/cifar10_vgg16/model.onnx models/cifar10_vgg16/populations/typical/labelled.json \\
        --data ../shared/datasets/cifar10/cifar10-jpeg.zip --subdir test --chips 100 --images 5000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from egis.toolkit.adaptive import adaptive_accuracies, decision_points  # noqa: E402
from egis.toolkit.data import BUILTIN_DIGITS, digits_split, load_labelled_images  # noqa: E402
from egis.toolkit.labels import Cutoff, chip_accuracies  # noqa: E402
from egis.toolkit.population import open_population  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("population", type=Path)
    parser.add_argument("--data", required=True)
    parser.add_argument("--subdir", default=None)
    parser.add_argument("--chips", type=int, default=200)
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--first", type=int, default=500)
    parser.add_argument("--cutoff", default="A50")
    parser.add_argument("--confidence", type=float, default=0.995)
    parser.add_argument("--decide", default="", help="further cutoffs, comma-separated (e.g. A60,A70)")
    parser.add_argument("--margin", type=float, default=0.0, help="also decide at each cutoff minus this")
    args = parser.parse_args()
    pop = open_population(args.population, args.model)
    if args.data == BUILTIN_DIGITS:
        _, _, x, y = digits_split()
    else:
        data = load_labelled_images(Path(args.data), pop.model.contract, pop.model.num_classes, subdir=args.subdir)
        x, y = data.pixels, data.labels
    if args.images:
        x, y = x[:args.images], y[:args.images]
    chips = list(range(min(args.chips, len(pop))))
    rule = Cutoff.parse(args.cutoff)
    deciding = [rule] + [Cutoff.parse(c) for c in args.decide.split(",") if c.strip()]
    started = time.perf_counter()
    exhaustive = chip_accuracies(pop, x, y, chips, progress=False)
    t_full = time.perf_counter() - started
    started = time.perf_counter()
    result = adaptive_accuracies(pop, x, y, chips, deciding, confidence=args.confidence, first=args.first,
                                 progress=False, margin=args.margin)
    t_adaptive = time.perf_counter() - started
    full_labels = exhaustive >= rule.threshold(exhaustive)
    adaptive_labels = result.accuracies >= result.threshold
    agree = float(np.mean(full_labels == adaptive_labels))
    print(f"{args.model.parent.name}: {len(chips)} chips x {len(x)} images, cutoff {args.cutoff}")
    print(f"exhaustive {t_full:.1f} s; adaptive {t_adaptive:.1f} s ({t_full / t_adaptive:.2f}x), "
          f"{result.rounds} rounds, chip-images {result.chip_images_run} of {len(chips) * len(x)} "
          f"({100 * result.images_saved:.1f}% saved)")
    print(f"labels equal to exhaustive labelling: {100 * agree:.2f}% of chips "
          f"({int((full_labels != adaptive_labels).sum())} differ); thresholds {rule.threshold(exhaustive):.4f} "
          f"vs {result.threshold:.4f}")
    points = decision_points([c.threshold(exhaustive) for c in deciding], args.margin)
    same = (exhaustive[:, None] >= points) == (result.accuracies[:, None] >= points)
    print(f"decision points {', '.join(f'{v:.4f}' for v in points)}: every point on the exhaustive side for "
          f"{100 * same.all(axis=1).mean():.2f}% of chips; per point "
          f"{', '.join(f'{100 * v:.1f}' for v in same.mean(axis=0))}%; {int(result.exact.sum())} chips exact")


if __name__ == "__main__":
    main()
