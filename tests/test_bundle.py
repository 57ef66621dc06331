"""Test bundle: round trip, bit-exact stimulus, refusal of any changed byte, reproducible bytes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from egis.toolkit.bundle import (DETECTOR_FILE, FORMAT_VERSION, MANIFEST_FILE, SELF_HASH, STIMULUS_FILE,
                            canonical_json, load_bundle, parse_manifest,
                            write_bundle)
from egis.toolkit.errors import BundleError

K, M = 3, 4


from egis.toolkit.guard import SignatureGuard  # noqa: E402


def info(k: int = K) -> dict:
    return {"model": {"sha256": "ab" * 32, "input_name": "image", "output_name": "logits",
                      "num_classes": M, "input_shape": [None, 1, 8, 8], "layout": "NCHW"},
            "cutoff": {"cutoff": "A50", "threshold": 0.8125},
            "population": {"plugin": "generic", "params": {"sigma_tot": 0.3}, "seed": 0},
            "creation": {"seed": 7, "trials": 3},
            "guard": SignatureGuard.fit(np.random.default_rng(1).normal(size=(50, k * M)), m=M).to_dict()}


def detector_bytes() -> bytes:
    from planted import planted
    from test_compaction import FAST

    from egis.detector import build_detector

    logits, labels, _ = planted(d=120, n=20, m=M)
    return build_detector(logits, labels, [0, 1, 2], FAST)[1]


@pytest.fixture(scope="module")
def parts():
    rng = np.random.default_rng(0)
    pixels = rng.random((K, 1, 8, 8), dtype=np.float32)
    pixels[0, 0, 0, 0] = np.float32(1 / 3)            # not representable in decimal: bit exactness
    inputs = ((pixels - 0.5) / 0.25).astype(np.float32)
    return inputs, pixels, detector_bytes()


@pytest.fixture()
def bundle_dir(tmp_path, parts):
    inputs, pixels, det = parts
    return write_bundle(tmp_path / "bundle", inputs, det, info(), pixels)


def test_round_trip_is_bit_exact(bundle_dir, parts):
    inputs, pixels, det = parts
    bundle = load_bundle(bundle_dir)
    assert sorted(p.name for p in bundle_dir.iterdir()) == [DETECTOR_FILE, MANIFEST_FILE, STIMULUS_FILE]
    got_inputs, got_pixels = bundle.stimulus_arrays()
    assert got_inputs.tobytes() == inputs.tobytes() and got_pixels.tobytes() == pixels.tobytes()
    assert bundle.detector_onnx == det
    m = bundle.manifest
    assert (m["k"], m["m"], m["format_version"]) == (K, M, FORMAT_VERSION)
    assert m["signature"]["length"] == K * M and m["signature"]["layout"] == "image-major"
    assert m["model"]["input_name"] == "image" and m["cutoff"]["threshold"] == 0.8125
    assert set(m["files"]) == {STIMULUS_FILE, DETECTOR_FILE}
    import onnx

    stim = onnx.load_from_string(bundle.stimulus_onnx)
    assert len(stim.graph.input) == 0 and [o.name for o in stim.graph.output] == ["images", "pixels"]


def _flip(path, position, mask=0x01):
    data = bytearray(path.read_bytes())
    data[position] ^= mask
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", [STIMULUS_FILE, DETECTOR_FILE])
def test_any_flipped_byte_of_an_onnx_file_is_refused(bundle_dir, name):
    path = bundle_dir / name
    size = path.stat().st_size
    positions = sorted({0, size // 2, size - 1, *np.random.default_rng(1).integers(0, size, 20).tolist()})
    for position in positions:
        _flip(path, position)
        with pytest.raises(BundleError, match=f"{name} of bundle .* damaged or was modified"):
            load_bundle(bundle_dir)
        _flip(path, position)
    load_bundle(bundle_dir)


def test_every_flipped_byte_of_the_manifest_is_refused(bundle_dir):
    path = bundle_dir / MANIFEST_FILE
    original = path.read_bytes()
    assert parse_manifest(original)[SELF_HASH]
    for position in range(len(original)):                 # every byte, in memory
        masks = [0x01, 0x2A] if original[position] == 0x20 else [0x01]   # ' ' -> '!' and ' ' -> '\n'
        for mask in masks:
            data = bytearray(original)
            data[position] ^= mask
            with pytest.raises(BundleError, match="manifest.json"):
                parse_manifest(bytes(data))
    for position in (0, 10, len(original) // 2, len(original) - 1):   # and through the files
        _flip(path, position)
        with pytest.raises(BundleError, match="manifest.json of bundle"):
            load_bundle(bundle_dir)
        path.write_bytes(original)
    load_bundle(bundle_dir)


def test_missing_file_is_named(bundle_dir):
    for name in (STIMULUS_FILE, DETECTOR_FILE, MANIFEST_FILE):
        data = (bundle_dir / name).read_bytes()
        (bundle_dir / name).unlink()
        with pytest.raises(BundleError, match=f"incomplete: {name} is missing"):
            load_bundle(bundle_dir)
        (bundle_dir / name).write_bytes(data)
    with pytest.raises(BundleError, match="not found"):
        load_bundle(bundle_dir / "nope")


def test_other_format_version_is_refused(bundle_dir):
    path = bundle_dir / MANIFEST_FILE
    manifest = json.loads(path.read_bytes())
    manifest["format_version"] = FORMAT_VERSION + 1
    body = {k: v for k, v in manifest.items() if k != SELF_HASH}
    import hashlib

    manifest[SELF_HASH] = hashlib.sha256(canonical_json(body)).hexdigest()
    path.write_bytes(canonical_json(manifest))
    with pytest.raises(BundleError, match=f"format version {FORMAT_VERSION + 1}"):
        load_bundle(bundle_dir)


def test_same_inputs_give_same_bytes_and_rewrite_is_atomic(tmp_path, parts):
    inputs, pixels, _ = parts
    a = write_bundle(tmp_path / "a", inputs, detector_bytes(), info(), pixels)
    b = write_bundle(tmp_path / "b", inputs, detector_bytes(), info(), pixels)
    for name in (STIMULUS_FILE, DETECTOR_FILE, MANIFEST_FILE):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    write_bundle(a, inputs[:2], detector_bytes(), info(2), pixels[:2])   # replace an existing bundle
    assert load_bundle(a).k == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]      # no staging leftovers
