"""What distillation can buy (egis-distil, issue #18), measured on a finished evaluation.

Reads what an ``egis evaluate --methods egis-distil`` run cached (the labelled and the
unlabelled chips' responses to the whole pool, the evaluation chips' responses to the images
it measured them on) and simulates nothing. On the images the evaluation chips were measured
on (with ``--chance`` that is a few hundred of the pool), per cutoff:

* ``teacher``: TA on the evaluation chips of the teacher fitted on the labelled chips'
  responses to all those images -- the ceiling the student learns from;
* for R random K-sets: the TA of the seed's detector (labelled chips only) and of the student
  (plus the teacher-labelled unlabelled chips), their mean difference and how often it is > 0;
* how well each reward ranks the sets for the detector it serves: the correlation of the
  agreement reward (egis.distil.AgreementReward) with the student's held-out TA, and of the
  seed's reward (3 stratified 80/20 splits) with the seed detector's; and the mean TA of the
  top tenth of the sets by each, against the mean of all (the chance level).

Usage:

    python bench/bench_distil.py runs/distil/vgg16_typical/eval_typical \\
        --populations runs/seed_vgg16_f3/pops --variability typical [--sets 60] [-k 4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from egis.compaction import BoosterConfig, RewardFunction, one_native_thread, stratified_splits  # noqa: E402
from egis.distil import AgreementReward, Teacher, student_rows  # noqa: E402
from egis.responses import cached_responses, responses_dir, widest_cached  # noqa: E402
from egis.toolkit.labels import Cutoff, read_labels  # noqa: E402
from egis.toolkit.signatures import signatures  # noqa: E402


def fit_score(config: BoosterConfig, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    with one_native_thread():
        model = config.make()
        model.fit(x, y)
        return float(np.mean(model.predict(x_test) == y_test) * 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("evaluation", type=Path, help="a finished egis-distil evaluation folder")
    parser.add_argument("--populations", type=Path, required=True)
    parser.add_argument("--variability", required=True)
    parser.add_argument("--stimulus", default="egis")
    parser.add_argument("--sets", type=int, default=60)
    parser.add_argument("-k", type=int, default=4)
    args = parser.parse_args()
    sweep = json.loads((args.evaluation / "sweep.json").read_text())
    pops = args.populations / args.variability
    images = sweep.get("response_sets")
    folder = responses_dir(args.evaluation)
    labelled = np.asarray(cached_responses(folder, pops / "labelled.json", images).logits[args.stimulus])
    unlabelled = np.asarray(cached_responses(folder, pops / "unlabelled.json", images).logits[args.stimulus])
    n = labelled.shape[1]
    # the evaluation chips were measured on a subset of the pool: the largest one cached
    held, evaluation = widest_cached(folder, pops / "evaluation.json", args.stimulus,
                                     (images or {}).get(args.stimulus))
    acc_l = read_labels(pops / "labelled_accuracy.csv").accuracies
    acc_e = read_labels(pops / "evaluation_accuracy.csv").accuracies
    lab, unl = labelled[:, held], unlabelled[:, held]
    config = BoosterConfig()
    rng = np.random.default_rng(0)
    sets = [np.sort(rng.choice(len(held), args.k, replace=False)) for _ in range(args.sets)]
    print(f"{args.evaluation}: {len(lab)} labelled, {len(unl)} unlabelled, {len(evaluation)} evaluation chips; "
          f"{len(held)} of {n} images; {args.sets} random K = {args.k} sets")
    print("cutoff | teacher TA | K-set TA: seed's detector | student | gain (>0 in %) | "
          "corr with held-out TA: agreement (student's TA) / seed's reward (seed detector's TA) | "
          "mean TA of the top tenth by each")
    for cutoff in sweep["config"]["cutoffs"]:
        started = time.perf_counter()
        threshold = Cutoff.parse(cutoff).threshold(acc_l)
        y, y_eval = (acc_l >= threshold).astype(np.int64), (acc_e >= threshold).astype(np.int64)
        teacher = Teacher().fit(lab, y)
        teacher_ta = float(np.mean(teacher.predict(evaluation) == y_eval) * 100)
        pseudo = teacher.predict(unl)
        agreement = AgreementReward(lab, y, unl, pseudo, config)
        with RewardFunction(lab, y, stratified_splits(y, 3, np.random.default_rng(1)), config) as seeds_reward:
            rows = []
            for s in sets:
                alone = fit_score(config, signatures(lab, s), y, signatures(evaluation, s), y_eval)
                x, x_labels = student_rows(lab, y, unl, pseudo, s)
                student = fit_score(config, signatures(x, range(args.k)), x_labels, signatures(evaluation, s), y_eval)
                rows.append((alone, student, agreement(s), seeds_reward(s)))
        alone, student, by_agreement, by_seed = (np.asarray(c) for c in zip(*rows))
        tenth = max(1, len(sets) // 10)

        def top(reward: np.ndarray, ta: np.ndarray) -> float:
            return float(ta[np.argsort(-reward, kind="stable")[:tenth]].mean())

        # each reward against the TA of the detector it is used with: the seed's reward picks sets
        # for the seed's detector, the agreement reward for the student
        print(f"{cutoff} | {teacher_ta:.2f} | {alone.mean():.2f} | {student.mean():.2f} | "
              f"{(student - alone).mean():+.2f} ({np.mean(student > alone) * 100:.0f}) | "
              f"{np.corrcoef(by_agreement, student)[0, 1]:.2f} / {np.corrcoef(by_seed, alone)[0, 1]:.2f} | "
              f"{top(by_agreement, student):.2f} (student) / {top(by_seed, alone):.2f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
