"""Chip-simulation throughput: the engine next to its baseline and its limit, in one run.

baseline: a freshly written perturbed ONNX model and a new onnxruntime session per chip
engine:   toolkit.engine (one session, crossbar weights fed as graph inputs)
limit:    one session with fixed (nominal) weights, same images, same number of runs

Usage: python bench/bench_engine.py [MODEL.onnx ...] [--chips 32] [--images 512]
(fixed-batch models, e.g. egis.models.customer_style.train_torch --style normout, included: the
baseline and the limit feed them their fixed batch at a time)
Prints chip-images/s and the engine's ratio to the baseline and to the limit.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from egis.toolkit.engine import ChipSimulator, population_logits  # noqa: E402
from egis.toolkit.runtime import session_options  # noqa: E402
from egis.toolkit.model import load_model  # noqa: E402
from egis.toolkit.population import Population, PopulationSpec  # noqa: E402


def run_all(session: ort.InferenceSession, name: str, x: np.ndarray, fixed_batch: int | None) -> None:
    """One pass over the images; a model exported with a fixed batch (often 1) takes them that
    many at a time, as its own session must (the engine frees the batch where the graph allows)."""
    step = fixed_batch or len(x)
    for i in range(0, len(x) - step + 1, step):
        session.run(None, {name: x[i:i + step]})


def measure(model_path: Path, chips: int, images: int, threads: int, workers: int = 2) -> dict[str, float]:
    model = load_model(model_path)
    spec = PopulationSpec(model.sha256, "generic", {"sigma_tot": 0.2, "preset": "typical"}, 0, chips)
    population = Population(spec, model)
    pixels = np.random.default_rng(0).random((images, *model.contract.image_shape), dtype=np.float32)
    x = model.contract.normalize(pixels)
    # Chip weights are drawn in every method, so the draw cost is counted the same everywhere.
    started = time.perf_counter()
    for index in range(chips):
        chip = population.chip_model(index)
        session = ort.InferenceSession(chip.SerializeToString(), session_options(threads),
                                       providers=["CPUExecutionProvider"])
        run_all(session, model.input_name, x, model.fixed_batch)
    baseline = time.perf_counter() - started

    started = time.perf_counter()
    population_logits(population, pixels, progress=False, threads=threads)
    engine = time.perf_counter() - started

    started = time.perf_counter()   # egis.toolkit.runner: the chips over worker processes
    population_logits(population, pixels, progress=False, threads=1, workers=workers)
    pooled = time.perf_counter() - started

    session = ort.InferenceSession(model.proto.SerializeToString(), session_options(threads),
                                   providers=["CPUExecutionProvider"])
    started = time.perf_counter()
    for _ in range(chips):
        run_all(session, model.input_name, x, model.fixed_batch)
    limit = time.perf_counter() - started

    started = time.perf_counter()
    weights = [population.chip_weights(index) for index in range(chips)]
    draw = time.perf_counter() - started

    simulator = ChipSimulator(model, threads=threads)
    started = time.perf_counter()
    for w in weights:
        simulator.logits_normalized(w, x)
    inference = time.perf_counter() - started
    work = chips * images
    return {"baseline": work / baseline, "engine": work / engine, "limit": work / limit, "pooled": work / pooled,
            "engine_inference": work / inference, "draw_ms_per_chip": 1000 * draw / chips}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--chips", type=int, default=32)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="processes of the pooled engine (1 thread each)")
    args = parser.parse_args()
    models = args.models or [p for p in (ROOT / "models/digits/model.onnx",
                                         ROOT / "models/cifar10_vgg16/model.onnx",
                                         ROOT / "models/cifar10_mobilenet/model.onnx") if p.exists()]
    print(f"{'model':<20} {'baseline':>10} {'engine':>10} {'pooled':>10} {'eng-infer':>10} {'limit':>10} "
          f"{'eng/base':>9} {'eng/limit':>9} {'pool/limit':>10} {'infer/limit':>11} {'draw ms/chip':>12}")
    for path in models:
        r = measure(path, args.chips, args.images, args.threads, args.workers)
        label = path.parent.name if path.stem == "model" else path.stem
        print(f"{label:<20} {r['baseline']:>10.0f} {r['engine']:>10.0f} {r['pooled']:>10.0f} "
              f"{r['engine_inference']:>10.0f} {r['limit']:>10.0f} {r['engine'] / r['baseline']:>9.2f} "
              f"{r['engine'] / r['limit']:>9.2f} {r['pooled'] / r['limit']:>10.2f} "
              f"{r['engine_inference'] / r['limit']:>11.2f} {r['draw_ms_per_chip']:>12.2f}")
    print("chip-images/s (chips x images per second of wall time). baseline: new perturbed ONNX + session per\n"
          "chip; engine: toolkit.engine incl. drawing each chip's weights; pooled: the same over --workers\n"
          "processes of 1 thread (egis.toolkit.runner); eng-infer: the engine's session with\n"
          "weights drawn beforehand; limit: one session with fixed weights.")


if __name__ == "__main__":
    main()
