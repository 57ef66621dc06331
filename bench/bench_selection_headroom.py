"""How much can the choice of K images matter on held-out chips? (issue #18: compaction whose
choice beats chance, measurably)

Reads the responses a seed-protocol run already cached (``scripts/seed_protocol.sh``: every
labelled chip on every image of every stimulus set) and simulates nothing. The labelled chips
are split once into a training half and two held-out quarters, A and B. For R random K-sets
of one stimulus set, each cutoff:

* the detector (the compaction's booster) is fitted on the training half and scored on A and
  on B separately. Each set's true quality is what both quarters share: the covariance of
  the A and B scores over the sets estimates its variance, so ``sd_true`` says how far apart
  image sets really are and ``r_AB`` how much of one quarter's spread is that (the rest is
  which chips happened to land in the quarter);
* ``disagree%``: how often two random sets' detectors disagree on a held-out chip, the chips
  on which two sets' TAs can differ at all;
* the seed's reward (mean accuracy over 3 stratified 80/20 splits of the training half) is
  computed for each set, and its correlation with the held-out score says how well the reward
  can rank sets; ``top-1`` / ``top-10`` are the held-out scores of the sets it ranks best;
* the same for a smooth reward, the 5-fold cross-validated log-likelihood of the labels
  (:func:`smooth_reward`);
* ``oracle A->B``: the set best on quarter A, scored on B -- choosing with held-out chips
  themselves as the reward, the most any reward on that many chips can buy;
* the seed's annealing (egis.compaction.compact, 3 splits, 208 iterations) on the training
  half, for ``--anneal-seeds`` seeds, scored on A and B, and its own final reward.

All held-out figures are the mean of the A and B accuracies (the held-out half). Usage:

    python bench/bench_selection_headroom.py runs/seed_vgg16_f3 [--variability typical]
        [--stimulus egis] [-k 4] [--sets 200] [--anneal-seeds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from egis.compaction import BoosterConfig, compact, one_native_thread, stratified_folds, stratified_splits  # noqa: E402
from egis.responses import evaluation_responses  # noqa: E402
from egis.toolkit.labels import Cutoff, pass_fail, read_labels  # noqa: E402
from egis.toolkit.signatures import signatures  # noqa: E402


def labelled_responses(run: Path, variability: str, stimulus: str) -> np.ndarray:
    """(chips, N, M) responses of the labelled chips to one stimulus set, from the run's cache."""
    cached = evaluation_responses(run / f"eval_{variability}", run / "pops" / variability / "labelled.json").logits
    if stimulus not in cached:
        raise SystemExit(f"{stimulus!r} not cached; the cache holds {sorted(cached)}")
    return np.ascontiguousarray(cached[stimulus])


def fit_predict(config: BoosterConfig, x: np.ndarray, y: np.ndarray, train: np.ndarray,
                test: np.ndarray, proba: bool = False) -> np.ndarray:
    """The booster's pass/fail (or, with ``proba``, pass probability) on ``test``."""
    with one_native_thread():
        model = config.make()
        model.fit(x[train], y[train])
        return model.predict_proba(x[test])[:, 1] if proba else model.predict(x[test])


def smooth_reward(config: BoosterConfig, x: np.ndarray, y: np.ndarray,
                  folds: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Cross-validated mean log-likelihood of the true labels (every chip validated once per
    repeat): a score that uses how sure the detector is on each chip, not only whether it was
    right, so it should rank image sets with less noise than accuracy (the bench measures it)."""
    total = 0.0
    for train, val in folds:
        p_pass = np.clip(fit_predict(config, x, y, train, val, proba=True), 1e-6, 1 - 1e-6)
        total += float(np.sum(np.where(y[val] == 1, np.log(p_pass), np.log(1 - p_pass))))
    return total / sum(len(val) for _, val in folds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--variability", default="typical")
    parser.add_argument("--stimulus", default="egis")
    parser.add_argument("-k", type=int, default=4)
    parser.add_argument("--sets", type=int, default=200)
    parser.add_argument("--anneal-seeds", type=int, default=3)
    parser.add_argument("--cutoffs", default="A50,A60,A70")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    logits = labelled_responses(args.run, args.variability, args.stimulus)
    accuracies = read_labels(args.run / "pops" / args.variability / "labelled_accuracy.csv").accuracies
    d, n, _ = logits.shape
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(d)
    train = np.sort(order[: d // 2])
    quarter_a, quarter_b = np.sort(order[d // 2: 3 * d // 4]), np.sort(order[3 * d // 4:])
    held = np.concatenate([quarter_a, quarter_b])
    config = BoosterConfig()
    print(f"{args.run} {args.variability}: {d} labelled chips ({len(train)} training, "
          f"{len(quarter_a)} + {len(quarter_b)} held out), {args.stimulus} N = {n}, K = {args.k}, "
          f"{args.sets} random sets")
    print("cutoff | random: mean sd disagree% | sd_true r_AB | corr(reward, held) top-1 top-10 | the same for "
          "the log-likelihood reward | oracle A->B "
          "| annealing: reward held-out (per seed) | seconds")
    for cutoff in args.cutoffs.split(","):
        started = time.perf_counter()
        y = pass_fail(accuracies, Cutoff.parse(cutoff).threshold(accuracies)).astype(np.int64)
        splits = stratified_splits(y[train], 3, np.random.default_rng([args.seed, 1]))
        folds = stratified_folds(y[train], 5, np.random.default_rng([args.seed, 2]), repeats=1)
        sets = [rng.choice(n, args.k, replace=False) for _ in range(args.sets)]
        reward, smooth, score_a, score_b, predictions = [], [], [], [], []
        for chosen in sets:
            x = signatures(logits, chosen)
            xt, yt = x[train], y[train]
            reward.append(np.mean([np.mean(fit_predict(config, xt, yt, tr, va) == yt[va]) for tr, va in splits]))
            smooth.append(smooth_reward(config, xt, yt, folds))
            predicted = fit_predict(config, x, y, train, held)
            predictions.append(predicted)
            score_a.append(np.mean(predicted[: len(quarter_a)] == y[quarter_a]))
            score_b.append(np.mean(predicted[len(quarter_a):] == y[quarter_b]))
        reward, score_a, score_b = (np.asarray(v) * 100 for v in (reward, score_a, score_b))
        held_out = (score_a + score_b) / 2
        cov_ab = float(np.cov(score_a, score_b)[0, 1])
        sd_true = float(np.sqrt(max(cov_ab, 0.0)))
        ranked = np.argsort(-reward, kind="stable")
        # how often two random sets' detectors disagree on a held-out chip (consecutive pairs):
        # the chips on which two sets' TAs can differ at all
        disagree = np.mean([np.mean(a != b) for a, b in zip(predictions[::2], predictions[1::2])]) * 100
        ranked_smooth = np.argsort(-np.asarray(smooth), kind="stable")
        annealed = []
        for seed in range(args.anneal_seeds):
            result = compact(logits[train], y[train], args.k, seed=seed, trials=3, n_jobs=1)
            predicted = fit_predict(config, signatures(logits, result.indices), y, train, held)
            annealed.append((result.reward * 100, float(np.mean(predicted == y[held])) * 100))
        print(f"{cutoff} | {held_out.mean():.1f} {held_out.std():.2f} {disagree:.1f} | {sd_true:.2f} "
              f"{np.corrcoef(score_a, score_b)[0, 1]:.2f} | {np.corrcoef(reward, held_out)[0, 1]:.2f} "
              f"{held_out[ranked[0]]:.1f} {held_out[ranked[:10]].mean():.1f} | "
              f"{np.corrcoef(smooth, held_out)[0, 1]:.2f} {held_out[ranked_smooth[0]]:.1f} "
              f"{held_out[ranked_smooth[:10]].mean():.1f} | "
              f"{score_b[int(np.argmax(score_a))]:.1f} (B mean {score_b.mean():.1f}) | "
              + (" ".join(f"{r:.1f}/{h:.1f}" for r, h in annealed)
                 + f" (held-out mean {np.mean([h for _, h in annealed]):.1f})" if annealed else "not run")
              + f" | {time.perf_counter() - started:.0f}",
              flush=True)


if __name__ == "__main__":
    main()
