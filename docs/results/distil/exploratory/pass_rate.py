"""Exploratory (2026-12-06): do the distilled methods pass too many chips because their teacher does?

Over every committed K = 4 result, TE - YL (passed chips minus good chips, % of chips) is
+3.2 / +3.5 at A50 for egis-distil / egis-tv-distil against +1.6 for the dataset-aware test
and the seed's EGIS. The teacher's labels of the unlabelled chips are the student's training
majority, so a teacher that passes too many unlabelled chips makes a student that does.
The fab knows the pass rate the labels were cut at (A_p: p% of the labelled chips pass), and
its unlabelled chips come from the same variability model. Here the teacher's labels are cut
instead so that the same share of the unlabelled chips passes (the teacher's P(pass) ranks
them), with the K images each run chose held fixed, and the student is scored as the
evaluation scores it (egis.evaluate._distilled_prediction, its teacher memo pre-filled).

    .venv/bin/python docs/results/distil/exploratory/pass_rate.py EVAL_DIR POPS_DIR METHOD [METHOD ...]

prints, per (cutoff, seed): the labelled pass rate, the product teacher's pass rate on the
unlabelled chips, the evaluation chips' good share, then TA / TE / YL of the product's student
and of the matched one, and the mean over seeds.
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "bench"))
from bench_budget_ranking import method_choices  # noqa: E402
from egis.compaction import BoosterConfig, one_native_thread  # noqa: E402
from egis.distil import Teacher  # noqa: E402
from egis.evaluate import _distilled_prediction, setting_labels  # noqa: E402
from egis.metrics import test_metrics  # noqa: E402


def matched_labels(lab: np.ndarray, y: np.ndarray, unl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(product teacher's labels, labels cut at the labelled pass rate) of the unlabelled chips."""
    teacher = Teacher().fit(lab, y)
    with one_native_thread():
        p = teacher.model.predict_proba(teacher.features(unl))[:, 1]
    product = teacher.predict(unl)
    passing = int(round(float(np.mean(y)) * len(unl)))
    matched = np.zeros(len(unl), dtype=np.int64)
    matched[np.argsort(-p, kind="stable")[:passing]] = 1
    return product, matched


def main() -> None:
    evaluation, pops, methods = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    choices = json.loads((evaluation / "choices.json").read_text())["choices"]
    variability = pops.name
    config = BoosterConfig()
    for method in methods:
        mine, labelled, held = method_choices(evaluation, pops, choices, variability, 4, method)
        totals: dict[str, list] = {}
        for key, choice in sorted(mine.items()):
            cutoff, seed = key.split("|")[1], key.split("|")[3]
            threshold, y = setting_labels(labelled, cutoff)
            stim = choice.stimulus
            lab, unl = np.asarray(labelled.logits[stim]), np.asarray(labelled.unlabelled[stim])
            product, matched = matched_labels(lab, y, unl)
            x_eval = held.signatures(stim, choice.indices)
            memo_key = ("teacher", stim, np.asarray(y).astype(np.int8).tobytes(), b"")
            row = {}
            for name, pseudo in (("product", product), ("matched", matched)):
                labelled.memo[memo_key] = pseudo
                predicted, _ = _distilled_prediction(labelled, stim, choice.indices, y, x_eval, config, None, None)
                m = test_metrics(predicted, held.accuracy, threshold)
                row[name] = (m["TA"], m["TE"], m["YL"], 100 * float(np.mean(predicted)))
            good = 100 * float(np.mean(held.accuracy >= threshold))
            print(f"{method} {cutoff} seed {seed}: labelled pass {100 * np.mean(y):.1f}%, teacher on unlabelled "
                  f"{100 * np.mean(product):.1f}%, evaluation good {good:.1f}% | product TA {row['product'][0]:.2f} "
                  f"TE {row['product'][1]:.2f} YL {row['product'][2]:.2f} | matched TA {row['matched'][0]:.2f} "
                  f"TE {row['matched'][1]:.2f} YL {row['matched'][2]:.2f}", flush=True)
            totals.setdefault(cutoff, []).append(row["matched"][0] - row["product"][0])
        for cutoff, diffs in sorted(totals.items()):
            print(f"{method} {cutoff}: matched minus product TA {np.mean(diffs):+.2f} "
                  f"(seeds {', '.join(f'{d:+.2f}' for d in diffs)})")


if __name__ == "__main__":
    main()
