"""The Ray backend of the chip runner: same bytes as the local run, a killed worker retried."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from egis.toolkit.engine import ChipTask, population_logits  # noqa: E402
from egis.toolkit.runner import RayRunner  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    tests = str(Path(__file__).resolve().parent)     # the workers import this module's DiesOnce
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def population(tiny_cnn_path):
    from egis.toolkit.model import load_model
    from egis.toolkit.population import Population, PopulationSpec

    model = load_model(tiny_cnn_path)
    spec = PopulationSpec(model.sha256, "generic", {"preset": "typical", "lam": 0.05}, seed=4, count=16)
    return Population(spec, model)


def test_ray_gives_the_local_bytes_in_chip_order(cluster, population):
    pixels = np.random.default_rng(0).random((10, *population.model.contract.image_shape), dtype=np.float32)
    chips = [5, 0, 13, 2, 9, 7, 1]
    local = population_logits(population, pixels, chips, progress=False, threads=1, workers=1)
    remote = population_logits(population, pixels, chips, progress=False, threads=1,
                               workers=RayRunner("auto", chunk=2))
    assert remote.tobytes() == local.tobytes()


class DiesOnce(ChipTask):
    """Kills its worker process the first time it reaches chip ``victim`` (a marker file
    remembers), as a node failure would."""

    def __init__(self, population, pixels, marker: str, victim: int) -> None:
        super().__init__(population, pixels, threads=1)
        self.marker, self.victim = marker, victim

    def for_worker(self) -> "DiesOnce":
        return DiesOnce(self.population, self.pixels, self.marker, self.victim)

    def run(self, index: int) -> np.ndarray:
        if index == self.victim and not Path(self.marker).exists():
            Path(self.marker).write_text("killed once")
            os._exit(1)
        return super().run(index)


def test_a_killed_worker_is_retried_nothing_lost_or_duplicated(cluster, population, tmp_path):
    pixels = np.random.default_rng(1).random((6, *population.model.contract.image_shape), dtype=np.float32)
    chips = list(range(12))
    task = DiesOnce(population, pixels, str(tmp_path / "marker"), victim=7)
    got = list(RayRunner("auto", chunk=3, max_retries=3).map(task, chips))
    assert (tmp_path / "marker").exists()                       # the worker really died
    assert [i for i, _ in got] == chips
    local = population_logits(population, pixels, chips, progress=False, threads=1, workers=1)
    assert np.stack([r for _, r in got]).tobytes() == local.tobytes()
