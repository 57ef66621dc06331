"""Benchmark of the compaction annealing (egis.compaction) on synthetic signatures.

D=1000 chips, N=2048 images, K=4, M=10 (the issue's target: full schedule <= 60 s once the
signatures are cached). Synthetic logits: a chip's severity a_d shifts the logits of a few
"informative" images; chips pass when a_d < 0.5. Measures, in one run:

* full schedule time and best reward for HistGradientBoosting vs GradientBoosting,
* the I=5 trials run serially vs on a 2-worker joblib pool (threads and processes).

* the reward each booster gives the same 20 random K=4 sets, on the synthetic logits and on
  real-ish ones (--real: digits_cnn from tests/model_zoo.py, 1000 chips of the generic plugin,
  preset extreme, labels = top half by agreement with the nominal model);
* the full 208-iteration schedule with the defaults (HGB, trials on 2 threads).

Usage: python bench/bench_compaction.py [--iterations N] [--real] (N < 208 extrapolates).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from egis.compaction import BoosterConfig, compact, schedule_length  # noqa: E402


def planted_logits(d: int = 1000, n: int = 2048, m: int = 10, informative: int = 32,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits (d, n, m) where only ``informative`` images reveal a chip's severity."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 3, (n, m)).astype(np.float32)
    sensitivity = np.full(n, 0.05, np.float32)
    sensitivity[rng.choice(n, informative, replace=False)] = 2.0
    direction = rng.normal(0, 1, (n, m)).astype(np.float32)
    severity = rng.random(d).astype(np.float32)
    logits = (base[None] + severity[:, None, None] * sensitivity[None, :, None] * direction[None]
              + rng.normal(0, 0.3, (d, n, m)).astype(np.float32))
    return logits.astype(np.float32), (severity < 0.5).astype(np.int64)


def run(label: str, logits: np.ndarray, labels: np.ndarray, iterations: int, **kwargs) -> float:
    full = schedule_length()
    t_end = 2.0 * 0.98 ** iterations + 1e-12 if iterations < full else 0.03
    start = time.perf_counter()
    result = compact(logits, labels, k=4, seed=1, t_end=t_end, **kwargs)
    seconds = time.perf_counter() - start
    per_full = seconds / len(result.history) * full
    print(f"{label:38s} {len(result.history):4d} it {seconds:7.2f} s  -> full {per_full:6.1f} s  "
          f"evals {result.evaluations:4d}  reward {result.initial_reward:.3f} -> {result.reward:.3f}",
          flush=True)
    return per_full


def realish_logits(d: int = 1000, n: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Responses of a real simulated population (digits_cnn, generic plugin) to random images."""
    import tempfile
    from pathlib import Path

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
    import model_zoo

    from egis.toolkit.engine import population_logits
    from egis.toolkit.labels import chip_accuracies
    from egis.toolkit.model import load_model
    from egis.toolkit.population import Population, PopulationSpec

    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(model_zoo.build_digits_cnn(Path(tmp)))
    pop = Population(PopulationSpec(model.sha256, "generic", {"preset": "extreme", "sigma_tot": 0.3},
                                    0, d), model)
    rng = np.random.default_rng(0)
    images = rng.random((n, 1, 8, 8), dtype=np.float32)
    data = rng.random((500, 1, 8, 8), dtype=np.float32)
    nominal = type("Nominal", (), {"model": model, "__len__": lambda self: 1,
                                   "chip_weights": lambda self, i: _nominal_weights(model)})()
    truth = population_logits(nominal, data, [0], progress=False)[0].argmax(1)
    acc = chip_accuracies(pop, data, truth, progress=False)
    start = time.perf_counter()
    logits = population_logits(pop, images, progress=False)
    print(f"real-ish signatures: {d} chips x {n} images in {time.perf_counter() - start:.1f} s")
    return logits, (acc >= np.median(acc)).astype(np.int64)


def _nominal_weights(model) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    init = {t.name: t for t in model.proto.graph.initializer}
    return {layer.name: numpy_helper.to_array(init[layer.name]).astype(np.float32) for layer in model.layers}


def compare_boosters(name: str, logits: np.ndarray, labels: np.ndarray, sets: int = 20) -> None:
    """Mean reward and seconds per reward of each booster on the same random K=4 sets."""
    from egis.compaction import RewardFunction, stratified_splits

    rng = np.random.default_rng(5)
    splits = stratified_splits(labels, 5, rng)
    candidates = [rng.choice(logits.shape[1], 4, replace=False) for _ in range(sets)]
    for label, config in (("HGB", BoosterConfig()), ("GB depth 2", BoosterConfig(kind="gb", max_depth=2)),
                          ("GB depth 3", BoosterConfig(kind="gb", max_depth=3))):
        with RewardFunction(logits, labels, splits, config, n_jobs=2) as reward:
            start = time.perf_counter()
            values = [reward(c) for c in candidates]
            seconds = (time.perf_counter() - start) / sets
        print(f"{name:10s} {label:11s} mean reward {np.mean(values):.4f} (max {np.max(values):.4f}) "
              f"{seconds:.3f} s per reward (5 fits)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--chips", type=int, default=1000)
    parser.add_argument("--real", action="store_true", help="also compare boosters on real-ish logits")
    parser.add_argument("--no-full", action="store_true", help="skip the full default schedule")
    args = parser.parse_args()
    logits, labels = planted_logits(d=args.chips)
    print(f"D={logits.shape[0]} N={logits.shape[1]} M={logits.shape[2]} K=4 I=5, "
          f"cpus={os.cpu_count()}, schedule {schedule_length()} iterations")
    hgb, gb = BoosterConfig(kind="hgb"), BoosterConfig(kind="gb", max_depth=2)
    t = {}
    t["hgb serial"] = run("HGB serial", logits, labels, args.iterations, config=hgb)
    t["hgb threads"] = run("HGB 2 threads (joblib threading)", logits, labels, args.iterations,
                           config=hgb, n_jobs=2, backend="threading")
    t["hgb procs"] = run("HGB 2 processes (joblib loky)", logits, labels, args.iterations,
                         config=hgb, n_jobs=2, backend="loky")
    t["gb serial"] = run("GB serial (depth 2)", logits, labels, args.iterations, config=gb)
    t["gb threads"] = run("GB 2 threads (joblib threading)", logits, labels, args.iterations,
                          config=gb, n_jobs=2, backend="threading")
    print(f"GB/HGB serial time ratio: {t['gb serial'] / t['hgb serial']:.2f}")
    print(f"HGB serial/threads speedup: {t['hgb serial'] / t['hgb threads']:.2f}, "
          f"serial/processes: {t['hgb serial'] / t['hgb procs']:.2f}")
    print(f"GB serial/threads speedup: {t['gb serial'] / t['gb threads']:.2f}")
    compare_boosters("synthetic", logits, labels)
    if args.real:
        compare_boosters("real-ish", *realish_logits(d=args.chips))
    if not args.no_full:
        start = time.perf_counter()
        result = compact(logits, labels, k=4, seed=1)
        print(f"FULL default schedule ({len(result.history)} iterations, {result.settings['booster']['kind']}, "
              f"trials on min(I, CPUs) threads): {time.perf_counter() - start:.1f} s, "
              f"{result.evaluations} distinct sets, reward {result.initial_reward:.3f} -> {result.reward:.3f}")


if __name__ == "__main__":
    main()
