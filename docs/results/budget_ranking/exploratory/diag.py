"""Where the budget's yield loss comes from: ranking (oracle threshold on the evaluation chips)
against threshold choice (the shipped out-of-fold rule)."""
import json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from egis.compaction import BoosterConfig, one_native_thread
from egis.distil import student_rows, teacher_rows, pseudo_labels
from egis.escape import out_of_fold_pass_probability, choose_threshold
from egis.metrics import test_metrics, CRITICAL_MARGIN
from egis.responses import evaluation_responses, cached_responses, responses_dir, _sweep_record
from egis.toolkit.labels import Cutoff, pass_fail, read_labels
from egis.toolkit.signatures import signatures

config = BoosterConfig()
def fit(x, y):
    with one_native_thread():
        m = config.make(); m.fit(x, y); return m

def oracle(p, acc, cut, budget=1.0):
    best = None
    for t in np.unique(np.concatenate([p, [1.1]])):
        r = test_metrics(p >= t, acc, cut)
        if r["CTE"] <= budget + 1e-9:
            return r
def old_layout(ev, stim, choices):
    import glob
    got = {}
    for f in glob.glob(str(ev / "cache" / "*.json")):
        meta = json.loads(open(f).read())
        arr = np.load(f[:-5] + ".npy", mmap_mode="r")
        start = sum(meta["counts"][:meta["names"].index(stim)])
        got[Path(f).name.split("-")[0]] = arr[:, start:start + meta["counts"][meta["names"].index(stim)]]
    union = sorted({i for v in choices.values() if v["stimulus"] == stim for i in v["indices"]})
    assert len(union) == got["evaluation"].shape[1], (len(union), got["evaluation"].shape)
    return np.asarray(got["labelled"]), np.asarray(got["evaluation"]), {i: c for c, i in enumerate(union)}
out = []
import os
REPEATS = int(os.environ.get("REPEATS", "5"))
arrays = {}
settings = sys.argv[1:] or ["vgg16:typical", "mobilenet:typical", "vgg16:extreme", "mobilenet:extreme"]
for s in settings:
    m, v = s.split(":")
    run = Path(f"runs/seed_{m}_f3"); pops = run / "pops" / v
    acc_l = read_labels(pops / "labelled_accuracy.csv").accuracies
    acc_e = read_labels(pops / "evaluation_accuracy.csv").accuracies
    for method, ev in (("da-classifier", run / f"eval_{v}"), ("egis-distil", Path(f"runs/distil/{m}_{v}/eval_{v}")),
                       ("egis-tv-distil", Path(f"runs/distil/tv_{m}_{v}/eval_{v}"))):
        choices = json.loads((ev / "choices.json").read_text())["choices"]
        keys = sorted(k for k in choices if k.startswith(f"{v}|") and k.endswith(f"|4|0|{method}") or (k.startswith(f"{v}|") and k.split("|")[2] == "4" and k.split("|")[4] == method))
        stim = choices[keys[0]]["stimulus"]
        held = {stim: sorted({i for k in keys for i in choices[k]["indices"]})}
        if method == "da-classifier":
            L, E, col = old_layout(ev, stim, choices)
        else:
            lab = evaluation_responses(ev, pops / "labelled.json")
            evr = evaluation_responses(ev, pops / "evaluation.json", wanted=held)
            L = np.asarray(lab.logits[stim])
        unl = None
        if "distil" in method:
            unl = np.asarray(cached_responses(responses_dir(ev), pops / "unlabelled.json",
                                              _sweep_record(ev).get("response_sets")).logits[stim])
        memo = {}
        for key in sorted(keys):
            _, cutoff, _, seed, _ = key.split("|")
            ix = choices[key]["indices"]
            cut = Cutoff.parse(cutoff).threshold(acc_l)
            y = pass_fail(acc_l, cut).astype(np.int64)
            xe = evr.signatures(stim, ix) if method != "da-classifier" else signatures(E[:, [col[i] for i in ix]], range(len(ix)))
            extra = None
            if unl is not None:
                tk = (cutoff, "all")
                if tk not in memo: memo[tk] = pseudo_labels(L, y, unl)
                rows, rl = student_rows(L, y, unl, memo[tk], ix)
                det = fit(signatures(rows, range(len(ix))), rl)
                def fl(train, tl, cutoff=cutoff):
                    k2 = (cutoff, np.asarray(train).tobytes())
                    if k2 not in memo: memo[k2] = pseudo_labels(L[train], tl, unl)
                    return memo[k2]
                extra = teacher_rows(L, unl, ix, fold_labels=fl)
            else:
                det = fit(signatures(L, ix), y)
            pe = det.predict_proba(xe)[:, 1]
            pfs = [out_of_fold_pass_probability(L, y, ix, config, seed=r, extra_rows=extra) for r in range(REPEATS)]
            pf = pfs[0]
            arrays[f"{s}|{method}|{cutoff}|{seed}"] = dict(pf=np.asarray(pfs), pe=pe, y=y, acc_l=acc_l, acc_e=acc_e, cut=cut)
            t = choose_threshold(pf, y, 0.01, 5).threshold
            rule = test_metrics(pe >= t, acc_e, cut)
            orc = oracle(pe, acc_e, cut)
            # out-of-fold oracle (CTE on labelled chips with accuracies): what a threshold on labelled chips could do
            row = dict(setting=s, method=method, cutoff=cutoff, seed=int(seed), t=t,
                       rule_CTE=rule["CTE"], rule_YL=rule["YL"], rule_TE=rule.get("TE", np.nan),
                       oracle_YL=orc["YL"], oracle_t=None)
            out.append(row)
            print(json.dumps(row), flush=True)

np.savez_compressed(os.environ.get("OUT", "runs/budget/arrays.npz"), **{k + "|" + f: v for k, d in arrays.items() for f, v in d.items()})
