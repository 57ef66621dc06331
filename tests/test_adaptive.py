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
    # the work counts a re-measured chip's first batch too (on 360 images there is little to save)
    assert result.chip_images_run == 90 * len(chips) + len(x) * int(result.exact.sum())
    assert result.images_saved == 1 - result.chip_images_run / (len(x) * len(chips))
    agree = np.mean((full >= rule.threshold(full)) == (result.accuracies >= result.threshold))
    assert agree >= 0.99
    exact = result.images_used == len(x)
    assert np.array_equal(result.accuracies[exact], full[exact])   # re-measured chips are exact


def _run(capsys, *args) -> tuple[int, str]:
    from egis.cli.main import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_label_adaptive_with_accuracy_is_exact_at_every_decision_point(tmp_path, capsys):
    """egis label --adaptive --decide A60,A70 --margin 0.01 --with-accuracy: every chip lies on
    the same side of each cutoff and of each cutoff minus 1 point as its exhaustive accuracy
    (what egis evaluate's metrics compare), with fewer chip-images; re-measured chips are exact
    and the 'images' column says which ones were."""
    from egis.models.registry import reference_model_path
    from egis.toolkit.adaptive import decision_points
    from egis.toolkit.data import digits_split
    from egis.toolkit.io import read_json, write_npz
    from egis.toolkit.labels import read_labels

    model = reference_model_path("digits")
    population = model.parent / "populations" / "extreme" / "labelled.json"
    _, _, x, y = digits_split()
    write_npz(tmp_path / "test.npz", x=x, y=y)
    common = [model, population, "--data", tmp_path / "test.npz", "--chips", "120", "--with-accuracy"]
    assert _run(capsys, "label", *common, "-o", tmp_path / "full.csv")[0] == 0
    code, err = _run(capsys, "label", *common, "-o", tmp_path / "adaptive.csv", "--adaptive", "--first", "90",
                     "--decide", "A60,A70", "--margin", "0.01")
    assert code == 0, err
    full, adaptive = read_labels(tmp_path / "full.csv"), read_labels(tmp_path / "adaptive.csv")
    record = read_json(tmp_path / "adaptive.json")["adaptive"]
    assert list(record["decided_at"]) == ["A50", "A60", "A70"] and record["margin"] == 0.01
    assert 0 < record["exact_chips"] < 120
    assert record["chip_images"] == 90 * 120 + len(x) * record["exact_chips"]
    points = decision_points([Cutoff.parse(c).threshold(full.accuracies) for c in ("A50", "A60", "A70")], 0.01)
    same_side = (full.accuracies[:, None] >= points) == (adaptive.accuracies[:, None] >= points)
    assert same_side.all(axis=1).mean() >= 0.99
    assert np.mean(full.passed == adaptive.passed) >= 0.99
    import csv

    with open(tmp_path / "adaptive.csv", newline="") as handle:
        images = np.array([int(row["images"]) for row in csv.DictReader(handle)])
    exact = images == len(x)
    assert set(images) == {90, len(x)} and exact.sum() == record["exact_chips"]
    assert np.allclose(adaptive.accuracies[exact], full.accuracies[exact], atol=1e-6)


def test_label_decide_without_adaptive_is_refused(tmp_path, capsys):
    from egis.models.registry import reference_model_path

    model = reference_model_path("digits")
    code, err = _run(capsys, "label", model, model.parent / "populations" / "extreme" / "labelled.json",
                     "--data", tmp_path / "none.npz", "-o", tmp_path / "x.csv", "--decide", "A60")
    assert code == 2 and "--decide and --margin only apply with --adaptive" in err
    assert not (tmp_path / "x.csv").exists()
