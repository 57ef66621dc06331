"""The test bundle: everything a test floor needs to judge chips, and nothing it has to trust.

A bundle is a directory of three files:

* ``stimulus.onnx`` -- a model with NO inputs whose outputs are the K test images as
  Constants: ``images`` is the exact float32 tensor fed to a chip's input (already through
  the model's input contract), ``pixels`` the same images in the pixel domain (for people and
  for hardware adapters that take pixels). Constants are stored as raw tensor bytes, so what
  the tester feeds is bit-identical to what compaction scored.
* ``detector.onnx`` -- the pass/fail classifier: input ``signature`` (1, K*M) float32, the
  chip's logits on the K images stacked image-major; outputs ``label`` (1 = pass) and
  ``probabilities`` (column 1 = P(pass)).
* ``manifest.json`` -- what the bundle is for (customer model sha256 and I/O names, shapes,
  layout, input contract, K, M, signature layout, cutoff, the labelled population's plugin
  and parameters, tool version, creation settings) and the sha256 of the other files.

Integrity: every listed file's sha256 is checked on load. The manifest carries
``manifest_sha256``, the hash of its own canonical JSON without that field, AND must be byte
for byte in canonical form (sorted keys, indent 2, ASCII, trailing newline). Together this
catches any changed byte of manifest.json: a change in content breaks the self-hash, a
change in formatting (e.g. one whitespace byte turned into another) breaks canonicality.

No timestamps are written, so the same inputs always give the same bundle bytes.

Tester path: imports only onnx, onnxruntime, numpy and the standard library.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from egis.toolkit.errors import BundleError
from egis.toolkit.io import atomic_directory

FORMAT_VERSION = 2   # 2: every bundle carries a signature guard (egis.toolkit.guard)
STIMULUS_FILE = "stimulus.onnx"
DETECTOR_FILE = "detector.onnx"
MANIFEST_FILE = "manifest.json"
STIMULUS_INPUTS = "images"    # model-input tensor, fed to chips as is
STIMULUS_PIXELS = "pixels"    # pixel-domain images
DETECTOR_INPUT = "signature"
DETECTOR_LABEL = "label"
DETECTOR_PROBA = "probabilities"
DETECTOR_PASS_COLUMN = 1     # column of P(pass) in the probabilities output
DETECTOR_PASS_LABEL = 1
SELF_HASH = "manifest_sha256"
STIMULUS_OPSET = 13
STIMULUS_IR_VERSION = 8


def canonical_json(data: Any) -> bytes:
    """The one byte form of a manifest (also what its self-hash is computed over)."""
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False)
            + "\n").encode("ascii")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stimulus_model(inputs: np.ndarray, pixels: np.ndarray) -> bytes:
    """Serialized input-less ONNX model whose two outputs are the given arrays, bit exact."""
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    if len(inputs) != len(pixels):
        raise BundleError(f"stimulus has {len(inputs)} input tensors but {len(pixels)} pixel images")
    nodes, outputs = [], []
    for name, array in ((STIMULUS_INPUTS, inputs), (STIMULUS_PIXELS, pixels)):
        nodes.append(helper.make_node("Constant", [], [name], name=f"{name}_constant",
                                      value=numpy_helper.from_array(array, f"{name}_value")))
        outputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(array.shape)))
    graph = helper.make_graph(nodes, "egis_stimulus", [], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", STIMULUS_OPSET)],
                              producer_name="egis-toolkit")
    model.ir_version = STIMULUS_IR_VERSION
    model.doc_string = "egis test stimulus: K images (model-input tensor and pixel domain)"
    return model.SerializeToString()


@dataclass
class Bundle:
    """A verified bundle: its manifest and the bytes of its ONNX files."""

    directory: Path
    manifest: dict[str, Any]
    stimulus_onnx: bytes
    detector_onnx: bytes

    @property
    def k(self) -> int:
        return int(self.manifest["k"])

    @property
    def m(self) -> int:
        return int(self.manifest["m"])

    @property
    def model(self) -> dict[str, Any]:
        """Customer model facts: sha256, input_name, output_name, input_shape, ..."""
        return self.manifest["model"]

    def stimulus_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(model-input tensor, pixel-domain images) of the K test images, via onnxruntime."""
        import onnxruntime as ort

        from egis.toolkit.runtime import session_options

        session = ort.InferenceSession(self.stimulus_onnx, session_options(1),
                                       providers=["CPUExecutionProvider"])
        inputs, pixels = session.run([STIMULUS_INPUTS, STIMULUS_PIXELS], {})
        return np.asarray(inputs, np.float32), np.asarray(pixels, np.float32)


def build_manifest(k: int, m: int, stimulus: bytes, detector: bytes, info: dict[str, Any],
                   stimulus_shape: tuple[int, ...], pixel_shape: tuple[int, ...]) -> dict[str, Any]:
    """Manifest content: ``info`` (model, cutoff, population, tool, creation...) plus the
    fixed bundle facts and file hashes, and finally the self-hash."""
    reserved = {"format_version", "k", "m", "files", "stimulus", "detector", "signature", SELF_HASH,
                "pass_threshold"}
    clash = sorted(reserved & set(info))
    if clash:
        raise BundleError(f"manifest info may not set {', '.join(clash)}")
    manifest = dict(info)
    manifest.update({
        "format_version": FORMAT_VERSION,
        "k": int(k), "m": int(m),
        "stimulus": {"file": STIMULUS_FILE, "inputs_output": STIMULUS_INPUTS,
                     "pixels_output": STIMULUS_PIXELS, "inputs_shape": list(stimulus_shape),
                     "pixels_shape": list(pixel_shape), "dtype": "float32",
                     "note": "'images' is fed to the chip input as is (input contract applied); "
                             "'pixels' is the pixel domain"},
        "signature": {"length": int(k * m), "layout": "image-major",
                      "definition": "signature[k*M:(k+1)*M] = chip logits on stimulus image k"},
        "detector": {"file": DETECTOR_FILE, "input": DETECTOR_INPUT, "label_output": DETECTOR_LABEL,
                     "probability_output": DETECTOR_PROBA, "pass_label": DETECTOR_PASS_LABEL,
                     "pass_column": DETECTOR_PASS_COLUMN,
                     **({"pass_threshold": info["escape_budget"]["threshold"]} if "escape_budget" in info else {})},
        "files": {STIMULUS_FILE: _sha256(stimulus), DETECTOR_FILE: _sha256(detector)},
    })
    validate_manifest(manifest, "bundle info")   # never write a bundle a tester would refuse
    manifest[SELF_HASH] = _sha256(canonical_json(manifest))
    return manifest


def write_bundle(directory: str | os.PathLike, stimulus_inputs: np.ndarray, detector_onnx: bytes,
                 info: dict[str, Any], stimulus_pixels: np.ndarray | None = None,
                 sign_key: str | os.PathLike | None = None) -> Path:
    """Write a bundle atomically (:func:`atomic_directory`): nothing appears at ``directory``
    until all three files are complete. ``info`` must hold ``model`` (with
    ``num_classes``); it becomes part of the manifest."""
    target = Path(directory)
    inputs = np.ascontiguousarray(stimulus_inputs, dtype=np.float32)
    pixels = inputs if stimulus_pixels is None else np.ascontiguousarray(stimulus_pixels, np.float32)
    try:
        m = int(info["model"]["num_classes"])
    except (KeyError, TypeError, ValueError):
        raise BundleError("bundle info must include model.num_classes") from None
    stimulus = stimulus_model(inputs, pixels)
    manifest = build_manifest(len(inputs), m, stimulus, detector_onnx, info,
                              tuple(inputs.shape), tuple(pixels.shape))
    with atomic_directory(target) as staging:
        (staging / STIMULUS_FILE).write_bytes(stimulus)
        (staging / DETECTOR_FILE).write_bytes(detector_onnx)
        (staging / MANIFEST_FILE).write_bytes(canonical_json(manifest))
        if sign_key is not None:
            from egis.toolkit.signing import write_signature

            write_signature(staging, canonical_json(manifest), sign_key)
    return target


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"bundle {path.parent} is incomplete: {MANIFEST_FILE} is missing") from None
    return parse_manifest(raw, f"{MANIFEST_FILE} of bundle {path.parent}")


def parse_manifest(raw: bytes, where: str = MANIFEST_FILE) -> dict[str, Any]:
    """Verify manifest bytes (self-hash, canonical form, format version) and parse them."""
    try:
        manifest = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise BundleError(f"{where} is damaged (not valid JSON)") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get(SELF_HASH), str):
        raise BundleError(f"{where} is not an egis manifest (no {SELF_HASH})")
    body = {key: value for key, value in manifest.items() if key != SELF_HASH}
    version = manifest.get("format_version")
    if _sha256(canonical_json(body)) != manifest[SELF_HASH]:
        if version != FORMAT_VERSION:
            raise BundleError(f"{where} is damaged or has an unsupported format version "
                              f"({version!r}; this egis reads {FORMAT_VERSION})")
        raise BundleError(f"{where} was modified: its content does not match its {SELF_HASH}")
    if version != FORMAT_VERSION:
        hint = (" (version 1 bundles carry no signature guard, so a tester cannot tell an unknown chip; "
                "rebuild it with egis compact)" if version == 1 else "")
        raise BundleError(f"{where} has format version {version!r}; this egis reads version "
                          f"{FORMAT_VERSION}{hint}")
    if raw != canonical_json(manifest):
        raise BundleError(f"{where} was modified: its bytes are not in the canonical form "
                          "they were written in")
    validate_manifest(manifest, where)
    return manifest


_HEX = set("0123456789abcdef")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_sha(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def validate_manifest(manifest: dict[str, Any], where: str = MANIFEST_FILE) -> None:
    """Every field the tester reads, present and of the right type, before anything uses it.

    A re-hashed manifest passes the self-hash; this check is what keeps a missing or mistyped
    field from surfacing as a KeyError deep in the tester. BundleError names the field."""
    from egis.toolkit.guard import SignatureGuard

    def need(path: str, ok: Any, what: str) -> None:
        if not ok:
            raise BundleError(f"{where}: field '{path}' is missing or not {what}")

    def get(path: str) -> Any:
        node: Any = manifest
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    need("k", _is_int(get("k")) and get("k") >= 1, "a positive integer")
    need("m", _is_int(get("m")) and get("m") >= 2, "an integer >= 2")
    k, m = get("k"), get("m")
    need("model", isinstance(get("model"), dict), "an object")
    need("model.sha256", _is_sha(get("model.sha256")), "a sha256 hex digest")
    for name in ("model.input_name", "model.output_name"):
        need(name, isinstance(get(name), str) and get(name), "a non-empty string")
    need("model.num_classes", get("model.num_classes") == m, f"equal to m ({m})")
    need("model.fixed_batch", get("model.fixed_batch") is None or (_is_int(get("model.fixed_batch"))
                                                                    and get("model.fixed_batch") >= 1),
         "null or a positive integer")
    for name in ("stimulus.inputs_shape", "stimulus.pixels_shape"):
        shape = get(name)
        need(name, isinstance(shape, list) and len(shape) >= 2 and all(_is_int(d) and d >= 1 for d in shape)
             and shape[0] == k, f"a list of positive integers starting with K ({k})")
    for name in ("stimulus.inputs_output", "stimulus.pixels_output", "detector.input",
                 "detector.label_output", "detector.probability_output"):
        need(name, isinstance(get(name), str) and get(name), "a non-empty string")
    need("detector.pass_label", get("detector.pass_label") in (0, 1) and _is_int(get("detector.pass_label")),
         "0 or 1")
    need("detector.pass_column", get("detector.pass_column") in (0, 1) and _is_int(get("detector.pass_column")),
         "0 or 1")
    need("signature.length", get("signature.length") == k * m, f"K*M ({k * m})")
    budget = get("escape_budget")
    need("escape_budget", budget is None or (isinstance(budget, dict) and all(
        isinstance(budget.get(key), (int, float)) and not isinstance(budget.get(key), bool)
        for key in ("max_escape", "threshold", "validation_escape", "validation_yield_loss"))),
         "null or an object of numbers")
    level = budget.get("confidence") if isinstance(budget, dict) else None
    need("escape_budget.confidence", level is None or (isinstance(level, (int, float)) and not isinstance(level, bool)
                                                       and 0.0 < level < 1.0), "null or a number in (0, 1)")
    t = get("detector.pass_threshold")
    need("detector.pass_threshold", t is None or (isinstance(t, (int, float)) and not isinstance(t, bool)
                                                  and 0.0 <= t <= 1.0 + 1e-12), "null or a number in 0..1")
    files = get("files")
    need("files", isinstance(files, dict) and all(isinstance(n, str) and _is_sha(d) for n, d in files.items()),
         "an object of file name -> sha256")
    threshold = get("cutoff.threshold")
    need("cutoff.threshold", threshold is None or (isinstance(threshold, (int, float))
                                                   and not isinstance(threshold, bool)), "a number")
    try:
        SignatureGuard.from_dict(get("guard"), k * m)
    except ValueError as exc:
        raise BundleError(f"{where}: {exc}") from None


def _read_listed(directory: Path, name: str, expected: str) -> bytes:
    try:
        data = (directory / name).read_bytes()
    except FileNotFoundError:
        raise BundleError(f"bundle {directory} is incomplete: {name} is missing") from None
    if _sha256(data) != expected:
        raise BundleError(f"{name} of bundle {directory} is damaged or was modified "
                          f"(sha256 does not match the manifest)")
    return data


def load_bundle(directory: str | os.PathLike, trust: str | os.PathLike | None = None) -> Bundle:
    """Read and verify a bundle; any missing, changed or inconsistent file -> BundleError.

    ``trust``: a public key (PEM); the bundle must then carry a valid signature by it
    (egis.toolkit.signing), checked before anything else is read."""
    path = Path(directory)
    if not path.is_dir():
        raise BundleError(f"bundle directory not found: {path}")
    if trust is not None:
        from egis.toolkit.signing import verify

        try:
            raw = (path / MANIFEST_FILE).read_bytes()
        except FileNotFoundError:
            raise BundleError(f"bundle {path} is incomplete: {MANIFEST_FILE} is missing") from None
        verify(path, raw, trust, what="bundle")
    manifest = _read_manifest(path / MANIFEST_FILE)
    files = manifest.get("files")
    if not isinstance(files, dict) or not {STIMULUS_FILE, DETECTOR_FILE} <= set(files):
        raise BundleError(f"{MANIFEST_FILE} of bundle {path} does not list {STIMULUS_FILE} and {DETECTOR_FILE}")
    if any(Path(str(name)).name != name or str(name).startswith(".") for name in files):
        raise BundleError(f"{MANIFEST_FILE} of bundle {path} lists a file outside the bundle directory")
    data = {name: _read_listed(path, name, str(digest)) for name, digest in sorted(files.items())}
    for key in ("k", "m", "model"):
        if key not in manifest:
            raise BundleError(f"{MANIFEST_FILE} of bundle {path} has no '{key}'")
    return Bundle(directory=path, manifest=manifest, stimulus_onnx=data[STIMULUS_FILE],
                  detector_onnx=data[DETECTOR_FILE])
