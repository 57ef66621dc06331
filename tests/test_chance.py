"""The chance level: random K-sets scored as a choice is, and a choice placed against them."""

from __future__ import annotations

import numpy as np
import pytest
from planted import planted

from egis.chance import ChanceLevel, chance_level, random_sets
from egis.compaction import BoosterConfig
from egis.responses import ChipResponses


def test_random_sets_are_reproducible_sorted_and_distinct() -> None:
    sets = random_sets(50, 4, 20, seed=3)
    assert [s.tolist() for s in sets] == [s.tolist() for s in random_sets(50, 4, 20, seed=3)]
    assert all(len(set(s.tolist())) == 4 and list(s) == sorted(s) and 0 <= s.min() and s.max() < 50 for s in sets)
    assert [s.tolist() for s in sets] != [s.tolist() for s in random_sets(50, 4, 20, seed=4)]
    with pytest.raises(ValueError):
        random_sets(3, 4, 1)


def test_a_set_of_the_informative_images_sits_above_the_chance_level() -> None:
    """Planted responses: a few images reveal each chip's severity. Random sets rarely hold
    them, so the chance level sits well below a set made of them, whose percentile is high."""
    logits, labels, hot = planted(d=400, n=60, m=4, informative=4, seed=1)
    accuracy = np.where(labels == 1, 0.95, 0.85) + np.random.default_rng(0).normal(0, 0.001, len(labels))
    labelled = ChipResponses({"egis": logits[:200]}, accuracy[:200])
    evaluation = ChipResponses({"egis": logits[200:]}, accuracy[200:])
    level = chance_level(labelled, evaluation, "egis", "A50", 4, random_sets(60, 4, 20), BoosterConfig())
    assert level.sets == 20 and set(level.row()) >= {"TA", "TA_sd", "TA_se", "CTE", "YL", "sets"}
    best = chance_level(labelled, evaluation, "egis", "A50", 4, [sorted(hot)], BoosterConfig())
    minus, percentile = level.place(best.ta)
    assert minus > 5 and percentile >= 90


def test_place_is_against_the_mean_and_the_spread_of_the_random_sets() -> None:
    level = ChanceLevel("egis", "A50", 4, {"TA": np.array([80.0, 90.0, 100.0]), "CTE": np.zeros(3),
                                           "YL": np.ones(3)})
    assert level.place(95.0) == (5.0, pytest.approx(200 / 3))
    assert level.row()["TA_sd"] == pytest.approx(10.0) and level.row()["YL"] == 1.0
