import json, sys, numpy as np
rows=[json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
# DA reference per cell from compare csvs
import csv
da={}
for f in ["vgg16_typical","mobilenet_typical","vgg16_extreme","mobilenet_extreme"]:
    for r in csv.DictReader(open(f"docs/results/budget_ranking/{f}.csv")):
        if r["method"]=="da-classifier":
            m,v=f.split("_")
            da.setdefault((f"{m}:{v}",r["cutoff"]),[]).append((float(r["CTE"]),float(r["YL"])))
rules=[k for k in rows[0] if isinstance(rows[0][k],list)]
cells=sorted({(r["setting"],r["cutoff"]) for r in rows})
print("rule: mean CTE / YL / TE; est. labelled / unlabelled escape; cells CTE<=1; cells goal (CTE<=1 & YL<=DA's)")
for rule in rules:
    a=np.array([r[rule] for r in rows])
    held=goal=0
    for c in cells:
        m=np.mean([r[rule] for r in rows if (r["setting"],r["cutoff"])==c],axis=0)
        d=np.mean(da[c],axis=0)
        held+=m[0]<=1.0+1e-9; goal+=(m[0]<=1.0+1e-9) and m[1]<=d[1]+1e-9
    print(f"{rule:14s} {a[:,0].mean():.2f} / {a[:,1].mean():.2f} / {a[:,2].mean():.2f}; {a[:,3].mean():.2f} / {a[:,4].mean():.2f}; {held} of {len(cells)}; {goal}")
d=np.array([np.mean(da[c],axis=0) for c in cells]); print("DA", d.mean(0).round(2), sum(d[:,0]<=1+1e-9))
