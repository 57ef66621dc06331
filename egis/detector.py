"""The pass/fail detector shipped in the test bundle: gradient boosting on K*M signatures.

Trained once, after compaction, on the chosen images' signatures of ALL D labelled chips,
with the same ``BoosterConfig`` the annealing used to score image sets -- so the reward that
picked the images is a validation estimate for exactly this kind of classifier.

Exported with skl2onnx so the tester needs no scikit-learn: float32 input ``signature``
(batch, K*M); outputs ``label`` (int64, 1 = pass) and ``probabilities`` (float32 (batch, 2),
column 1 = P(pass)) as plain tensors (zipmap off). :func:`verify_onnx` checks the ONNX
graph against scikit-learn before anything is written.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from egis.compaction import BoosterConfig, one_native_thread
from egis.toolkit.bundle import DETECTOR_INPUT, DETECTOR_LABEL, DETECTOR_PASS_COLUMN, DETECTOR_PROBA
from egis.toolkit.errors import DataError
from egis.toolkit.signatures import signatures

# the detector's I/O is part of the bundle contract, defined once in the core (egis.toolkit.bundle)
INPUT_NAME, LABEL_OUTPUT, PROBA_OUTPUT = DETECTOR_INPUT, DETECTOR_LABEL, DETECTOR_PROBA
PASS_COLUMN = DETECTOR_PASS_COLUMN
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
PROBA_TOLERANCE = 1e-5


def train_detector(logits: np.ndarray, labels: Sequence[int] | np.ndarray, indices: Sequence[int],
                   config: BoosterConfig | None = None) -> Any:
    """Fit the detector on ``signatures(logits, indices)`` of every chip (labels: 1 = pass)."""
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if set(np.unique(y)) != {0, 1}:
        raise DataError("the detector needs labels with both classes 0 (fail) and 1 (pass)")
    x = signatures(logits, indices)
    model = (config or BoosterConfig()).make()
    with one_native_thread():
        model.fit(x, y)
    return model


def export_onnx(model: Any, length: int) -> bytes:
    """Serialized ONNX of a fitted classifier taking a float32 ``signature`` of ``length`` values."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    with warnings.catch_warnings():
        # skl2onnx 1.20 passes bools where protobuf 6 wants ints (HGB export); harmless here
        warnings.filterwarnings("ignore", message=".*Expected an int, got a boolean.*")
        onx = to_onnx(model, initial_types=[(INPUT_NAME, FloatTensorType([None, length]))],
                      options={id(model): {"zipmap": False}}, target_opset=TARGET_OPSET)
    names = [out.name for out in onx.graph.output]
    if names != [LABEL_OUTPUT, PROBA_OUTPUT]:
        raise DataError(f"unexpected detector outputs {names}")
    from sklearn.ensemble import HistGradientBoostingClassifier

    _label_from_probabilities(onx.graph, ties_pass=not isinstance(model, HistGradientBoostingClassifier))
    onx.doc_string = "egis pass/fail detector: input signature (K*M logits, image-major)"
    return onx.SerializeToString()


def _label_from_probabilities(graph: Any, ties_pass: bool) -> None:
    """Make ``label`` follow ``probabilities`` as scikit-learn's ``predict`` does, in place.

    Why: onnxruntime's TreeEnsembleClassifier derives its own label and, for a booster whose
    trees are single leaves (too few labelled chips to split: e.g. 24 chips, 14 passing),
    labels every chip 0 although its P(pass) is 0.58 in both runtimes. One rule for label and
    probability keeps the bundle's verdict the one its probability states. The tie rule is
    the estimator's: HistGradientBoostingClassifier predicts the argmax of its probabilities
    (a tie fails), GradientBoostingClassifier passes when its raw score is >= 0, i.e. P(pass)
    >= 0.5 (``ties_pass``)."""
    from onnx import TensorProto, helper

    producer = next(node for node in graph.node if LABEL_OUTPUT in node.output)
    slot = list(producer.output).index(LABEL_OUTPUT)
    producer.output[slot] = f"{LABEL_OUTPUT}_trees"          # left unused
    if not ties_pass:
        graph.node.append(helper.make_node("ArgMax", [PROBA_OUTPUT], [LABEL_OUTPUT], axis=1, keepdims=0,
                                           name="label_from_probabilities"))
        return
    graph.initializer.extend([helper.make_tensor("label_pass_column", TensorProto.INT64, [1], [PASS_COLUMN]),
                              helper.make_tensor("label_half", TensorProto.FLOAT, [], [0.5])])
    graph.node.extend([
        helper.make_node("Gather", [PROBA_OUTPUT, "label_pass_column"], ["label_p_pass"], axis=1),
        helper.make_node("Squeeze", ["label_p_pass", "label_pass_column"], ["label_p_pass_flat"]),
        helper.make_node("GreaterOrEqual", ["label_p_pass_flat", "label_half"], ["label_passes"]),
        helper.make_node("Cast", ["label_passes"], [LABEL_OUTPUT], to=TensorProto.INT64,
                         name="label_from_probabilities")])


def onnx_predict(onnx_bytes: bytes, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, pass probabilities) of the exported detector on signatures ``x``."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    label, proba = session.run([LABEL_OUTPUT, PROBA_OUTPUT],
                               {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})
    return np.asarray(label).reshape(-1), np.asarray(proba)[:, PASS_COLUMN]


def verify_onnx(onnx_bytes: bytes, model: Any, x: np.ndarray) -> float:
    """Check ONNX == scikit-learn on ``x``; returns the largest probability difference.

    Labels must agree except where sklearn's P(pass) is within the float32 tolerance of 0.5
    (a tie the two runtimes may break differently); probabilities within 1e-5.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    labels, p_onnx = onnx_predict(onnx_bytes, x)
    p_skl = model.predict_proba(x)[:, PASS_COLUMN]
    l_skl = model.predict(x)
    diff = float(np.max(np.abs(p_onnx - p_skl))) if len(x) else 0.0
    if diff > PROBA_TOLERANCE:
        raise DataError(f"exported detector disagrees with scikit-learn: probability differs by {diff:.2e}")
    mismatch = (labels != l_skl) & (np.abs(p_skl - 0.5) > PROBA_TOLERANCE)
    if mismatch.any():
        raise DataError(f"exported detector disagrees with scikit-learn on {int(mismatch.sum())} chips")
    return diff


def build_detector(logits: np.ndarray, labels: Sequence[int] | np.ndarray, indices: Sequence[int],
                   config: BoosterConfig | None = None) -> tuple[Any, bytes]:
    """Train, export and verify: returns (sklearn model, ONNX bytes)."""
    model = train_detector(logits, labels, indices, config)
    m = logits.shape[2]
    onnx_bytes = export_onnx(model, len(indices) * m)
    verify_onnx(onnx_bytes, model, signatures(logits, indices))
    return model, onnx_bytes
