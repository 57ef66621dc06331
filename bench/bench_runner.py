"""Chip runners on the same job, same run: this process, a process pool, Ray (local cluster).

Prints chips/s of each backend and worker count, and Ray's overhead against the process pool
with the same number of workers. Every backend's logits are checked byte-equal to the local run.

    python bench/bench_runner.py [MODEL.onnx] [--chips 48] [--images 256] [--workers 1,2]
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
from egis.toolkit.model import load_model  # noqa: E402
from egis.toolkit.population import Population, PopulationSpec  # noqa: E402
from egis.toolkit.runner import LocalRunner, ProcessRunner, RayRunner  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, default=ROOT / "models/digits/model.onnx")
    parser.add_argument("--chips", type=int, default=48)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    model = load_model(args.model)
    spec = PopulationSpec(model.sha256, "generic", {"sigma_tot": 0.3, "preset": "typical"}, 0, args.chips)
    population = Population(spec, model)
    pixels = np.random.default_rng(0).random((args.images, *model.contract.image_shape), dtype=np.float32)
    chips = list(range(args.chips))

    def timed(runner) -> tuple[float, np.ndarray]:
        started = time.perf_counter()
        out = population_logits(population, pixels, chips, progress=False, threads=1, workers=runner)
        return args.chips / (time.perf_counter() - started), out

    local_rate, reference = timed(LocalRunner())
    print(f"{args.model.parent.name}: {args.chips} chips x {args.images} images, 1 onnxruntime thread per worker")
    print(f"{'backend':<22} {'workers':>7} {'chips/s':>9} {'vs local':>9} {'same bytes':>10}")
    print(f"{'this process':<22} {1:>7} {local_rate:>9.2f} {1.0:>9.2f} {'yes':>10}")
    pool_rates = {}
    for workers in [int(w) for w in args.workers.split(",")]:
        rate, out = timed(ProcessRunner(workers))
        pool_rates[workers] = rate
        print(f"{'process pool':<22} {workers:>7} {rate:>9.2f} {rate / local_rate:>9.2f} "
              f"{'yes' if out.tobytes() == reference.tobytes() else 'NO':>10}")
    try:
        import ray
    except ImportError:
        print("ray not installed: EGIS_EXTRAS=ray bash scripts/install.sh")
        return
    for workers in pool_rates:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        timed(RayRunner("auto"))                     # warm-up: worker start-up is paid once per cluster
        rate, out = timed(RayRunner("auto"))
        ray.shutdown()
        print(f"{'ray (local cluster)':<22} {workers:>7} {rate:>9.2f} {rate / local_rate:>9.2f} "
              f"{'yes' if out.tobytes() == reference.tobytes() else 'NO':>10}   "
              f"overhead vs pool: {pool_rates[workers] / rate:.2f}x")


if __name__ == "__main__":
    main()
