"""Adaptive labelling decides labels with fewer images and agrees with exhaustive labelling."""

from __future__ import annotations

import numpy as np

from egis.toolkit.adaptive import adaptive_accuracies, interval
from egis.toolkit.labels import Cutoff, chip_accuracies


def test_clopper_pearson_interval_contains_the_estimate():
    low, high = interval(np.array([0, 5, 50, 100]), 100, 0.995)
    assert low[0] == 0 and high[-1] == 1
    assert (low <= np.array([0, 0.05, 0.5, 1.0])).all() and (np.array([0, 0.05, 0.5, 1.0]) <= high).all()
    narrow = interval(np.array([500]), 1000, 0.9)
    wide = interval(np.array([500]), 1000, 0.999)
    assert wide[0] < narrow[0] and wide[1] > narrow[1]


def test_adaptive_labels_equal_exhaustive_on_the_shipped_digits_chips():
    from egis.models.registry import reference_model_path
    from egis.toolkit.data import digits_split
    from egis.toolkit.population import open_population

    pop = open_population(reference_model_path("digits").parent / "populations" / "extreme" / "labelled.json",
                          reference_model_path("digits"))
    _, _, x, y = digits_split()
    chips = list(range(120))
    rule = Cutoff.parse("A50")
    full = chip_accuracies(pop, x, y, chips, progress=False)
    result = adaptive_accuracies(pop, x, y, chips, rule, first=90, progress=False)
    assert result.images_used.min() == 90 and result.images_used.max() == len(x)
    assert 0 < result.images_saved < 1
    agree = np.mean((full >= rule.threshold(full)) == (result.accuracies >= result.threshold))
    assert agree >= 0.99
    exact = result.images_used == len(x)
    assert np.array_equal(result.accuracies[exact], full[exact])   # re-measured chips are exact
