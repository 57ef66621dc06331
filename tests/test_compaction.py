"""Algorithm 1 (annealing over image sets) and the exported detector."""

from __future__ import annotations

import numpy as np
import pytest

from egis.compaction import (BoosterConfig, compact, propose, schedule_length,
                             stratified_folds, stratified_splits)
from egis.detector import build_detector, export_onnx, onnx_predict, train_detector
from egis.toolkit.errors import DataError
from egis.toolkit.signatures import signatures
from planted import planted

FAST = BoosterConfig(max_iter=10)


def test_schedule_is_208_iterations():
    assert schedule_length() == 208
    assert schedule_length(2.0, 0.03, 0.98) == 208


def test_proposals_keep_distinct_images():
    rng = np.random.default_rng(0)
    current = np.array([0, 1, 2, 3])
    changed = []
    for _ in range(400):
        cand = propose(current, 10, rng)
        assert len(set(cand.tolist())) == 4 and cand.min() >= 0 and cand.max() < 10
        changed.append(int(np.sum(cand != current)))
    assert 1.6 < np.mean(changed) < 2.4          # each slot replaced with probability 0.5


def test_splits_are_stratified_80_20():
    y = np.array([0] * 30 + [1] * 70)
    for train, val in stratified_splits(y, 5, np.random.default_rng(0)):
        assert len(val) == 20 and set(train).isdisjoint(val) and len(train) + len(val) == 100
        assert np.sum(y[val] == 0) == 6
    with pytest.raises(DataError, match="single class"):
        stratified_splits(np.ones(10, int), 2, np.random.default_rng(0))


def test_folds_validate_every_chip_equally_often_and_stratified():
    y = np.array([0] * 30 + [1] * 70)
    splits = stratified_folds(y, 3, np.random.default_rng(0), repeats=2)
    assert len(splits) == 6
    seen = np.zeros(100, int)
    for train, val in splits:
        assert set(train).isdisjoint(val) and len(train) + len(val) == 100
        assert 9 <= np.sum(y[val] == 0) <= 11             # a third of each class
        seen[val] += 1
    assert (seen == 2).all()                               # every chip validated twice
    assert [v.tolist() for _, v in splits] == [v.tolist() for _, v in
                                               stratified_folds(y, 3, np.random.default_rng(0), repeats=2)]
    with pytest.raises(DataError, match="at least 3 of each class"):
        stratified_folds(np.array([0, 0] + [1] * 10), 3, np.random.default_rng(0))


def test_cross_validated_reward_also_finds_the_informative_images(problem):
    logits, labels, hot = problem
    result = compact(logits, labels, k=3, seed=7, trials=3, config=FAST, t_end=0.3, n_jobs=1,
                     validation="folds")
    assert result.settings["validation"] == "folds"
    assert result.reward >= result.initial_reward + 0.15, (result.initial_reward, result.reward)
    assert hot & set(result.indices), (hot, result.indices)
    with pytest.raises(DataError, match="validation"):
        compact(logits, labels, k=3, validation="bogus")


@pytest.fixture(scope="module")
def problem():
    return planted()


@pytest.fixture(scope="module")
def result(problem):
    logits, labels, _ = problem
    return compact(logits, labels, k=3, seed=7, trials=3, config=FAST, t_end=0.3, n_jobs=1)


def test_annealing_finds_the_informative_images(problem, result):
    _, _, hot = problem
    assert len(result.history) == schedule_length(2.0, 0.3)
    assert result.reward >= result.initial_reward + 0.15, (result.initial_reward, result.reward)
    assert hot & set(result.indices), (hot, result.indices)
    best = [s.best for s in result.history]
    assert best == sorted(best) and best[-1] == result.reward
    assert all(s.current <= s.best for s in result.history)


def test_annealing_is_deterministic_and_independent_of_parallelism(problem, result):
    logits, labels, _ = problem
    again = compact(logits, labels, k=3, seed=7, trials=3, config=FAST, t_end=0.3, n_jobs=2)
    assert again.indices == result.indices and again.reward == result.reward
    assert again.history == result.history
    other = compact(logits, labels, k=3, seed=8, trials=3, config=FAST, t_end=1.5, n_jobs=1)
    assert other.initial_indices != result.initial_indices


def test_detector_onnx_matches_sklearn(problem, result):
    logits, labels, _ = problem
    model, onnx_bytes = build_detector(logits, labels, result.indices, FAST)
    x = signatures(logits, result.indices)
    onnx_labels, onnx_p = onnx_predict(onnx_bytes, x)
    assert np.array_equal(onnx_labels, model.predict(x))
    assert np.allclose(onnx_p, model.predict_proba(x)[:, 1], atol=1e-5)
    # fresh signatures the detector never saw, too
    fresh = x + np.random.default_rng(3).normal(0, 0.5, x.shape).astype(np.float32)
    assert np.array_equal(onnx_predict(onnx_bytes, fresh)[0], model.predict(fresh))
    assert export_onnx(train_detector(logits, labels, result.indices, FAST), x.shape[1]) == onnx_bytes


def test_detector_with_gradient_boosting_exports_too(problem, result):
    logits, labels, _ = problem
    model, onnx_bytes = build_detector(logits, labels, result.indices, BoosterConfig(kind="gb", max_iter=10))
    x = signatures(logits, result.indices)
    assert np.array_equal(onnx_predict(onnx_bytes, x)[0], model.predict(x))


def test_bad_inputs_are_user_errors(problem):
    logits, labels, _ = problem
    with pytest.raises(DataError, match="K must be"):
        compact(logits, labels, k=0)
    with pytest.raises(DataError, match="labels for"):
        compact(logits, labels[:-1], k=2)


def test_damaged_sid_directory_is_a_user_error(tmp_path):
    from egis.synthesis.sid import read_sid_images

    (tmp_path / "images.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="damaged"):
        read_sid_images(tmp_path, "ab" * 32)
    from egis.toolkit.io import write_npz

    write_npz(tmp_path / "images.npz", images=np.zeros((2, 1, 8, 8), np.float32))
    (tmp_path / "meta.json").write_text("{ truncated")
    with pytest.raises(DataError, match="damaged"):
        read_sid_images(tmp_path, "ab" * 32)


def test_select_compaction_keeps_the_reward_whose_set_scores_best_on_held_out_folds():
    """compact --select: every reward of SELECT_REWARDS anneals; the kept set is the one with
    the best held-out score, recorded with every candidate's score, and it is exactly what that
    reward's own annealing chooses."""
    from egis.compaction import BoosterConfig, held_out_accuracy
    from egis.methods import reward_settings
    from egis.pipeline import SELECT_REWARDS, annealed, select_compaction

    rng = np.random.default_rng(1)
    d, n, m = 160, 40, 4
    severity = rng.random(d).astype(np.float32)
    sens = np.full(n, 0.02, np.float32)
    sens[rng.choice(n, 4, replace=False)] = 2.0
    logits = (rng.normal(0, 3, (n, m))[None] + severity[:, None, None] * sens[None, :, None]
              * rng.normal(0, 1, (n, m))[None] + rng.normal(0, 0.3, (d, n, m))).astype(np.float32)
    labels = (severity < np.median(severity)).astype(np.int64)
    config = BoosterConfig(max_iter=10)
    kwargs = dict(k=3, seed=0, trials=2, config=config)
    best = select_compaction(logits, labels, **kwargs)
    record = best.settings["select"]
    assert list(record["candidates"]) == list(SELECT_REWARDS) and len(SELECT_REWARDS) == 5
    assert record["held_out_accuracy"] == max(record["candidates"].values())
    own = annealed(logits, labels, reward_settings(record["chosen"]), **kwargs)
    assert best.indices == own.indices
    assert record["held_out_accuracy"] == held_out_accuracy(logits, labels, own.indices, 0, config)


def test_rank_by_held_out_picks_the_best_set_first_among_equals_and_refuses_none():
    """The one rule egis-select chooses by: the highest held-out score; the earlier candidate
    on a tie (the documented order of SELECT_CANDIDATES decides); nothing to choose is an error."""
    from egis.compaction import BoosterConfig, held_out_accuracy, rank_by_held_out

    rng = np.random.default_rng(3)
    d, n, m = 120, 12, 3
    labels = (rng.random(d) < 0.5).astype(np.int64)
    logits = rng.normal(0, 1, (d, n, m)).astype(np.float32)
    logits[:, 5, 0] += 3.0 * labels          # image 5 tells passing chips apart
    config = BoosterConfig(max_iter=10)
    noise, signal = [0, 1], [5, 6]
    pick, scores = rank_by_held_out([(logits, noise), (logits, signal), (logits, signal)], labels, 0, config)
    assert pick == 1 and scores[1] == scores[2] > scores[0]
    assert scores[0] == held_out_accuracy(logits, labels, noise, 0, config)
    with pytest.raises(DataError, match="no candidate"):
        rank_by_held_out([], labels, 0, config)


def test_exported_detector_labels_follow_its_probabilities_even_without_splits():
    """24 labelled chips, 14 passing: too few for a split, so every tree is one leaf and
    P(pass) = 0.58 for every chip. scikit-learn passes them all; the ONNX label must too
    (onnxruntime's own tree label said 0 before the label became argmax(probabilities))."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(24, 6, 10)).astype(np.float32)
    labels = np.r_[np.ones(14), np.zeros(10)].astype(np.int64)
    x = signatures(logits, [0, 1, 2, 3])
    model, onnx_bytes = build_detector(logits, labels, [0, 1, 2, 3], BoosterConfig())
    verdict, p_pass = onnx_predict(onnx_bytes, x)
    assert np.allclose(p_pass, 14 / 24, atol=1e-6)
    assert verdict.tolist() == model.predict(x).tolist() == [1] * 24
    # an exact tie (12 of 24 pass, P(pass) = 0.5): HistGradientBoosting's argmax fails it
    tie = np.r_[np.ones(12), np.zeros(12)].astype(np.int64)
    model, onnx_bytes = build_detector(logits, tie, [0, 1, 2, 3], BoosterConfig())
    assert onnx_predict(onnx_bytes, x)[0].tolist() == model.predict(x).tolist() == [0] * 24
    # GradientBoosting (min leaf 1) splits on these chips; its labels still follow scikit-learn's
    model, onnx_bytes = build_detector(logits, labels, [0, 1, 2, 3], BoosterConfig(kind="gb"))
    assert onnx_predict(onnx_bytes, x)[0].tolist() == model.predict(x).tolist()
