"""How many healthy chips does the bundle's signature guard call unknown?

Builds the bundle's guard exactly as `egis compact` does (annealing on the labelled chips'
signatures, guard fitted on the chosen images) for a shipped model and population, then runs
the held-out evaluation chips through the chosen images and counts those the guard flags,
with their reasons. A healthy population should give ~0.

    python scripts/guard_on_shipped.py digits --sid runs/digits/sid --variability typical
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import numpy as np

from egis.compaction import compact
from egis.models.registry import reference_model_path
from egis.synthesis.sid import read_sid_images
from egis.toolkit.engine import population_logits
from egis.toolkit.guard import SignatureGuard
from egis.toolkit.labels import read_labels
from egis.toolkit.population import open_population
from egis.toolkit.signatures import compute_signatures, signatures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--sid", type=Path, required=True)
    parser.add_argument("--variability", default="typical")
    parser.add_argument("--chips", type=int, default=None, help="first N chips of each set (default all)")
    parser.add_argument("-k", type=int, default=4)
    parser.add_argument("--cache", type=Path, default=Path("runs/guard_cache"))
    args = parser.parse_args()
    folder = reference_model_path(args.model).parent / "populations" / args.variability
    labelled = open_population(folder / "labelled.json", reference_model_path(args.model))
    evaluation = open_population(folder / "evaluation.json", reference_model_path(args.model))
    labels = read_labels(folder / "labelled_A50.csv")
    n = args.chips or len(labels.chips)
    chips = labels.chips[:n].tolist()
    pixels = read_sid_images(args.sid, labelled.model.sha256)
    started = time.perf_counter()
    logits = compute_signatures(labelled, pixels, chips, cache_dir=args.cache / f"{args.model}-{args.variability}-{n}")
    result = compact(logits, labels.passed[:n].astype(np.int64), args.k, seed=0, trials=3, progress=False)
    guard = SignatureGuard.fit(signatures(logits, result.indices), m=labelled.model.num_classes)
    eval_chips = list(range(min(n, len(evaluation))))
    eval_logits = population_logits(evaluation, pixels[result.indices], eval_chips, progress=True)
    reasons = [guard.check(row) for row in eval_logits.reshape(len(eval_chips), -1)]
    flagged = [(c, r) for c, r in zip(eval_chips, reasons) if r]
    kinds = collections.Counter(r.split(":")[1].split("(")[0].strip()[:40] if ":" in r else r for _, r in flagged)
    truth = read_labels(folder / "evaluation_accuracy.csv").accuracies[:len(eval_chips)]
    print(json.dumps({"model": args.model, "variability": args.variability, "labelled_chips": n,
                      "evaluation_chips": len(eval_chips), "k": args.k, "indices": result.indices,
                      "flagged": len(flagged), "flagged_chips": [c for c, _ in flagged][:20],
                      "flagged_accuracies": [round(float(truth[c]), 4) for c, _ in flagged][:20],
                      "reasons": dict(kinds), "guard_limit": guard.limit,
                      "seconds": round(time.perf_counter() - started, 1)}, indent=2))


if __name__ == "__main__":
    main()
