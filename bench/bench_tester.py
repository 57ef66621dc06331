"""Benchmark of the tester: milliseconds per chip with sessions reused vs created per chip.

For two zoo models (digits_cnn 8x8x1 and tiny_cnn 32x32x3, tests/model_zoo.py) it builds a
population (generic plugin, preset extreme), a bundle with K=4 images, exports chips as ONNX,
and measures in one run:

* reused: one Tester (stimulus run once, detector session once), chip sessions made before
  timing -- the per-chip test cost (K images through the chip + detector);
* chip file: chip session creation + test, Tester reused (what `egis test a.onnx b.onnx ...`
  pays per file);
* all new: a new Tester (bundle verification, stimulus and detector sessions) and a new chip
  session for every chip;
* population: chips of a population on one shared ChipSimulator session (weights as inputs),
  including drawing each chip's weights.

Usage: python bench/bench_tester.py [--chips 40]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import model_zoo  # noqa: E402

from egis.detector import build_detector  # noqa: E402
from egis.toolkit.bundle import write_bundle  # noqa: E402
from egis.toolkit.guard import SignatureGuard  # noqa: E402
from egis.toolkit.signatures import signatures  # noqa: E402
from egis.toolkit.chips import OnnxChip, PopulationChips  # noqa: E402
from egis.toolkit.engine import population_logits  # noqa: E402
from egis.toolkit.model import load_model  # noqa: E402
from egis.toolkit.population import Population, PopulationSpec  # noqa: E402
from egis.toolkit.tester import Tester  # noqa: E402

K = 4


def setup(builder, work: Path, chips: int):
    path = builder(work)
    model = load_model(path)
    spec = PopulationSpec(model.sha256, "generic", {"preset": "extreme", "sigma_tot": 0.3}, 0,
                          200 + chips, model_path=str(path))
    spec.save(work / f"{path.stem}_pop.json")
    pop = Population(spec, model)
    rng = np.random.default_rng(0)
    pixels = rng.random((K, *model.contract.image_shape), dtype=np.float32)
    logits = population_logits(pop, pixels, range(200), progress=False)
    score = -np.abs(logits - logits.mean(0)).sum((1, 2))     # stand-in labels: closeness to typical
    labels = (score >= np.median(score)).astype(int)
    _, onnx_bytes = build_detector(logits, labels, list(range(K)))
    info = {"model": {"sha256": model.sha256, "input_name": model.input_name,
                      "output_name": model.output_name, "num_classes": model.num_classes},
            "guard": SignatureGuard.fit(signatures(logits, list(range(K))), m=model.num_classes).to_dict()}
    bundle = write_bundle(work / f"{path.stem}_bundle", model.contract.normalize(pixels), onnx_bytes,
                          info, pixels)
    files = [pop.chip_model(i).SerializeToString() for i in range(200, 200 + chips)]
    return bundle, files, work / f"{path.stem}_pop.json", list(range(200, 200 + chips))


def per_chip_ms(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - start) / len(items) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chips", type=int, default=40)
    args = parser.parse_args()
    print(f"K={K}, {args.chips} chips per measurement, cpus={os.cpu_count()}, 1 onnxruntime thread")
    with tempfile.TemporaryDirectory() as tmp:
        for builder in (model_zoo.build_digits_cnn, model_zoo.build_tiny_cnn):
            bundle, files, pop_path, indices = setup(builder, Path(tmp), args.chips)
            tester = Tester(bundle)
            manifest = tester.bundle.manifest
            chips = [OnnxChip(b, manifest, name=f"c{i}") for i, b in enumerate(files)]
            tester.test(chips[0])                                   # warm-up
            reused = per_chip_ms(tester.test, chips)
            with_load = per_chip_ms(lambda b: tester.test(OnnxChip(b, manifest)), files)
            all_new = per_chip_ms(lambda b: Tester(bundle).test(OnnxChip(b, manifest)), files)
            population = PopulationChips(pop_path, None, manifest, indices, threads=1)
            pop_chips = list(population)
            tester.test(pop_chips[0])
            pop_ms = per_chip_ms(tester.test, pop_chips)
            verdict_ms = np.median([tester.test(c).elapsed_ms for c in chips])
            print(f"{builder.__name__[6:]:10s} reused {reused:6.3f} ms/chip (median verdict.elapsed "
                  f"{verdict_ms:.3f})  chip file load+test {with_load:6.2f}  all sessions new "
                  f"{all_new:6.2f}  ratio new/reused {all_new / reused:5.1f}x  population "
                  f"(shared session, incl. weights) {pop_ms:6.3f}")


if __name__ == "__main__":
    main()
