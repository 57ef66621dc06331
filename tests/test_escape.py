"""The escape budget (pass threshold chosen on held-out folds) and spread preselection."""

from __future__ import annotations

import numpy as np
import pytest
from planted import planted
from test_compaction import FAST

from egis.escape import (choose_threshold, escape_budget_threshold, escape_upper_bound, parse_budget,
                         parse_confidence)
from egis.selection import spread_candidates, spread_scores
from egis.toolkit.errors import DataError


def test_parse_budget():
    assert parse_budget("1%") == pytest.approx(0.01) and parse_budget("0.02") == 0.02
    for bad in ("x", "150%", "-0.1", "1.0"):
        with pytest.raises(DataError):
            parse_budget(bad)


def test_threshold_is_the_least_that_meets_the_budget():
    y = np.array([0] * 50 + [1] * 50)
    p = np.concatenate([np.linspace(0.0, 0.7, 50), np.linspace(0.3, 1.0, 50)])
    for budget in (0.0, 0.02, 0.1, 0.3):
        choice = choose_threshold(p, y, budget, folds=5)
        assert choice.met and choice.validation_escape <= budget + 1e-12
        escapes = lambda t: np.mean((p >= t) & (y == 0))  # noqa: E731
        lower = p[p < choice.threshold]
        if len(lower):   # any smaller candidate threshold would break the budget
            assert escapes(lower.max()) > budget
    strict = choose_threshold(p, y, 0.0, 5)
    loose = choose_threshold(p, y, 0.3, 5)
    assert strict.threshold > loose.threshold and strict.validation_yield_loss >= loose.validation_yield_loss


def test_parse_confidence():
    assert parse_confidence("75%") == pytest.approx(0.75) and parse_confidence("0.9") == 0.9
    for bad in ("x", "0", "1", "100%", "-0.5"):
        with pytest.raises(DataError):
            parse_confidence(bad)


def test_escape_upper_bound_is_clopper_pearson():
    # no escape in 100 chips: the bound solves (1 - b)^100 = 1 - c
    assert escape_upper_bound(0, 100, 0.95) == pytest.approx(1 - 0.05 ** (1 / 100))
    bounds = [escape_upper_bound(k, 1000, 0.75) for k in range(0, 30, 3)]
    assert all(b > k / 1000 for b, k in zip(bounds, range(0, 30, 3)))       # above the observed rate
    assert bounds == sorted(bounds) and escape_upper_bound(5, 5, 0.75) == 1.0
    assert escape_upper_bound(10, 1000, 0.9) > escape_upper_bound(10, 1000, 0.75)


def test_confidence_holds_the_bound_at_the_least_yield_loss():
    y = np.array([0] * 500 + [1] * 500)
    p = np.concatenate([np.linspace(0.0, 0.7, 500), np.linspace(0.3, 1.0, 500)])
    for budget in (0.02, 0.1):
        mean = choose_threshold(p, y, budget, folds=5)
        held = choose_threshold(p, y, budget, folds=5, confidence=0.75)
        assert held.met and held.confidence == 0.75 and mean.confidence is None
        assert held.validation_escape_bound <= budget + 1e-12
        assert held.validation_escape < held.validation_escape_bound
        assert held.threshold > mean.threshold and held.validation_yield_loss >= mean.validation_yield_loss
        lower = p[p < held.threshold]   # any smaller candidate threshold would break the bound
        assert escape_upper_bound(int(np.sum((p >= lower.max()) & (y == 0))), len(y), 0.75) > budget
    # 100 chips cannot show a 0.1% rate at 90%: even passing no chip leaves a bound of 2.3%
    unmet = choose_threshold(p[::10], y[::10], 0.001, folds=5, confidence=0.9)
    assert not unmet.met and unmet.threshold > 1.0


def test_budget_on_planted_chips_trades_yield_for_escapes():
    logits, labels, hot = planted(d=300, n=40, m=4)
    indices = sorted(hot)[:4]
    tight = escape_budget_threshold(logits, labels, indices, 0.005, FAST)
    loose = escape_budget_threshold(logits, labels, indices, 0.2, FAST)
    assert tight.validation_escape <= 0.005 and tight.validation_escape <= tight.default_escape
    assert tight.threshold >= loose.threshold and tight.validation_yield_loss >= loose.validation_yield_loss


def test_bundle_carries_and_tester_applies_the_threshold(tmp_path):
    """A bundle written with an escape budget passes a chip only when P(pass) >= threshold,
    whatever the detector's own 0.5 label says; the manifest carries the budget."""
    from test_bundle import K, detector_bytes, info

    from egis.detector import onnx_predict
    from egis.toolkit.bundle import write_bundle
    from egis.toolkit.tester import Tester

    pixels = np.random.default_rng(0).random((K, 1, 8, 8), dtype=np.float32)
    detector = detector_bytes()
    budget = {"max_escape": 0.01, "threshold": 0.8, "validation_escape": 0.0, "validation_yield_loss": 0.1}
    bundle = write_bundle(tmp_path / "b", pixels, detector, {**info(), "escape_budget": budget}, pixels)
    tester = Tester(bundle)
    assert tester.pass_threshold == 0.8 and tester.bundle.manifest["detector"]["pass_threshold"] == 0.8
    logits, _, _ = planted(d=120, n=20, m=4)
    signatures = logits[:, :K, :].reshape(len(logits), -1)
    label, p_pass = onnx_predict(detector, signatures)
    passed, p = tester.judge(signatures)
    assert np.allclose(p, p_pass, atol=1e-6)
    assert passed.tolist() == (p_pass >= 0.8).tolist()
    assert ((label == 1) & (p_pass < 0.8)).any()        # chips the 0.5 label passes are failed now
    plain = Tester(write_bundle(tmp_path / "plain", pixels, detector, info(), pixels))
    assert plain.pass_threshold is None and plain.judge(signatures)[0].tolist() == (label == 1).tolist()


def test_spread_prefers_images_the_chips_disagree_on():
    rng = np.random.default_rng(0)
    d, m = 100, 5
    confident = np.zeros((d, 3, m), np.float32)
    confident[:, :, 0] = 10.0
    confident += rng.normal(0, 0.1, confident.shape)
    borderline = np.zeros((d, 3, m), np.float32)
    borderline[:, :, 0] = 1.0
    borderline[:, :, 1] = 1.0 + rng.normal(0, 1.0, (d, 3))       # chips flip between class 0 and 1
    logits = np.concatenate([confident, borderline], axis=1)
    scores = spread_scores(logits)
    assert scores[3:].min() > scores[:3].max()
    kept = spread_candidates(logits, k=1, fraction=0.5)   # at least 4 K images are kept
    assert len(kept) == 4 and {3, 4, 5} <= set(kept.tolist())


def test_relevance_keeps_the_images_whose_logits_separate_pass_from_fail():
    from scipy.stats import mannwhitneyu

    from egis.selection import relevance_candidates, relevance_scores

    rng = np.random.default_rng(1)
    d, n, m = 200, 40, 3
    labels = (rng.random(d) < 0.6).astype(np.int64)
    logits = rng.normal(0, 1, (d, n, m))
    informative = [5, 17, 30]
    logits[:, informative, 1] -= 1.5 * labels[:, None]      # pass chips answer lower on logit 1
    scores = relevance_scores(logits, labels)
    assert set(np.argsort(-scores)[:3].tolist()) == set(informative)
    # each score is the |AUC - 0.5| scipy's Mann-Whitney U gives for that image's best logit
    u = [max(abs(mannwhitneyu(logits[labels == 1, 9, j], logits[labels == 0, 9, j]).statistic
                 / (labels.sum() * (d - labels.sum())) - 0.5) for j in range(m))]
    assert scores[9] == pytest.approx(u[0])
    kept = relevance_candidates(logits, labels, k=2)         # at least 8 K of 40 images
    assert len(kept) == 16 and set(informative) <= set(kept.tolist())
    assert not relevance_scores(logits, np.ones(d)).any()     # one class: nothing to separate


def test_cost_weighted_reward_is_accuracy_at_cost_one_and_punishes_escapes_more():
    from egis.compaction import _score_split

    class Fixed:   # a "booster" whose predictions are given, to score the formula alone
        def __init__(self, predicted):
            self.predicted = predicted

        def fit(self, x, y):
            return self

        def predict(self, x):
            return self.predicted

    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    escape = np.array([1, 1, 1, 1, 1, 0, 0, 0])      # one bad chip passed
    loss = np.array([0, 1, 1, 1, 0, 0, 0, 0])        # one good chip failed
    idx = np.arange(8)
    scores = {}
    for name, predicted in (("escape", escape), ("loss", loss)):
        config = type("C", (), {"make": lambda self, p=predicted: Fixed(p)})()
        scores[name] = [_score_split(config, np.zeros((8, 1)), y, idx, idx, cost) for cost in (1.0, 5.0)]
    assert scores["escape"][0] == scores["loss"][0] == 7 / 8          # cost 1: plain accuracy
    assert scores["escape"][1] < scores["loss"][1]                     # cost 5: the escape is worse
    assert scores["loss"][1] == 1 - 1 / (8 * 3)



def test_least_yield_loss_is_the_best_threshold_in_hindsight():
    """egis.metrics.least_yield_loss equals a brute-force search over every threshold (ties
    pass or fail together), and passing no chip is always allowed."""
    from egis.metrics import least_yield_loss, test_metrics

    rng = np.random.default_rng(3)
    for _ in range(100):
        n = int(rng.integers(4, 50))
        accuracy = rng.uniform(0.5, 0.9, n)
        p_pass = np.round(rng.uniform(0, 1, n), 1)          # coarse: many ties
        budget = float(rng.choice([0.0, 0.05, 0.2]))
        brute = min(test_metrics(p_pass >= t, accuracy, 0.7)["YL"] for t in [*np.unique(p_pass), 2.0]
                    if test_metrics(p_pass >= t, accuracy, 0.7)["CTE"] <= budget * 100 + 1e-9)
        assert least_yield_loss(p_pass, accuracy, 0.7, budget) == pytest.approx(brute)
    # a detector that ranks every good chip above every bad one loses no yield at a zero budget
    accuracy = np.array([0.9, 0.8, 0.75, 0.6, 0.5])
    assert least_yield_loss(np.array([0.9, 0.8, 0.7, 0.2, 0.1]), accuracy, 0.7, 0.0) == 0.0
    # ... and one that ranks a critical chip first must fail everything
    assert least_yield_loss(np.array([0.1, 0.2, 0.3, 0.4, 0.9]), accuracy, 0.7, 0.0) == 60.0
