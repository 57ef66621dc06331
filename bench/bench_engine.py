"""Chip-simulation throughput against the machine's limit, all measured in one run.

limit (1 core, both cores): one session with fixed (nominal) weights, the same images, the
    same number of chips; "both cores" runs it in --workers processes at once, so the limit
    and the engine share the same parallelism.
engine: egis.toolkit.engine over --workers processes, drawing every chip's weights:
    old = population format 1 draws and the weights-as-inputs session (the engine before
    format 2), exact = format 2 draws (exact correlated field) and mode "auto" (baked per-chip
    sessions from BAKED_MIN_IMAGES images on), new = format 3 draws (band-limited field,
    covariance within plugins.fields.BAND_TOL) and mode "auto".
parts (1 thread, in process): draw s/chip for each format, inference s/chip for each mode.
floor: the standard normals of one format-2 die field (one per torus cell), the least an exact
    FFT draw of that embedding costs; ceiling = fixed / (fixed + floor) bounds new/2x1c; also
    with the fastest of numpy's PCG64, SFC64 and torch's normal_.

The field sampler's one-off setup (an eigen-decomposition per die shape, seconds) is paid
before the clocks start, in the parent, and inherited by the forked workers: a long run pays
it once, and it would otherwise swamp a few-chip bench.

Usage: python bench/bench_engine.py [MODEL.onnx ...] [--chips 8] [--images 1000,10000]
Fixed-batch models (e.g. egis.models.customer_style.train_torch --style normout) are fed their
fixed batch at a time by the limit, as their own session must be.
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

from egis.toolkit.engine import BAKED_MIN_IMAGES, DEFAULT_BATCH, ChipSimulator, population_logits  # noqa: E402
from egis.toolkit.model import LoadedModel, load_model  # noqa: E402
from egis.toolkit.population import Population, PopulationSpec  # noqa: E402
from egis.toolkit.runner import get_runner  # noqa: E402
from egis.toolkit.runtime import session_options  # noqa: E402


def run_all(session: ort.InferenceSession, name: str, x: np.ndarray, fixed_batch: int | None) -> None:
    """One pass over the images, DEFAULT_BATCH at a time as the engine feeds them (one batch of
    10,000 images of the shipped VGG16 is memory-bound, 655 MB per first-layer activation, and
    ran slower than the engine's batches); a model exported with a fixed batch (often 1) takes them that many at a time, as
    its own session must (the engine frees the batch where the graph allows)."""
    step = fixed_batch or DEFAULT_BATCH
    for i in range(0, len(x), step):
        batch = x[i:i + step]
        if fixed_batch and len(batch) < fixed_batch:
            break                   # a fixed-batch session cannot take the short tail
        session.run(None, {name: batch})


class FixedWeightTask:
    """The limit as a runner task: every 'chip' is the nominal model on the same images."""

    def __init__(self, model: LoadedModel, x: np.ndarray) -> None:
        self.model, self.x, self._session = model, x, None

    def setup(self) -> None:
        self._session = ort.InferenceSession(self.model.proto.SerializeToString(), session_options(1),
                                             providers=["CPUExecutionProvider"])

    def run(self, index: int) -> np.ndarray:
        if self._session is None:
            self.setup()
        run_all(self._session, self.model.input_name, self.x, self.model.fixed_batch)
        return np.zeros(1, np.float32)

    def for_worker(self) -> "FixedWeightTask":
        return FixedWeightTask(self.model, self.x)

    def __getstate__(self) -> dict:
        return {"model": self.model, "x": self.x, "_session": None}


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def population(model: LoadedModel, chips: int, version: int) -> Population:
    spec = PopulationSpec(model.sha256, "generic", {"sigma_tot": 0.3, "preset": "typical"}, 0, chips,
                          format_version=version)
    pop = Population(spec, model)
    pop.chip_matrices(0)            # field setup, before the clocks (forked workers inherit it)
    return pop


def normals_floor(pop: Population, repeats: int = 3) -> tuple[float, float, str, int]:
    """Seconds to draw the standard normals of one chip's correlated die field, and the
    embedding torus' cell count: any exact FFT (circulant or cut-off embedding) draw needs
    one normal per torus cell, so this is the least such a draw can cost on this core, FFTs
    not counted. Returns (numpy's default PCG64, the fastest generator measured, its name,
    cells): SFC64 and torch's ``normal_`` are timed too, so the ceiling is not an artefact of
    one generator. (nan, nan, "", 0) where the plugin draws no die field."""
    plugin = pop.plugin
    if not (hasattr(plugin, "die_layout") and hasattr(plugin, "sampler")):
        return float("nan"), float("nan"), "", 0
    _, die = plugin.die_layout(tuple(m.shape for m in pop._nominal))
    torus = plugin.sampler(die).torus
    if torus is None:
        return float("nan"), float("nan"), "", 0
    import torch

    torch.set_num_threads(1)                                 # one core, as every column here
    buf = np.empty(torus, np.float32)
    tensor = torch.from_numpy(buf)
    torch.manual_seed(0)
    draws = {name: lambda rng=np.random.Generator(bits(0)): rng.standard_normal(out=buf, dtype=np.float32)
             for name, bits in (("PCG64", np.random.PCG64), ("SFC64", np.random.SFC64))}
    draws["torch"] = tensor.normal_
    seconds = {}
    for name, draw in draws.items():
        draw()                                               # pages touched before the clock
        seconds[name] = min(_timed(draw) for _ in range(repeats))
    fastest = min(seconds, key=seconds.__getitem__)
    return seconds["PCG64"], seconds[fastest], fastest, int(buf.size)


def measure(model_path: Path, chips: int, images: list[int], workers: int) -> list[dict[str, float]]:
    model = load_model(model_path)
    pops = {v: population(model, chips, v) for v in (1, 2, 3)}
    draw = {v: _timed(lambda p=pops[v]: [p.chip_weights(i) for i in range(chips)]) / chips for v in (1, 2, 3)}
    floor, fastest, fastest_name, torus_cells = normals_floor(pops[2])
    weights = [pops[3].chip_weights(i) for i in range(chips)]
    rows = []
    for n in images:
        pixels = np.random.default_rng(0).random((n, *model.contract.image_shape), dtype=np.float32)
        x = model.contract.normalize(pixels)
        task = FixedWeightTask(model, x)
        task.setup()
        limit1 = _timed(lambda: [task.run(i) for i in range(chips)])
        limit2 = _timed(lambda: list(get_runner(workers).map(task, range(chips))))
        infer = {}
        for mode in ("inputs", "baked"):
            sim = ChipSimulator(model, threads=1, mode=mode)
            infer[mode] = _timed(lambda s=sim: [s.logits_normalized(w, x) for w in weights]) / chips
        old = _timed(lambda: population_logits(pops[1], pixels, progress=False, threads=1,
                                               workers=workers, mode="inputs"))
        exact = _timed(lambda: population_logits(pops[2], pixels, progress=False, threads=1,
                                                 workers=workers, mode="auto"))
        new = _timed(lambda: population_logits(pops[3], pixels, progress=False, threads=1,
                                               workers=workers, mode="auto"))
        work = chips * n
        rows.append({"images": n, "limit1": work / limit1, "limit2": work / limit2, "old": work / old,
                     "exact": work / exact, "new": work / new, "draw1": draw[1], "draw2": draw[2],
                     "draw3": draw[3], "inputs": infer["inputs"],
                     "baked": infer["baked"], "fixed": limit1 / chips, "floor": floor,
                     "fastest": fastest, "generator": fastest_name, "torus": torus_cells})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--chips", type=int, default=8)
    parser.add_argument("--images", default="1000", help="comma-separated images per chip")
    parser.add_argument("--workers", type=int, default=2, help="processes of 1 thread (both cores: 2)")
    args = parser.parse_args()
    images = [int(v) for v in args.images.split(",")]
    models = args.models or [p for p in (ROOT / "models/cifar10_vgg16/model.onnx",
                                         ROOT / "models/cifar10_mobilenet/model.onnx") if p.exists()]
    head = (f"{'model':<18} {'images':>6} {'limit 1c':>9} {'limit 2c':>9} {'old 2c':>8} {'exact 2c':>8} "
            f"{'new 2c':>8} {'new/lim':>7} {'exact/2x1c':>10} {'new/2x1c':>8} {'new/old':>7} | {'draw v1':>7} "
            f"{'draw v2':>7} {'draw v3':>7} {'inputs':>7} {'baked':>7} {'fixed':>7} | {'torus M':>7} "
            f"{'floor':>6} {'ceiling':>7} {'fastest':>13} {'ceiling':>7}")
    print(head)
    for path in models:
        label = path.parent.name if path.stem == "model" else path.stem
        for r in measure(path, args.chips, images, args.workers):
            print(f"{label:<18} {r['images']:>6} {r['limit1']:>9.0f} {r['limit2']:>9.0f} {r['old']:>8.0f} "
                  f"{r['exact']:>8.0f} {r['new']:>8.0f} {r['new'] / r['limit2']:>7.2f} "
                  f"{r['exact'] / (2 * r['limit1']):>10.2f} {r['new'] / (2 * r['limit1']):>8.2f} "
                  f"{r['new'] / r['old']:>7.2f} | {r['draw1']:>7.3f} {r['draw2']:>7.3f} {r['draw3']:>7.3f} "
                  f"{r['inputs']:>7.3f} {r['baked']:>7.3f} {r['fixed']:>7.3f} | {r['torus'] / 1e6:>7.2f} "
                  f"{r['floor']:>6.3f} {r['fixed'] / (r['fixed'] + r['floor']):>7.2f} "
                  f"{r['generator']:>6} {r['fastest']:>6.3f} {r['fixed'] / (r['fixed'] + r['fastest']):>7.2f}",
                  flush=True)
    print(f"chip-images/s (chips x images per second of wall time); limit: fixed nominal weights, on\n"
          f"1 core and on --workers={args.workers} processes (new/2x1c: against twice the 1-core limit,\n"
          f"the cores' ideal, steadier than a short multi-process run); old: format-1 draws + weights as\n"
          f"inputs; exact: format-2 draws (exact field) + mode auto (baked from {BAKED_MIN_IMAGES} images);\n"
          f"new: format-3 draws (band-limited field) + mode auto. Right of '|': seconds\n"
          f"per chip on 1 thread: weight draw per format, inference per engine mode, fixed-weight session.\n"
          f"Right of the second '|': the format-2 die field's embedding torus (million cells), the\n"
          f"seconds its standard normals alone take on 1 thread (floor: any exact FFT draw of this\n"
          f"embedding needs one per cell), and ceiling = fixed / (fixed + floor), the most new/2x1c\n"
          f"can reach with exact draws and no other overhead (numpy's PCG64; format 3's band-limited\n"
          f"draw needs no torus-sized noise and is not bound by it); fastest: the quickest of\n"
          f"PCG64, SFC64 and torch's normal_ on the same cells, and the ceiling it would allow.")


if __name__ == "__main__":
    main()
