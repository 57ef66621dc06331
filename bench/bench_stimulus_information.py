"""How much does a stimulus set tell about the chips, before any choice of K images? (issue #18:
stimuli that tell chips apart)

Annealing can only pick among what a stimulus set offers, and on 1000 labelled chips it barely
beats chance (bench_chance_level.py), so comparing stimulus sets through annealed choices mixes
the set's information with the search's luck. This bench compares sets directly, on the
labelled chips a seed-protocol run already measured (``scripts/seed_protocol.sh``), plus any
new synthetic set given with ``--sid NAME=DIR``, and with ``--boundary NAME`` the run's SID
blended onto the nominal model's decision boundaries (:func:`boundary_mixes`); their responses
on the same labelled chips are simulated once and kept in ``--cache``:

* **random K-sets, cross-validated:** for ``--sets`` random K-sets of each stimulus set, the
  compaction's booster (egis.compaction.BoosterConfig) is scored by 5-fold stratified
  cross-validation over the labelled chips (the same folds for every set). ``TA`` is the mean
  out-of-fold accuracy over the sets, ``sd`` its spread from set to set; ``YL@TE1%`` the yield
  loss (% of chips) at the strictest out-of-fold pass threshold whose test escapes stay within
  1% of the chips: the cost of an escape budget with that stimulus set. ``--detectors`` scores
  the same sets with other detectors too (more boosting rounds, logistic regression, the
  booster on PCA-rotated features), to tell a weak stimulus set from a weak detector; and
  ``--diverse`` also scores, per set, the K-sets whose images' margins are least correlated
  over the chips (:func:`diverse_sets`), and ``--low-shared`` random sets of the images least
  tied to the factor all responses share (:func:`low_shared_sets`): choice rules that need no
  labels.
* **what its responses vary with:** each image's margin (nominal-majority logit minus the
  runner-up) over the chips, for the first 400 images. ``PC1%`` is the share of the
  standardised margins' variance in their first principal component, ``R2 PC1`` / ``R2 PC1-10``
  / ``R2 PC1-30`` the share of the chips' true accuracy a linear fit on the first 1 / 10 / 30
  components explains. A large PC1 that explains little is a factor common to every image's
  response that says little about accuracy: what a detector must see past.

The real-image row (``real``) is the dataset-aware reference: the information a data-free set
would need to match. Usage:

    python bench/bench_stimulus_information.py runs/seed_vgg16_f3 [--variability typical]
        [--stimuli egis,real,uniform] [--sid va=runs/x/sid_va] [--boundary boundary]
        [--model models/cifar10_vgg16/model.onnx] [--cache runs/x/cache] [-k 4] [--sets 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from egis.synthesis.sid import read_sid_images  # noqa: E402
from egis.toolkit.model import LoadedModel, load_model  # noqa: E402
from egis.compaction import BoosterConfig, one_native_thread, stratified_folds  # noqa: E402
from egis.escape import choose_threshold  # noqa: E402
from egis.responses import evaluation_responses  # noqa: E402
from egis.toolkit.labels import Cutoff, pass_fail, read_labels  # noqa: E402
from egis.toolkit.signatures import signatures  # noqa: E402

def _detectors() -> dict[str, Callable[[], Any]]:
    """The detectors ``--detectors`` can compare: the compaction's booster and variants of it
    that might separate chips better from the same K x M logits."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "booster": lambda: BoosterConfig().make(),
        "booster-100": lambda: HistGradientBoostingClassifier(      # 5x the rounds at a third of the rate
            max_iter=100, learning_rate=0.1, max_depth=3, max_leaf_nodes=8, max_bins=64,
            early_stopping=False, random_state=0),
        "logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "pca-booster": lambda: make_pipeline(                        # rotated axes: contrasts between images
            StandardScaler(), PCA(whiten=True), BoosterConfig().make()),
    }


ESCAPE_BUDGET = 0.01     # the YL@TE1% column: escapes allowed, as a fraction of all chips
FOLDS = 5                # out-of-fold probabilities come from this many stratified folds
PC_IMAGES = 400          # images per set in the margin analysis


def labelled_chip_responses(run: Path, variability: str, model: LoadedModel, name: str,
                            images: np.ndarray, cache: Path) -> np.ndarray:
    """(chips, N, M) responses of the run's labelled chips to ``images``, simulated once and
    kept in the evaluation's per-set response cache layout (egis.responses.response_caches), so
    ``egis evaluate --responses CACHE`` on the same populations reuses them."""
    from egis.responses import chip_responses

    base = run / "pops" / variability
    started = time.perf_counter()
    logits = chip_responses(model, base / "labelled.json", base / "labelled_accuracy.csv", {name: images},
                            cache).logits[name]
    print(f"{name}: {logits.shape[0]} chips x {len(images)} images from {cache} "
          f"({time.perf_counter() - started:.0f} s, simulating them if absent)")
    return logits


def boundary_mixes(model: LoadedModel, sid_dir: Path, seed: int = 0, steps: int = 14) -> np.ndarray:
    """Images on the nominal model's decision boundaries, built from a SID alone (data-free).

    Each SID image x_i is blended with a random SID image x_j of another predicted class,
    (1 - a) x_i + a x_j, and a is bisected until the nominal model's margin for x_i's class
    just stays >= 0: the blend sits where x_i's class is about to give way. The hypothesis it
    tests (issue #18): confident synthetic images sit far from every boundary, where chip
    deviations barely move the prediction, so images on a boundary should tell chips apart
    better."""
    from egis.toolkit.engine import ChipSimulator

    sid = read_sid_images(sid_dir, model.sha256).astype(np.float32)
    simulator = ChipSimulator(model, threads=2)
    weights = simulator.nominal_weights()

    def logits(images: np.ndarray) -> np.ndarray:
        return np.concatenate([simulator.logits(weights, images[i:i + 256])
                               for i in range(0, len(images), 256)]).astype(np.float64)

    source = logits(sid).argmax(axis=1)
    rng = np.random.default_rng(seed)
    partner = np.empty(len(sid), dtype=np.intp)
    for i in range(len(sid)):
        others = np.nonzero(source != source[i])[0]
        partner[i] = others[rng.integers(len(others))]
    low, high = np.zeros(len(sid)), np.ones(len(sid))

    def blend(a: np.ndarray) -> np.ndarray:
        return ((1 - a)[:, None, None, None] * sid + a[:, None, None, None] * sid[partner]).astype(np.float32)

    for _ in range(steps):
        middle = (low + high) / 2
        z = logits(blend(middle))
        rows = np.arange(len(sid))
        own = z[rows, source]
        z[rows, source] = -np.inf
        keeps = own - z.max(axis=1) >= 0
        low, high = np.where(keeps, middle, low), np.where(keeps, high, middle)
    return blend(low)


def escape_budget_yield_loss(p_pass: np.ndarray, y: np.ndarray, budget: float = ESCAPE_BUDGET) -> float:
    """Yield loss (% of chips) at the threshold the shipped escape-budget rule picks on these
    out-of-fold probabilities (egis.escape.choose_threshold): the lowest whose escapes stay
    within ``budget``; chips tied at one probability pass or fail together, as on a tester."""
    return choose_threshold(p_pass, y, budget, folds=FOLDS).validation_yield_loss * 100


def image_margins(logits: np.ndarray, images: int | None = None) -> np.ndarray:
    """(chips, images) margin of each image's nominal-majority class over the runner-up."""
    z = np.asarray(logits[:, :images] if images else logits, dtype=np.float64)
    n = z.shape[1]
    top = z.mean(axis=0).argmax(axis=1)
    others = z.copy()
    others[:, np.arange(n), top] = -np.inf
    return z[:, np.arange(n), top] - others.max(axis=2)


def random_sets(n: int, k: int, sets: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(n, k, replace=False)) for _ in range(sets)]


def diverse_sets(logits: np.ndarray, k: int, sets: int, seed: int, candidates: int = 3000) -> list[np.ndarray]:
    """The ``sets`` of ``candidates`` random K-sets whose images' margins are least correlated
    over the chips (mean pairwise |r|): images that each see something the others do not."""
    corr = np.abs(np.corrcoef(image_margins(logits).T))
    pool = random_sets(logits.shape[1], k, candidates, seed + 1)
    upper = np.triu_indices(k, 1)
    redundancy = np.array([corr[np.ix_(chosen, chosen)][upper].mean() for chosen in pool])
    return [pool[i] for i in np.argsort(redundancy, kind="stable")[:sets]]


def low_shared_sets(logits: np.ndarray, k: int, sets: int, seed: int, fraction: float = 0.1) -> list[np.ndarray]:
    """``sets`` random K-sets of the ``fraction`` of images whose margins correlate least with
    the first principal component of all the images' margins: the images least dominated by
    the factor every response shares (see margin_structure), which says little about accuracy."""
    margin = image_margins(logits)
    scaled = (margin - margin.mean(axis=0)) / (margin.std(axis=0) + 1e-12)
    _, s, vt = np.linalg.svd(scaled, full_matrices=False)
    loading = np.abs(vt[0]) * s[0] / np.sqrt(len(scaled))      # |corr| of each image with PC1's score
    pool = np.sort(np.argsort(loading, kind="stable")[: max(k + 1, int(fraction * len(loading)))])
    return [pool[chosen] for chosen in random_sets(len(pool), k, sets, seed)]


def set_scores(logits: np.ndarray, y: np.ndarray, chosen_sets: list[np.ndarray], folds: list,
               make_detector: Callable[[], Any]) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold TA and YL@TE1% (each in %) of each K-set."""
    tas, yls = [], []
    for chosen in chosen_sets:
        x = signatures(logits, chosen)
        p_pass = np.zeros(len(y))
        with one_native_thread():
            for train, val in folds:
                detector = make_detector()
                detector.fit(x[train], y[train])
                p_pass[val] = detector.predict_proba(x[val])[:, 1]
        tas.append(np.mean((p_pass >= 0.5) == y) * 100)
        yls.append(escape_budget_yield_loss(p_pass, y))
    return np.asarray(tas), np.asarray(yls)


def margin_structure(logits: np.ndarray, accuracy: np.ndarray) -> tuple[float, list[float]]:
    """PC1's share of the standardised margins' variance, and R^2 of accuracy on PCs 1/10/30."""
    margin = image_margins(logits, PC_IMAGES)
    scaled = (margin - margin.mean(axis=0)) / (margin.std(axis=0) + 1e-12)
    u, s, _ = np.linalg.svd(scaled, full_matrices=False)
    share = float(s[0] ** 2 / np.sum(s ** 2))
    r2 = []
    for count in (1, 10, 30):
        design = np.c_[np.ones(len(accuracy)), u[:, :count]]
        fitted = design @ np.linalg.lstsq(design, accuracy, rcond=None)[0]
        r2.append(float(1 - np.var(accuracy - fitted) / np.var(accuracy)))
    return share, r2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--variability", default="typical")
    parser.add_argument("--stimuli", default="egis,real,uniform", help="cached sets of the run to compare")
    parser.add_argument("--sid", action="append", default=[], metavar="NAME=DIR",
                        help="a further synthetic set: its responses are simulated on the labelled chips")
    parser.add_argument("--boundary", metavar="NAME",
                        help="also the run's SID blended onto the nominal decision boundaries (boundary_mixes)")
    parser.add_argument("--model", type=Path, help="the run's model (needed with --sid and --boundary)")
    parser.add_argument("--cache", type=Path, help="where --sid responses are kept (default RUN/bench_cache)")
    parser.add_argument("--detectors", default="booster", help="comma-separated: " + ", ".join(_detectors()))
    parser.add_argument("--diverse", action="store_true",
                        help="also the most diverse K-sets of each stimulus set (diverse_sets)")
    parser.add_argument("--low-shared", action="store_true",
                        help="also random K-sets of the images least tied to the shared factor (low_shared_sets)")
    parser.add_argument("-k", type=int, default=4)
    parser.add_argument("--sets", type=int, default=30)
    parser.add_argument("--cutoffs", default="A50,A60,A70")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if (args.sid or args.boundary) and args.model is None:
        parser.error("--sid and --boundary need --model")
    detectors = _detectors()
    for name in args.detectors.split(","):
        if name not in detectors:
            parser.error(f"unknown detector {name!r}; choose from {', '.join(detectors)}")
    model = load_model(args.model) if args.model else None

    cached = evaluation_responses(args.run / f"eval_{args.variability}",
                                  args.run / "pops" / args.variability / "labelled.json").logits
    cache = args.cache or args.run / "bench_cache"
    sets = {}
    for name in args.stimuli.split(","):
        if name not in cached:
            parser.error(f"{name!r} is not cached in the run; it holds {sorted(cached)}")
        sets[name] = cached[name]
    for entry in args.sid:
        name, _, folder = entry.partition("=")
        if not name or not folder:
            parser.error(f"--sid takes NAME=DIR, got {entry!r}")
        images = read_sid_images(Path(folder), model.sha256)
        sets[name] = labelled_chip_responses(args.run, args.variability, model, name, images, cache)
    if args.boundary:
        started = time.perf_counter()
        images = boundary_mixes(model, args.run / "sid", seed=args.seed)
        print(f"{args.boundary}: {len(images)} boundary blends of the run's SID in {time.perf_counter() - started:.0f} s")
        sets[args.boundary] = labelled_chip_responses(args.run, args.variability, model, args.boundary,
                                                      images, cache)
    accuracy = read_labels(args.run / "pops" / args.variability / "labelled_accuracy.csv").accuracies
    print(f"{args.run} {args.variability}: {len(accuracy)} labelled chips, K = {args.k}, {args.sets} random "
          f"sets per stimulus set, 5-fold cross-validation")
    print("stimulus | PC1% | R2 PC1, PC1-10, PC1-30 (of accuracy, on the margins of each set's first "
          f"{PC_IMAGES} images or all it has)")
    for name, logits in sets.items():
        share, r2 = margin_structure(logits, accuracy)
        print(f"{name} | {share * 100:.0f} | " + " ".join(f"{v:.2f}" for v in r2))
    print("cutoff | stimulus | detector | TA mean sd (max) | YL@TE1% mean sd | seconds")
    kinds_of: dict[str, dict[str, list[np.ndarray]]] = {}   # the label-free choices: the same at every cutoff
    for name, logits in sets.items():
        kinds_of[name] = {"": random_sets(logits.shape[1], args.k, args.sets, args.seed)}
        if args.diverse:
            kinds_of[name][" (diverse)"] = diverse_sets(logits, args.k, args.sets, args.seed)
        if args.low_shared:
            kinds_of[name][" (low shared)"] = low_shared_sets(logits, args.k, args.sets, args.seed)
    for cutoff in args.cutoffs.split(","):
        y = pass_fail(accuracy, Cutoff.parse(cutoff).threshold(accuracy)).astype(np.int64)
        folds = stratified_folds(y, FOLDS, np.random.default_rng([args.seed, 1]), repeats=1)
        for name, logits in sets.items():
            for kind, chosen_sets in kinds_of[name].items():
                for detector in args.detectors.split(","):
                    started = time.perf_counter()
                    tas, yls = set_scores(logits, y, chosen_sets, folds, detectors[detector])
                    print(f"{cutoff} | {name}{kind} | {detector} | {tas.mean():.2f} {tas.std():.2f} ({tas.max():.1f}) | "
                          f"{yls.mean():.1f} {yls.std():.1f} | {time.perf_counter() - started:.0f}", flush=True)


if __name__ == "__main__":
    main()
