"""Signature layout (image-major K x M) and the memory-mapped, sidecar-checked cache."""

from __future__ import annotations

import numpy as np
import pytest

import egis.toolkit.engine as engine
from egis.toolkit.model import load_model
from egis.toolkit.population import Population, PopulationSpec
from egis.toolkit.signatures import (SIDECAR_NAME, cache_bytes, compute_signatures, signature,
                                signature_from_logits, signatures)

FAST = {"preset": "extreme", "sigma_tot": 0.2}   # no correlated field: ~0.2 ms per chip


def test_signature_layout_is_image_major():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 9, 3)).astype(np.float32)
    s = [7, 2, 4]
    sig = signatures(logits, s)
    assert sig.shape == (5, 9) and sig.dtype == np.float32
    for d in range(5):
        expected = np.concatenate([logits[d, 7], logits[d, 2], logits[d, 4]])
        assert np.array_equal(sig[d], expected)
        assert np.array_equal(signature(logits, d, s), expected)
    # what the tester builds from a chip's (K, M) answers is the same vector
    assert np.array_equal(signature_from_logits(logits[3, s])[0], sig[3])
    assert sig[1, 3:6].tolist() == logits[1, 2].tolist()   # slot k=1 holds image S[1]


def test_bad_indices_are_refused():
    from egis.toolkit.errors import DataError

    logits = np.zeros((2, 4, 3), np.float32)
    with pytest.raises(DataError):
        signatures(logits, [4])
    with pytest.raises(DataError):
        signatures(logits, [])


def test_cache_size_formula():
    assert cache_bytes(1000, 2048, 10) == 81_920_000
    assert cache_bytes(1000, 2048, 100) == 819_200_000


@pytest.fixture(scope="module")
def population(digits_cnn_path):
    model = load_model(digits_cnn_path)
    return Population(PopulationSpec(model.sha256, "generic", FAST, seed=5, count=12), model)


def test_cache_matches_engine_and_is_reused_only_when_everything_matches(tmp_path, population, monkeypatch):
    images = np.random.default_rng(1).random((10, 1, 8, 8), dtype=np.float32)
    chips = [0, 3, 5, 11]
    direct = engine.population_logits(population, images, chips, progress=False)
    cached = compute_signatures(population, images, chips, cache_dir=tmp_path, progress=False)
    assert isinstance(cached, np.memmap) and cached.shape == (4, 10, 10)
    assert np.array_equal(np.asarray(cached), direct)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signatures.json", "signatures.npy"]

    calls = []
    real = engine.population_logits

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "population_logits", counting)
    again = compute_signatures(population, images, chips, cache_dir=tmp_path, progress=False)
    assert calls == [] and np.array_equal(np.asarray(again), direct)

    other_images = images.copy()
    other_images[0, 0, 0, 0] += 0.5
    compute_signatures(population, other_images, chips, cache_dir=tmp_path, progress=False)
    assert len(calls) == 1
    compute_signatures(population, other_images, chips[:3], cache_dir=tmp_path, progress=False)
    assert len(calls) == 2
    (tmp_path / SIDECAR_NAME).write_text("{}")   # damaged sidecar -> recompute
    out = compute_signatures(population, other_images, chips[:3], cache_dir=tmp_path, progress=False)
    assert len(calls) == 3 and out.shape == (3, 10, 10)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
