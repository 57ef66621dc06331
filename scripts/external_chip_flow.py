"""The production flow on chips this toolkit did not simulate, measured end to end.

Makes D labelled + D evaluation chip ONNX files from the shipped digits model with a
perturbation of this script's own (every Conv/Gemm weight times 1 + N(0, sigma), sigma drawn
per chip), then runs the public CLI: label (customer), synthesize, measure, compact (fab), test
(tester) on the held-out chips, and prints TA / CTE / YL against the held-out chips' true
accuracies and the measured seconds per chip of `egis measure`.

    python scripts/external_chip_flow.py --chips 150 --out runs/external
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from egis.metrics import test_metrics
from egis.models.registry import reference_model_path
from egis.toolkit.data import digits_split
from egis.toolkit.io import write_npz
from egis.toolkit.labels import read_labels


def egis(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "egis.cli", *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"egis {' '.join(map(str, args))} failed: {done.stderr.strip()}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=150, help="labelled chips (and as many evaluation chips)")
    parser.add_argument("--out", type=Path, default=Path("runs/external"))
    parser.add_argument("-k", type=int, default=4)
    args = parser.parse_args()
    out = args.out
    model_path = reference_model_path("digits")
    model = onnx.load(str(model_path))
    weights = {n.input[1] for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")}
    rng = np.random.default_rng(2026)
    for part in ("labelled", "evaluation"):
        (out / part).mkdir(parents=True, exist_ok=True)
        for i in range(args.chips):
            sigma = rng.uniform(0.05, 0.6)
            chip = onnx.ModelProto()
            chip.CopyFrom(model)
            for init in chip.graph.initializer:
                if init.name in weights:
                    w = numpy_helper.to_array(init)
                    init.CopyFrom(numpy_helper.from_array(
                        (w * (1 + rng.normal(0, sigma, w.shape))).astype(w.dtype), init.name))
            onnx.save(chip, str(out / part / f"die{i:04d}.onnx"))
    _, _, x, y = digits_split()
    write_npz(out / "test.npz", x=x, y=y)
    egis("label", model_path, out / "labelled", "--data", out / "test.npz", "-o", out / "labels.csv")
    egis("label", model_path, out / "evaluation", "--data", out / "test.npz", "-o", out / "truth.csv",
         "--with-accuracy", "--cutoff-from", out / "labels.json")
    egis("synthesize", model_path, "-o", out / "sid", "--images", "512", "-q")
    egis("measure", model_path, out / "labelled", out / "sid", "-o", out / "responses", "-q")
    egis("compact", model_path, out / "sid", out / "responses", out / "labels.csv", "-k", args.k,
         "-o", out / "cid", "-q")
    verdicts = json.loads(egis("test", out / "cid" / "bundle", out / "evaluation", "--json", "-q"))
    truth = read_labels(out / "truth.csv")
    threshold = float(json.loads((out / "labels.json").read_text())["threshold"])
    by_id = {Path(v["chip"]).stem: v["passed"] for v in verdicts}
    passed = np.array([by_id[i] for i in truth.ids])
    metrics = test_metrics(passed, truth.accuracies, threshold)
    timings = json.loads((out / "responses" / "timings.json").read_text())
    print(json.dumps({"labelled_chips": args.chips, "evaluation_chips": len(truth.ids), "k": args.k,
                      "threshold": threshold, **{k: round(v, 2) for k, v in metrics.items()},
                      "unjudged": sum(v["pass_probability"] is None for v in verdicts),
                      "measure_seconds_per_chip": round(timings["mean_seconds_per_chip"], 4),
                      "images_measured": 512}, indent=2))


if __name__ == "__main__":
    main()
