"""Escape-budget threshold rules compared on a finished run's evaluation chips (issue #18: an
escape budget the operator sets).

`egis compact --max-escape P` (egis.escape) passes a chip when the detector's P(pass) >= t, with
t the smallest threshold whose out-of-fold *test-escape* rate on the labelled chips is <= P.
This bench asks whether another rule would serve a fab better, by rescoring the K = 4 choices a
seed-protocol run made (choices.json) with each rule on the same evaluation chips:

* ``escape``: the shipped rule (it reproduces results_budget1.csv);
* ``critical``: the same, counting only critical escapes (accuracy more than 1 point below the
  cutoff). The fab cannot do this from pass/fail labels; it shows what the customer's
  accuracies (or a third label) would buy;
* ``ucb75`` / ``ucb90``: the smallest t whose one-sided Clopper-Pearson upper bound (75% / 90%)
  on the out-of-fold escape rate is <= P -- a budget held with stated confidence instead of
  on average (``egis compact --escape-confidence``).

Reads the run's caches only (labelled responses, and the evaluation chips' responses to the
chosen images); nothing is simulated.

    python bench/bench_escape_rules.py runs/seed_vgg16_f3 [--variability typical] [--budget 0.01]
        [--methods egis,da-classifier]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from egis.compaction import BoosterConfig, one_native_thread  # noqa: E402
from egis.escape import DEFAULT_FOLDS, choose_threshold, out_of_fold_pass_probability  # noqa: E402
from egis.metrics import chip_classes, test_metrics  # noqa: E402
from egis.responses import evaluation_responses  # noqa: E402
from egis.toolkit.labels import Cutoff, pass_fail, read_labels  # noqa: E402
from egis.toolkit.signatures import signatures  # noqa: E402

RULES = ("escape", "critical", "ucb75", "ucb90")


def threshold(rule: str, p: np.ndarray, labels: np.ndarray, accuracy: np.ndarray, cutoff: float,
              budget: float) -> float:
    """The threshold ``rule`` picks, all by egis.escape's own rule: the shipped one and its
    confidence bounds on the pass/fail labels; ``critical`` on labels that fail only the
    critical chips, so the smallest candidate whose out-of-fold critical-escape rate is within
    the budget (above 1 when none is)."""
    if rule == "critical":
        _, critical = chip_classes(accuracy, cutoff)
        return choose_threshold(p, (~critical).astype(np.int64), budget, DEFAULT_FOLDS).threshold
    confidence = None if rule == "escape" else int(rule[3:]) / 100
    return choose_threshold(p, labels, budget, DEFAULT_FOLDS, confidence).threshold


class RunCaches:
    """The labelled chips' responses to every image and the evaluation chips' to the chosen ones."""

    def __init__(self, run: Path, variability: str) -> None:
        evaluation = run / f"eval_{variability}"
        self.labelled = evaluation_responses(evaluation, run / "pops" / variability / "labelled.json").logits
        self.choices = json.loads((evaluation / "choices.json").read_text())["choices"]
        held: dict[str, set[int]] = {}
        for key, choice in self.choices.items():
            if key.startswith(f"{variability}|"):
                held.setdefault(choice["stimulus"], set()).update(choice["indices"])
        self.evaluation = evaluation_responses(evaluation, run / "pops" / variability / "evaluation.json",
                                               wanted={name: sorted(ix) for name, ix in held.items()})
        missing = sorted(set(held) - set(self.evaluation.logits))
        if missing:
            raise SystemExit(f"the evaluation chips' responses to the chosen {missing[0]} images are not cached")

    def labelled_logits(self, name: str) -> np.ndarray:
        return np.asarray(self.labelled[name])

    def evaluation_signatures(self, name: str, indices: list[int]) -> np.ndarray:
        return self.evaluation.signatures(name, indices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--variability", default="typical")
    parser.add_argument("--budget", type=float, default=0.01)
    parser.add_argument("--methods", default="egis,da-classifier")
    parser.add_argument("-k", type=int, default=4)
    parser.add_argument("--cutoffs", default="A50,A60,A70")
    args = parser.parse_args()

    caches = RunCaches(args.run, args.variability)
    pops = args.run / "pops" / args.variability
    labelled_accuracy = read_labels(pops / "labelled_accuracy.csv").accuracies
    evaluation_accuracy = read_labels(pops / "evaluation_accuracy.csv").accuracies
    config = BoosterConfig()
    print(f"{args.run} {args.variability}, K = {args.k}, budget {args.budget:.2%}: TA / CTE / YL on the "
          f"evaluation chips, mean over the seeds, per threshold rule")
    for method in args.methods.split(","):
        for cutoff in args.cutoffs.split(","):
            cut = Cutoff.parse(cutoff).threshold(labelled_accuracy)
            labels = pass_fail(labelled_accuracy, cut).astype(np.int64)
            scores: dict[str, list[dict[str, float]]] = {rule: [] for rule in RULES}
            keys = sorted(k for k in caches.choices
                          if k.split("|")[:3] == [args.variability, cutoff, str(args.k)] and k.endswith(f"|{method}"))
            for key in keys:
                choice = caches.choices[key]
                logits = caches.labelled_logits(choice["stimulus"])
                p_fold = out_of_fold_pass_probability(logits, labels, choice["indices"], config)
                with one_native_thread():
                    detector = config.make()
                    detector.fit(signatures(logits, choice["indices"]), labels)
                    p_eval = detector.predict_proba(caches.evaluation_signatures(choice["stimulus"],
                                                                                 choice["indices"]))[:, 1]
                for rule in RULES:
                    t = threshold(rule, p_fold, labels, labelled_accuracy, cut, args.budget)
                    scores[rule].append(test_metrics(p_eval >= t, evaluation_accuracy, cut))
            print(f"{method} {cutoff}: " + " | ".join(
                f"{rule} " + " / ".join(f"{np.mean([s[m] for s in scores[rule]]):.1f}" for m in ("TA", "CTE", "YL"))
                for rule in RULES), flush=True)


if __name__ == "__main__":
    main()
