"""Benchmark EGIS synthesis: seconds per iteration and convergence on the reference models.

For each model present it trains the generator (early stopping off, up to --iterations),
records when H_s >= 0.95 log M and H_c <= 0.1 log M are first met and first held for
--patience iterations, then samples --images images and reports the set's entropies and
class coverage. Prints a Markdown table; --json writes the raw numbers.

    .venv/bin/python bench/bench_synthesis.py                     # digits (+ CIFAR if present)
    .venv/bin/python bench/bench_synthesis.py --iterations 300 --models digits
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from egis.synthesis import (SynthesisConfig, finalize_generator, predict, sample,  # noqa: E402
                            set_summary, targets_met, train_generator, deterministic)
from toolkit.model import load_model  # noqa: E402

MODELS = {"digits": "models/digits/model.onnx",
          "cifar10_vgg16": "models/cifar10_vgg16/model.onnx",
          "cifar10_mobilenet": "models/cifar10_mobilenet/model.onnx"}


def first_streak(history, num_classes: int, config: SynthesisConfig, length: int) -> int | None:
    """Iteration at which the targets have held for ``length`` consecutive iterations."""
    streak = 0
    for record in history:
        streak = streak + 1 if targets_met(record, num_classes, config) else 0
        if streak >= length:
            return record.iteration
    return None


def bench_model(name: str, path: Path, config: SynthesisConfig, patience: int) -> dict:
    model = load_model(path, require_torch=True)
    began = time.perf_counter()
    def report(record, total: int) -> None:
        if record.iteration % 50 == 0:
            print(f"  it {record.iteration}/{total} H_c {record.h_c:.3f} H_s {record.h_s:.3f} "
                  f"{time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)

    result = train_generator(model, replace(config, early_stop=False), on_step=report)
    generator = finalize_generator(result.pixel_generator, config)
    with deterministic(config.seed, config.threads):
        _noise, images = sample(generator, config.images, config.seed)
    summary = set_summary(predict(model, images), model.num_classes)
    wall = time.perf_counter() - began
    stop_at = first_streak(result.history, model.num_classes, config, patience)
    last = result.history[-1]
    return {"model": name, "classes": model.num_classes, "batch": config.batch,
            "iterations": len(result.history), "s_per_iter": result.seconds_per_iteration,
            "first_met": first_streak(result.history, model.num_classes, config, 1),
            "early_stop_at": stop_at,
            "est_wall_early_stop_s": None if stop_at is None else stop_at * result.seconds_per_iteration,
            "final_h_c": last.h_c, "final_h_s": last.h_s, "log_m": math.log(model.num_classes),
            "set": summary, "wall_s": wall,
            "curve": [(r.iteration, round(r.h_c, 4), round(r.h_s, 4)) for r in result.history]}


def table(rows: list[dict]) -> str:
    head = ("| model | B | s/iter | iters | first met | early stop at (est. s) | final H_c / H_s (log M) "
            "| set H_c / H_s | classes | max share | wall s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        s = r["set"]
        stop = "-" if r["early_stop_at"] is None else f"{r['early_stop_at']} ({r['est_wall_early_stop_s']:.0f})"
        lines.append(f"| {r['model']} | {r['batch']} | {r['s_per_iter']:.3f} | {r['iterations']} | "
                     f"{r['first_met'] or '-'} | {stop} | {r['final_h_c']:.3f} / {r['final_h_s']:.3f} "
                     f"({r['log_m']:.3f}) | {s['h_c']:.3f} / {s['h_s']:.3f} | "
                     f"{s['classes_covered']}/{r['classes']} | {s['max_class_share']:.3f} | {r['wall_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--patience", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    config = SynthesisConfig(iterations=args.iterations, batch=args.batch, images=args.images,
                             patience=args.patience, seed=args.seed, threads=args.threads)
    rows = []
    for name in args.models:
        path = REPO / MODELS[name]
        if not path.is_file():
            print(f"skip {name}: {path} not present", file=sys.stderr)
            continue
        print(f"benchmarking {name} ...", file=sys.stderr, flush=True)
        rows.append(bench_model(name, path, config, args.patience))
        r = rows[-1]
        print(f"  {r['s_per_iter']:.3f} s/iter, histogram {r['set']['class_histogram']}", file=sys.stderr)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"threads {args.threads}, load average at end {load:.1f} on {os.cpu_count()} cores")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
