import json, sys, collections
import numpy as np
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
g = collections.defaultdict(list)
for r in rows: g[(r["variant"], r["method"])].append(r)
cells = collections.defaultdict(dict)
for r in rows: cells[(r["variant"], r["method"], r["setting"], r["cutoff"])].setdefault("rows", []).append(r)
print("variant method n | TA | oracle YL | rule CTE/YL, cells CTE<=1 | u75 CTE/YL, cells CTE<=1")
for (v, m), rs in sorted(g.items(), key=lambda x: (x[0][1], x[0][0])):
    a = lambda k: np.mean([r[k] for r in rs])
    cs = [c["rows"] for key, c in cells.items() if key[0] == v and key[1] == m]
    held = lambda k: sum(np.mean([r[k] for r in c]) <= 1 + 1e-6 for c in cs)
    print(f"{v:8s} {m:15s} {len(rs):3d} | {a('TA'):.2f} | {a('oracle_YL'):.2f} | {a('rule_CTE'):.2f}/{a('rule_YL'):.2f} {held('rule_CTE')}/{len(cs)} | {a('u75_CTE'):.2f}/{a('u75_YL'):.2f} {held('u75_CTE')}/{len(cs)}")
