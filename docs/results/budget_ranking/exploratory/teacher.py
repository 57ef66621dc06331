import json, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from egis.distil import Teacher, TeacherConfig
from egis.compaction import one_native_thread
from egis.responses import cached_responses, responses_dir, widest_cached
from egis.toolkit.labels import Cutoff, read_labels
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier as H
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline

def margins(x, consensus):
    n = x.shape[1]
    chosen = x[:, np.arange(n), consensus]
    others = np.where(np.eye(x.shape[2], dtype=bool)[consensus], -np.inf, x).max(axis=2)
    return chosen - others

class Variant:
    def __init__(self, kind): self.kind = kind
    def fit(self, x, y):
        self.t = Teacher(TeacherConfig(components=100) if self.kind == "pca100" else TeacherConfig(components=20) if self.kind == "pca20"
                         else TeacherConfig(max_iter=400, learning_rate=0.05) if self.kind == "hgb400" else None).fit(x, y)
        if self.kind in ("margin_pca", "margin_hgb", "logreg", "margin_logreg"):
            f = self.feats(x, fit=True)
            with one_native_thread():
                if self.kind in ("logreg", "margin_logreg"):
                    self.m = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000)).fit(f, y)
                else:
                    self.m = H(max_iter=200, learning_rate=0.1, max_depth=3, early_stopping=False, random_state=0).fit(f, y)
        return self
    def feats(self, x, fit=False):
        t = self.t
        if self.kind == "logreg":
            return t.features(x)
        m = margins(x, t.consensus)
        if self.kind == "margin_hgb":
            return np.column_stack([m, t.summary(x)])
        if fit:
            self.p = PCA(min(50, len(x) - 1), random_state=0).fit(m)
        return np.column_stack([self.p.transform(m), t.summary(x)])
    def predict(self, x):
        if self.kind in ("margin_pca", "margin_hgb", "logreg", "margin_logreg"):
            with one_native_thread():
                return self.m.predict(self.feats(x))
        return self.t.predict(x)

KINDS = ["current", "pca100", "pca20", "hgb400", "margin_pca", "margin_hgb", "logreg", "margin_logreg"]
for s in sys.argv[1:]:
    m, v, prefix = s.split(":")
    ev = Path(f"runs/distil/{prefix}{m}_{v}/eval_{v}")
    pops = Path(f"runs/seed_{m}_f3/pops/{v}")
    sweep = json.loads((ev / "sweep.json").read_text())
    stim = "egis-tv" if prefix else "egis"
    images = sweep.get("response_sets")
    folder = responses_dir(ev)
    lab = np.asarray(cached_responses(folder, pops / "labelled.json", images).logits[stim])
    held, evaluation = widest_cached(folder, pops / "evaluation.json", stim, (images or {}).get(stim))
    acc_l = read_labels(pops / "labelled_accuracy.csv").accuracies
    acc_e = read_labels(pops / "evaluation_accuracy.csv").accuracies
    lab = lab[:, held]
    out = []
    for cutoff in ("A50", "A60", "A70"):
        thr = Cutoff.parse(cutoff).threshold(acc_l)
        y, ye = (acc_l >= thr).astype(int), (acc_e >= thr).astype(int)
        res = {}
        for k in KINDS:
            t0 = time.time()
            res[k] = round(float(np.mean(Variant(k).fit(lab, y).predict(evaluation) == ye) * 100), 2)
        print(json.dumps({"setting": s, "cutoff": cutoff, "images": len(held), **res}), flush=True)
