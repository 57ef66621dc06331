"""The nominal model's class probabilities on a set of images, through onnxruntime (the
engine the tester uses), so labels and confidences are those of the chip path. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egis.toolkit.model import LoadedModel


def ends_in_softmax(model: LoadedModel) -> bool:
    producers = [n for n in model.proto.graph.node if model.output_name in n.output]
    return bool(producers) and producers[0].op_type in ("Softmax", "LogSoftmax")


@dataclass
class Predictions:
    probabilities: np.ndarray   # (N, M) float32
    pred: np.ndarray            # (N,) int64
    confidence: np.ndarray      # (N,) float32


def predict(model: LoadedModel, pixels: np.ndarray) -> Predictions:
    """Class probabilities of the nominal model on pixel-domain images, via onnxruntime:
    the same engine the tester uses, so labels and confidences are those of the chip path."""
    from egis.toolkit.engine import ChipSimulator  # noqa: PLC0415 - keep torch-free import graph small

    simulator = ChipSimulator(model, threads=2)
    out = simulator.logits(simulator.nominal_weights(), pixels).astype(np.float64)
    if ends_in_softmax(model):
        probs = out / out.sum(axis=1, keepdims=True)
    else:
        out -= out.max(axis=1, keepdims=True)
        probs = np.exp(out)
        probs /= probs.sum(axis=1, keepdims=True)
    return Predictions(probs.astype(np.float32), probs.argmax(axis=1).astype(np.int64),
                       probs.max(axis=1).astype(np.float32))

