import sys, collections
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from egis.escape import choose_threshold, escape_upper_bound
from egis.metrics import test_metrics
from scipy.stats import beta

z = np.load(sys.argv[1] if len(sys.argv) > 1 else "runs/budget/arrays.npz")
keys = sorted({k.rsplit("|", 1)[0] for k in z.files})
B = 0.01
def pooled(pf, y, budget, conf=None, R=None):
    pf = pf[:R] if R else pf
    bad = (y == 0)
    cand = np.unique(np.concatenate([pf.ravel(), [0.5, 1.0000001]]))
    n = len(y)
    for t in cand:
        esc = np.mean([(p >= t)[bad].sum() for p in pf])
        val = esc / n if conf is None else beta.ppf(conf, esc + 1, n - esc)
        if val <= budget + 1e-12:
            return t
    return 1.0000001
def platt(pf, y, budget):
    from sklearn.linear_model import LogisticRegression
    p = np.clip(pf.ravel(), 1e-4, 1 - 1e-4); yy = np.tile(y, len(pf))
    f = np.log(p / (1 - p))[:, None]
    lr = LogisticRegression(C=1e6).fit(f, yy)
    pbad = 1 - lr.predict_proba(f)[:, 1]
    order = np.argsort(-p)
    cum = np.cumsum(pbad[order]) / len(pf) / len(y)
    ok = np.nonzero(cum <= budget)[0]
    if len(ok) == 0: return 1.0000001
    return p[order][ok[-1]]
RULES = {
    "shipped": lambda pf, y: choose_threshold(pf[0], y, B, 5).threshold,
    "ucb75": lambda pf, y: choose_threshold(pf[0], y, B, 5, 0.75).threshold,
    "pooled5": lambda pf, y: pooled(pf, y, B),
    "pooled3": lambda pf, y: pooled(pf, y, B, R=3),
    "pooled5_ucb60": lambda pf, y: pooled(pf, y, B, 0.6),
    "pooled5_ucb75": lambda pf, y: pooled(pf, y, B, 0.75),
    "pooled5_b0.8": lambda pf, y: pooled(pf, y, 0.008),
    "shipped_b0.8": lambda pf, y: choose_threshold(pf[0], y, 0.008, 5).threshold,
    "platt5": lambda pf, y: platt(pf, y, B),
}
res = collections.defaultdict(dict)
for k in keys:
    g = lambda f: z[f"{k}|{f}"]
    pf, pe, y, acc_e, cut = g("pf"), g("pe"), g("y"), g("acc_e"), float(g("cut"))
    for name, rule in RULES.items():
        t = rule(pf, y)
        res[name][k] = test_metrics(pe >= t, acc_e, cut)
    # oracle
    for t in np.unique(np.concatenate([pe, [1.1]])):
        r = test_metrics(pe >= t, acc_e, cut)
        if r["CTE"] <= 1.0 + 1e-9:
            res["oracle"][k] = r; break
cells = sorted({k.rsplit("|", 1)[0] for k in keys})   # setting|method|cutoff
methods = ("da-classifier", "egis-distil", "egis-tv-distil")
print("rule | per method: seed-cells CTE<=1 (of n) / cells(mean) CTE<=1 / mean CTE / mean YL | goal vs DA same rule (of 12) / vs DA shipped")
for name in list(RULES) + ["oracle"]:
    r = res[name]
    cellm = {}
    for c in cells:
        ks = [k for k in keys if k.rsplit("|", 1)[0] == c]
        cellm[c] = {m: np.mean([r[k][m] for k in ks]) for m in ("CTE", "YL")}
    parts = []
    for m in methods:
        ks = [k for k in keys if k.split("|")[1] == m]
        cs = [c for c in cells if c.split("|")[1] == m]
        parts.append(f"{m}: {sum(r[k]['CTE'] <= 1 + 1e-9 for k in ks)}/{len(ks)} {sum(cellm[c]['CTE'] <= 1 + 1e-6 for c in cs)}/{len(cs)} "
                     f"{np.mean([cellm[c]['CTE'] for c in cs]):.2f} {np.mean([cellm[c]['YL'] for c in cs]):.2f}")
    goal = []
    for m in methods[1:]:
        n_same = n_ship = 0
        for c in cells:
            s, mm, cu = c.split("|")
            if mm != m: continue
            da = f"{s}|da-classifier|{cu}"
            if da not in cellm: continue
            own = cellm[c]
            n_same += own["CTE"] <= 1 + 1e-6 and own["YL"] <= cellm[da]["YL"] + 1e-6
        goal.append(f"{m} {n_same}")
    print(f"{name:14s} | " + " | ".join(parts) + " | " + ", ".join(goal))
