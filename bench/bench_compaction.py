"""Benchmark of the compaction annealing (egis.compaction) on synthetic signatures.

D=1000 chips, N=2048 images, K=4, M=10 (the issue's target: full schedule <= 60 s once the
signatures are cached). Synthetic logits: a chip's severity a_d shifts the logits of a few
"informative" images; chips pass when a_d < 0.5. Measures, in one run:

* full schedule time and best reward for HistGradientBoosting vs GradientBoosting,
* the I=5 trials run serially vs on a 2-worker joblib pool (threads and processes).

Usage: python bench/bench_compaction.py [--iterations N] (N < 208 extrapolates to 208).
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=schedule_length())
    parser.add_argument("--chips", type=int, default=1000)
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


if __name__ == "__main__":
    main()
