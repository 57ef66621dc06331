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
from sklearn.ensemble import HistGradientBoostingClassifier as H, BaggingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.model_selection import StratifiedKFold
V0 = dict(max_iter=20, learning_rate=0.3, max_depth=3, max_leaf_nodes=8, max_bins=64, early_stopping=False, random_state=0)
VARIANTS = {
    "shipped": lambda: H(**V0),
    "hgb100": lambda: H(**{**V0, "max_iter": 100, "learning_rate": 0.1, "max_bins": 255}),
    "hgb300": lambda: H(**{**V0, "max_iter": 300, "learning_rate": 0.05, "max_bins": 255, "l2_regularization": 1.0}),
    "failw3": lambda: H(**V0, class_weight={0: 3.0, 1: 1.0}),
    "bag5": lambda: BaggingClassifier(H(**V0), n_estimators=5, random_state=0),
    "logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)),
}
import os
only = os.environ.get("VARIANTS")
if only: VARIANTS = {k: v for k, v in VARIANTS.items() if k in only.split(",")}
def fitv(make, x, y):
    with one_native_thread():
        m = make(); m.fit(x, y); return m
def oof(make, x, y, extra, ix):
    out = np.empty(len(y))
    for train, held in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        xt, yt = x[train], y[train]
        if extra is not None:
            r2, l2 = extra(train, y[train])
            xt = np.concatenate([xt, signatures(r2, range(r2.shape[1]))]); yt = np.concatenate([yt, l2])
        out[held] = fitv(make, xt, yt).predict_proba(x[held])[:, 1]
    return out
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
                def fl(train, tl, cutoff=cutoff):
                    k2 = (cutoff, np.asarray(train).tobytes())
                    if k2 not in memo: memo[k2] = pseudo_labels(L[train], tl, unl)
                    return memo[k2]
                extra = teacher_rows(L, unl, ix, fold_labels=fl)

            x_lab = signatures(L, ix)
            if unl is not None:
                x_train, y_train = signatures(rows, range(len(ix))), rl
            else:
                x_train, y_train = x_lab, y
            for vname, make in VARIANTS.items():
                det = fitv(make, x_train, y_train)
                pe = det.predict_proba(xe)[:, 1]
                pf = oof(make, x_lab, y, extra, ix)
                t = choose_threshold(pf, y, 0.01, 5).threshold
                rule = test_metrics(pe >= t, acc_e, cut)
                t75 = choose_threshold(pf, y, 0.01, 5, 0.75).threshold
                r75 = test_metrics(pe >= t75, acc_e, cut)
                orc = oracle(pe, acc_e, cut)
                ta = test_metrics(pe >= 0.5, acc_e, cut)["TA"]
                row = dict(setting=s, method=method, cutoff=cutoff, seed=int(seed), variant=vname, TA=ta,
                           rule_CTE=rule["CTE"], rule_YL=rule["YL"], u75_CTE=r75["CTE"], u75_YL=r75["YL"], oracle_YL=orc["YL"])
                print(json.dumps(row), flush=True)
