"""Per-image softmax entropy of a reference model on real CIFAR-10 test images.

Why: synthesis asks for H_c <= 0.1 log M on its images; this shows how confident the model is on
real data, i.e. whether that target is within the model's reach at all (label smoothing is not).

    python scripts/real_entropy.py cifar10_vgg16 [--images 2000]
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import onnxruntime as ort

from egis.models.cifar10_data import load_cifar10
from egis.models.registry import reference_model_path


def entropies(model_path: str, pixels: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    logits = np.concatenate([sess.run(None, {"input": pixels[i:i + 500]})[0]
                             for i in range(0, len(pixels), 500)])
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return -(p * np.log(np.clip(p, 1e-30, None))).sum(axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=["cifar10_vgg16", "cifar10_mobilenet"])
    ap.add_argument("--images", type=int, default=2000)
    args = ap.parse_args()
    x = load_cifar10()["x_test"][:args.images]
    pixels = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
    h = entropies(str(reference_model_path(args.name)), pixels)
    log_m = math.log(10)
    print(json.dumps({"model": args.name, "images": len(h), "mean": round(float(h.mean()), 4),
                      "min": round(float(h.min()), 4), "median": round(float(np.median(h)), 4),
                      "share_below_0.1_logM": round(float((h <= 0.1 * log_m).mean()), 4)}))


if __name__ == "__main__":
    main()
