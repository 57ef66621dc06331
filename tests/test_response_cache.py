"""The response cache: one file per (population, chips, stimulus set), several filled in one
simulation pass, and a folder shared between evaluations simulating only the sets they add."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from egis.toolkit.errors import DataError
from egis.toolkit.responses import ResponseCache, write_together


def _caches(folder: Path, widths=(2, 5), chips: int = 3) -> list[ResponseCache]:
    return [ResponseCache(folder / f"set{i}", {"set": i}, (chips, width, 4)) for i, width in enumerate(widths)]


def test_write_together_publishes_each_cache_its_own_columns(tmp_path: Path) -> None:
    caches = _caches(tmp_path)

    def fill(out: np.ndarray) -> str:
        out[...] = np.arange(out.size, dtype=np.float32).reshape(out.shape)
        return "filled"

    assert write_together(caches, fill) == "filled"
    whole = np.arange(3 * 7 * 4, dtype=np.float32).reshape(3, 7, 4)
    np.testing.assert_array_equal(caches[0].open(), whole[:, :2])
    np.testing.assert_array_equal(caches[1].open(), whole[:, 2:])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set0.json", "set0.npy", "set1.json", "set1.npy"]


def test_write_together_leaves_nothing_after_an_interruption(tmp_path: Path) -> None:
    caches = _caches(tmp_path)

    def interrupted(out: np.ndarray) -> None:
        out[...] = 1.0
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_together(caches, interrupted)
    assert not list(tmp_path.iterdir())
    assert all(cache.open() is None for cache in caches)


def test_write_together_refuses_caches_of_other_chips(tmp_path: Path) -> None:
    mixed = _caches(tmp_path / "a", chips=3)[:1] + _caches(tmp_path / "b", chips=4)[1:]
    with pytest.raises(ValueError, match="same chips"):
        write_together(mixed, lambda out: None)


@pytest.fixture()
def population(tmp_path: Path):
    """Five chips of the shipped digits model, labelled with their accuracies."""
    from egis.models.digits.train import split
    from egis.models.registry import reference_model_path
    from egis.toolkit.labels import chip_accuracies, write_labels
    from egis.toolkit.model import load_model
    from egis.toolkit.population import Population, PopulationSpec

    model = load_model(reference_model_path("digits"))
    spec = PopulationSpec(model.sha256, "generic", {"sigma_tot": 0.3, "preset": "typical"}, 1, 5)
    pop = tmp_path / "pops" / "labelled.json"
    pop.parent.mkdir()
    spec.save(pop)
    x, y = split()[2:]
    accuracy = chip_accuracies(Population(spec, model), x[:40], y[:40], progress=False)
    labels = pop.parent / "labelled_accuracy.csv"
    write_labels(labels, range(5), accuracy >= np.median(accuracy), accuracy)
    return model, pop, labels


def _images(seed: int, count: int) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 1, 8, 8), dtype=np.float32)


def test_a_shared_cache_simulates_only_the_sets_an_evaluation_adds(population, tmp_path, monkeypatch) -> None:
    import egis.responses as responses

    model, pop, labels = population
    a, b, c = _images(0, 6), _images(1, 4), _images(2, 5)
    cache = tmp_path / "shared"
    first = responses.chip_responses(model, pop, labels, {"a": a, "b": b}, cache, progress=False)
    passes: list[int] = []
    simulate = responses.population_logits

    def counted(population, images, **kwargs):
        passes.append(len(images))
        return simulate(population, images, **kwargs)

    monkeypatch.setattr(responses, "population_logits", counted)
    second = responses.chip_responses(model, pop, labels, {"a": a, "c": c}, cache, progress=False)
    assert passes == [len(c)]
    np.testing.assert_array_equal(second.logits["a"], first.logits["a"])
    alone = responses.chip_responses(model, pop, labels, {"c": c}, tmp_path / "alone", progress=False)
    np.testing.assert_allclose(second.logits["c"], alone.logits["c"], rtol=1e-5, atol=1e-5)
    assert sorted(responses.cached_responses(cache, pop).logits) == ["a", "b", "c"]
    # other images under a known name are a cache of their own: a reader that cannot tell which
    # one it was asked for refuses instead of guessing, and one given the images' hashes reads it
    from egis.toolkit.signatures import images_sha256

    responses.chip_responses(model, pop, labels, {"a": a[:3]}, cache, progress=False)
    with pytest.raises(DataError, match="more than one response cache of the a stimuli"):
        responses.cached_responses(cache, pop)
    picked = responses.cached_responses(cache, pop, images={"a": images_sha256(a[:3])})
    assert sorted(picked.logits) == ["a"]
    np.testing.assert_array_equal(picked.logits["a"], first.logits["a"][:, :3])


def test_concurrent_evaluations_sharing_a_folder_simulate_a_set_once(population, tmp_path, monkeypatch) -> None:
    """Two evaluations of the same chips start at once on one shared folder: the folder's lock
    lets one simulate and the other read what it published."""
    import threading
    import time

    import egis.responses as responses

    model, pop, labels = population
    images = {"a": _images(0, 6)}
    passes: list[int] = []
    simulate = responses.population_logits

    def slow(population, batch, **kwargs):
        passes.append(len(batch))
        time.sleep(0.5)   # both would find the set missing, were the check not under the lock
        return simulate(population, batch, **kwargs)

    monkeypatch.setattr(responses, "population_logits", slow)
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(responses.chip_responses(
        model, pop, labels, images, tmp_path / "shared", progress=False).logits["a"])) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert passes == [6] and len(results) == 2
    np.testing.assert_array_equal(results[0], results[1])


def test_a_complete_cached_set_is_read_whole_and_the_rest_measured_on_the_wanted_images(population, tmp_path) -> None:
    from egis.responses import cached_responses, chip_responses, chip_responses_on

    model, pop, labels = population
    stimuli = {"a": _images(0, 6), "b": _images(1, 4)}
    full = chip_responses(model, pop, labels, stimuli, tmp_path / "full", progress=False)
    cache = tmp_path / "cache"
    chip_responses(model, pop, labels, {"a": stimuli["a"]}, cache, progress=False)
    some, measured = chip_responses_on(model, pop, labels, stimuli, {"a": [1, 3], "b": [2, 0]}, cache,
                                       progress=False)
    assert measured == 2 and set(some.columns) == {"b"}
    for name, indices in (("a", [3, 1]), ("b", [0, 2])):
        np.testing.assert_allclose(some.signatures(name, indices), full.signatures(name, indices),
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(DataError, match="image 1 of the b stimuli was not measured"):
        some.signatures("b", [1])
    # a later evaluation sharing the folder that wants some of those images (a budget run at
    # fewer K) reads the cached subset; one that wants another image simulates its own
    fewer, measured = chip_responses_on(model, pop, labels, stimuli, {"b": [2]}, cache, progress=False)
    assert measured == 0 and list(fewer.columns["b"]) == [0, 2]
    np.testing.assert_allclose(fewer.signatures("b", [2]), full.signatures("b", [2]), rtol=1e-5, atol=1e-5)
    other, measured = chip_responses_on(model, pop, labels, stimuli, {"b": [1, 2]}, cache, progress=False)
    assert measured == 2 and list(other.columns["b"]) == [1, 2]
    # a reader finds the subset that covers what it is asked for, the smallest first
    read = cached_responses(cache, pop, wanted={"b": [2]})
    assert list(read.columns["b"]) == [0, 2] or list(read.columns["b"]) == [1, 2]
    assert "b" not in cached_responses(cache, pop, wanted={"b": [3]}).logits
    # the widest cached subset of a set (bench/bench_distil.py); the complete "a" is its own widest
    from egis.responses import widest_cached

    held, arr = widest_cached(cache, pop, "b")
    assert len(held) == 2 and arr.shape == (5, 2, 10)
    np.testing.assert_allclose(arr[:, 1], full.logits["b"][:, held[1]], rtol=1e-5, atol=1e-5)
    held, arr = widest_cached(cache, pop, "a")
    assert list(held) == list(range(6)) and arr.shape == (5, 6, 10)
    with pytest.raises(DataError, match="no response cache of the c stimuli"):
        widest_cached(cache, pop, "c")
    # subsets of two pools under one set name: a reader not told which pool refuses
    chip_responses_on(model, pop, labels, {"b": stimuli["a"][:4]}, {"b": [1]}, cache, progress=False)
    with pytest.raises(DataError, match="more than one b set"):
        cached_responses(cache, pop, wanted={"b": [1]})
    from egis.toolkit.signatures import images_sha256

    told = cached_responses(cache, pop, images={"b": images_sha256(stimuli["b"])}, wanted={"b": [2]})
    np.testing.assert_allclose(told.signatures("b", [2]), full.signatures("b", [2]), rtol=1e-5, atol=1e-5)
    # a sidecar whose identity was edited no longer vouches for its file
    for sidecar in cache.glob("labelled-b-*.json"):
        meta = json.loads(sidecar.read_text())
        meta["indices"] = [0, 1, 2, 3]
        sidecar.write_text(json.dumps(meta))
    assert "b" not in cached_responses(cache, pop, wanted={"b": [2]}).logits
    np.testing.assert_allclose(read.signatures("b", [2]), full.signatures("b", [2]), rtol=1e-5, atol=1e-5)


def test_a_cache_of_the_older_layout_is_named_not_misread(population, tmp_path: Path) -> None:
    from egis.responses import cached_responses

    _, pop, _ = population
    old = tmp_path / "old"
    old.mkdir()
    np.save(old / "labelled-0123.npy", np.zeros((2, 3, 4), dtype=np.float32))
    from egis.toolkit.population import PopulationSpec

    population_sha = PopulationSpec.load(pop).sha256()
    (old / "labelled-0123.json").write_text(json.dumps({"population": population_sha, "names": ["egis"],
                                                         "counts": [3]}))
    with pytest.raises(DataError, match="older layout"):
        cached_responses(old, pop)
    # ... and does not stand in the way of new caches in the same folder
    model, _, labels = population
    from egis.responses import chip_responses

    fresh = chip_responses(model, pop, labels, {"a": _images(0, 6)}, old, progress=False).logits["a"]
    np.testing.assert_array_equal(cached_responses(old, pop).logits["a"], fresh)


def test_a_shared_folder_is_read_per_population(population, tmp_path: Path) -> None:
    """Two populations whose files share a name (typical/ and extreme/ labelled.json) in one
    response folder: each reader gets its own population's responses."""
    from egis.responses import cached_responses, chip_responses, responses_dir
    from egis.toolkit.labels import write_labels
    from egis.toolkit.population import PopulationSpec

    model, pop, labels = population
    other = tmp_path / "other" / "labelled.json"
    other.parent.mkdir()
    spec = PopulationSpec.load(pop)
    PopulationSpec(spec.model_sha256, "generic", {"sigma_tot": 0.6, "preset": "extreme"}, 2, 5).save(other)
    write_labels(other.parent / "labelled_accuracy.csv", range(5), [True, False] * 2 + [True], [0.9] * 5)
    shared = tmp_path / "shared"
    images = {"a": _images(0, 6)}
    mine = chip_responses(model, pop, labels, images, shared, progress=False).logits["a"]
    theirs = chip_responses(model, other, other.parent / "labelled_accuracy.csv", images, shared,
                            progress=False).logits["a"]
    assert not np.allclose(mine, theirs)
    np.testing.assert_array_equal(cached_responses(shared, pop).logits["a"], mine)
    np.testing.assert_array_equal(cached_responses(shared, other).logits["a"], theirs)
    with pytest.raises(DataError, match="no response cache"):
        cached_responses(tmp_path / "alone", other)
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    assert responses_dir(evaluation) == evaluation / "cache"
    (evaluation / "sweep.json").write_text(json.dumps({"responses": "../shared"}))
    assert responses_dir(evaluation).resolve() == shared.resolve()
