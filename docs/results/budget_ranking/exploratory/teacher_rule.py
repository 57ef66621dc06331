"""Exploratory (2026-12-06): can the fab's unlabelled chips steady the budget's threshold?

The shipped rule picks the student's pass threshold where the out-of-fold escape rate of the
labelled chips is <= 1%: about 10 escapes of 1000 decide it. egis-tv-distil also has 2000
unlabelled chips and a teacher that sees every image. Here the escape rate at a threshold is
estimated on the unlabelled chips as mean(1[student passes] * q), q the teacher's calibrated
P(fail), the student's P(pass) on them out of fold. Rules compared on the evaluation chips
(each printed as CTE, YL, TE on the evaluation chips, then the labelled out-of-fold escape
rate and the unlabelled estimate at the rule's threshold, all in %):

  shipped   the product's rule (reproduces results.csv)
  teacher   the unlabelled chips' estimate alone
  pooled    labelled out-of-fold escapes and the unlabelled estimate, summed over both
  shipped@0.7, shipped@0.5  the shipped rule at a tighter budget (points on its trade-off)
  teacher@1.5  the unlabelled estimate held to 1.5%
  joint     the unlabelled estimate with q replaced by P(fail | teacher's P(fail), student's P(pass)),
            a logistic regression on the labelled chips' out-of-fold pairs (the student knows
            something the teacher does not, so q alone overstates the escapes it passes)
  joint-pooled  that estimate pooled with the labelled out-of-fold escapes
  X@b       family X at a budget of b %, for b in SWEEP: each family's CTE / YL trade-off
  ucb75     the product's 75% rule (--escape-confidence 75%)
  teacher+ucb75  the higher of the teacher's and the 75% rule's thresholds

    .venv/bin/python docs/results/budget_ranking/exploratory/teacher_rule.py vgg16:typical ...
"""
import json, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "bench"))
from bench_budget_ranking import method_choices
from egis.compaction import BoosterConfig, one_native_thread
from egis.distil import Teacher
from egis.escape import choose_threshold, out_of_fold_pass_probability
from egis.evaluate import judge_with, setting_labels, teacher_labels, _distilled_prediction
from egis.distil import teacher_rows
from egis.metrics import test_metrics, least_yield_loss
from egis.toolkit.signatures import signatures
from sklearn.model_selection import StratifiedKFold, KFold
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

BUDGET = 0.01
SWEEP = (0.4, 0.6, 0.8, 1.2, 1.6, 2.0, 2.5)   # % budgets: each rule family's CTE / YL trade-off
config = BoosterConfig()


def teacher_fail_probability(lab, y, unl):
    """q: P(fail) of each unlabelled chip; the teacher fitted on every labelled chip, its
    probabilities mapped through an isotonic fit of out-of-fold probabilities on the labelled."""
    oof = np.empty(len(y))
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(y, y):
        t = Teacher().fit(lab[tr], y[tr])
        with one_native_thread():
            oof[te] = t.model.predict_proba(t.features(lab[te]))[:, 0]
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(oof, (y == 0).astype(float))
    t = Teacher().fit(lab, y)
    with one_native_thread():
        raw = t.model.predict_proba(t.features(unl))[:, 0]
    return iso.predict(raw), raw, t.predict(unl), oof


def student_oof_unlabelled(lab, y, unl, pseudo, idx):
    xl, xu = signatures(lab, idx), signatures(unl, idx)
    out = np.empty(len(xu))
    for tr, te in KFold(5, shuffle=True, random_state=0).split(xu):
        with one_native_thread():
            m = config.make().fit(np.concatenate([xl, xu[tr]]), np.concatenate([y, pseudo[tr]]))
            out[te] = m.predict_proba(xu[te])[:, 1]
    return out


def smallest(ts, ok):
    for t in ts:
        if ok(t):
            return t
    return np.nextafter(1.0, 2.0)


def main():
    for setting in sys.argv[1:]:
        m, v = setting.split(":")
        ev = Path(f"runs/distil/tv_{m}_{v}/eval_{v}_budget1")
        pops = Path(f"runs/seed_{m}_f3/pops")
        choices = json.loads((ev / "choices.json").read_text())["choices"]
        mine, labelled, held = method_choices(ev, pops / v, choices, v, 4, "egis-tv-distil")
        for cutoff in ("A50", "A60", "A70"):
            t0 = time.time()
            threshold, y = setting_labels(labelled, cutoff)
            stim = next(iter(mine.values())).stimulus
            lab, unl = np.asarray(labelled.logits[stim]), np.asarray(labelled.unlabelled[stim])
            q, raw, pseudo, q_oof = teacher_fail_probability(lab, y, unl)
            ref = teacher_labels(labelled, stim, y)
            assert np.array_equal(ref, pseudo), "teacher differs from the product's"
            for key, choice in sorted(mine.items()):
                if key.split("|")[1] != cutoff:
                    continue
                idx = choice.indices
                x_eval = held.signatures(stim, idx)
                _, p_e = _distilled_prediction(labelled, stim, idx, y, x_eval, config, None, None)
                p_l = out_of_fold_pass_probability(lab, y, idx, config,
                                                   extra_rows=teacher_rows(lab, unl, idx, fold_labels=lambda tr, yl:
                                                                           teacher_labels(labelled, stim, yl, tr)))
                p_u = student_oof_unlabelled(lab, y, unl, pseudo, idx)
                # P(fail | teacher's P(fail), student's P(pass)), fitted on the labelled chips' out-of-fold pairs
                logit = lambda v: np.log(np.clip(v, 1e-4, 1 - 1e-4) / (1 - np.clip(v, 1e-4, 1 - 1e-4)))
                joint = LogisticRegression(C=1.0).fit(np.column_stack([logit(q_oof), logit(p_l)]), (y == 0).astype(int))
                f_u = joint.predict_proba(np.column_stack([logit(raw), logit(p_u)]))[:, 1]
                joint_esc = lambda t: np.sum((p_u >= t) * f_u)
                ts = np.unique(np.concatenate([p_l, p_u, [0.5]]))
                nl, nu = len(y), len(p_u)
                lab_esc = lambda t: np.sum((p_l >= t) & (y == 0))
                un_esc = lambda t: np.sum((p_u >= t) * q)
                rules = {
                    "shipped": choose_threshold(p_l, y, BUDGET, 5).threshold,
                    "teacher": smallest(ts, lambda t: un_esc(t) / nu <= BUDGET),
                    "pooled": smallest(ts, lambda t: (lab_esc(t) + un_esc(t)) / (nl + nu) <= BUDGET),
                    "ucb75": choose_threshold(p_l, y, BUDGET, 5, 0.75).threshold,
                    "shipped@0.7": choose_threshold(p_l, y, 0.007, 5).threshold,
                    "shipped@0.5": choose_threshold(p_l, y, 0.005, 5).threshold,
                    "joint": smallest(ts, lambda t: joint_esc(t) / nu <= BUDGET),
                    "joint-pooled": smallest(ts, lambda t: (lab_esc(t) + joint_esc(t)) / (nl + nu) <= BUDGET),
                    "teacher@1.5": smallest(ts, lambda t: un_esc(t) / nu <= 0.015),
                    "teacher+ucb75": max(choose_threshold(p_l, y, BUDGET, 5, 0.75).threshold,
                                         smallest(ts, lambda t: un_esc(t) / nu <= BUDGET)),
                }
                for b in SWEEP:
                    rules[f"shipped@{b}"] = choose_threshold(p_l, y, b / 100, 5).threshold
                    rules[f"teacher@{b}"] = smallest(ts, lambda t: un_esc(t) / nu <= b / 100)
                    rules[f"pooled@{b}"] = smallest(ts, lambda t: (lab_esc(t) + un_esc(t)) / (nl + nu) <= b / 100)
                out = {"setting": setting, "cutoff": cutoff, "seed": key.split("|")[3],
                       "hindsight": round(least_yield_loss(p_e, held.accuracy, threshold, BUDGET), 2)}
                for name, t in rules.items():
                    r = test_metrics(p_e >= t, held.accuracy, threshold)
                    out[name] = [round(r["CTE"], 2), round(r["YL"], 2), round(r["TE"], 2),
                                 round(100 * float(lab_esc(t)) / nl, 2), round(100 * float(un_esc(t)) / nu, 2)]
                # calibration check on the evaluation chips: estimated vs true fail rate
                out["est_fail_rate_U"] = round(100 * float(q.mean()), 2)
                out["true_fail_rate_E"] = round(100 * float(np.mean(held.accuracy < threshold)), 2)
                out["teacher_pass_U"] = round(100 * float(pseudo.mean()), 2)
                print(json.dumps(out), flush=True)
            print(f"# {setting} {cutoff} {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
