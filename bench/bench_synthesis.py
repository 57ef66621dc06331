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
from egis.toolkit.model import load_model  # noqa: E402

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


def stand_in(name: str, directory: Path) -> Path | None:
    """Untrained recipe architecture exported like the real model: for speed only.

    Lets us measure seconds/iteration of CIFAR-sized models before their training ends
    (convergence numbers of an untrained model mean nothing and are not reported).
    """
    import warnings

    import torch

    recipes = {"cifar10_vgg16": ("egis.models.cifar10_vgg16.train", "VGG16"),
               "cifar10_mobilenet": ("egis.models.cifar10_mobilenet.train", "MobileNetV1")}
    if name not in recipes:
        return None
    module = __import__(recipes[name][0], fromlist=[recipes[name][1]])
    torch.manual_seed(0)
    net = getattr(module, recipes[name][1])().eval()
    # Fresh BatchNorms are all identical (scale 1, shift 0); the legacy exporter then dedups
    # the folded biases into Identity nodes, which onnx2torch 1.5.15 cannot convert
    # (KeyError on the conv bias). Trained models do not have that; randomise like training.
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.normal_(m.weight, 1.0, 0.1)
            torch.nn.init.normal_(m.bias, 0.0, 0.1)
    path = directory / f"{name}_untrained.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(2, 3, 32, 32),), str(path), dynamo=False, opset_version=13,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return path


def speed_only(name: str, path: Path, config: SynthesisConfig, iterations: int) -> dict:
    model = load_model(path, require_torch=True)
    result = train_generator(model, replace(config, iterations=iterations, early_stop=False))
    return {"model": name + " (untrained stand-in, speed only)", "batch": config.batch,
            "iterations": iterations, "s_per_iter": result.seconds_per_iteration}


def table(rows: list[dict]) -> str:
    head = ("| model | B | s/iter | iters | first met | early stop at (est. s) | final H_c / H_s (log M) "
            "| set H_c / H_s | classes | max share | wall s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if "set" not in r:
            lines.append(f"| {r['model']} | {r['batch']} | {r['s_per_iter']:.3f} | {r['iterations']} "
                         "| - | - | - | - | - | - | - |")
            continue
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
    parser.add_argument("--stand-ins", type=int, default=0, metavar="N",
                        help="for absent CIFAR models, time N iterations on an untrained stand-in")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    config = SynthesisConfig(iterations=args.iterations, batch=args.batch, images=args.images,
                             patience=args.patience, seed=args.seed, threads=args.threads)
    rows = []
    for name in args.models:
        path = REPO / MODELS[name]
        if not path.is_file():
            if args.stand_ins:
                import tempfile

                with tempfile.TemporaryDirectory() as tmp:
                    fake = stand_in(name, Path(tmp))
                    if fake is not None:
                        print(f"timing untrained stand-in of {name} ...", file=sys.stderr, flush=True)
                        rows.append(speed_only(name, fake, config, args.stand_ins))
                        continue
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
