"""The chip runner: any backend gives the same bytes, in chip order."""

from __future__ import annotations

import numpy as np
import pytest

from egis.toolkit.errors import EgisError
from egis.toolkit.runner import LocalRunner, ProcessRunner, default_workers


@pytest.fixture(scope="module")
def population(tiny_cnn_path):
    from egis.toolkit.model import load_model
    from egis.toolkit.population import Population, PopulationSpec

    model = load_model(tiny_cnn_path)
    spec = PopulationSpec(model.sha256, "generic", {"preset": "typical", "lam": 0.05}, seed=3, count=20)
    return Population(spec, model)


def test_process_runner_gives_the_local_bytes_in_chip_order(population):
    from egis.toolkit.engine import population_logits
    from egis.toolkit.labels import chip_accuracies

    rng = np.random.default_rng(0)
    pixels = rng.random((12, *population.model.contract.image_shape), dtype=np.float32)
    chips = [7, 2, 19, 0, 11, 5, 3]
    local = population_logits(population, pixels, chips, progress=False, threads=1, workers=1)
    pooled = population_logits(population, pixels, chips, progress=False, threads=1, workers=2)
    assert pooled.tobytes() == local.tobytes()
    labels = rng.integers(0, population.model.num_classes, 12)
    other = rng.random((5, *population.model.contract.image_shape), dtype=np.float32)
    outs = [np.empty((len(chips), 5, population.model.num_classes), np.float32) for _ in range(2)]
    acc = [chip_accuracies(population, pixels, labels, chips, progress=False, threads=1, workers=w,
                           also=(other, outs[w - 1])) for w in (1, 2)]
    assert acc[0].tolist() == acc[1].tolist() and outs[0].tobytes() == outs[1].tobytes()


def test_runners_yield_every_index_once_in_order(population):
    from egis.toolkit.engine import ChipTask

    pixels = np.zeros((2, *population.model.contract.image_shape), np.float32)
    task = ChipTask(population, pixels, threads=1)
    order = [9, 1, 4, 4, 0]
    assert [i for i, _ in LocalRunner().map(task, order)] == order
    assert [i for i, _ in ProcessRunner(2, chunk=2).map(task, order)] == order


def test_workers_from_the_environment(monkeypatch):
    monkeypatch.delenv("EGIS_WORKERS", raising=False)
    assert default_workers() == 1
    monkeypatch.setenv("EGIS_WORKERS", "2")
    assert default_workers() == 2
    monkeypatch.setenv("EGIS_WORKERS", "zero")
    with pytest.raises(EgisError, match="EGIS_WORKERS"):
        default_workers()

