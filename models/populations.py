"""Ship a reference model's chip populations and the customer's labels for them.

For each variability setting (typical: 25% systematic / 25% correlated / 50% random;
extreme: 50% / 0% / 50%) this makes a labelled population and an evaluation population and
labels both with the customer's data, as `egis duts make` + `egis label --with-accuracy`
would. Output, under ``models/<name>/populations/<variability>/``:

- labelled.json, evaluation.json          population specs (seeded, reproducible)
- labelled_A50.csv, _A60.csv, _A70.csv     what the fab receives: dut,pass only (+ .json side files)
- labelled_accuracy.csv, evaluation_accuracy.csv   the customer's evaluation copies (with accuracy)
- ../stats.json and ../accuracy_<variability>.png: the chip-accuracy distribution

Another plugin's setting instead of the generic presets (``--plugin``, ``--set``, its folder
name ``--variability``), written elsewhere than the shipped folder with ``--output``:

Usage: python -m egis.models.populations digits --sigma 0.3 --count 1000
       python -m egis.models.populations cifar10_vgg16 --sigma 0.3 --count 1000 --images 1000
       python -m egis.models.populations cifar10_vgg16 --plugin aihwkit --set t_inference=86400 \
           --variability reram_1day --count 200 --images 256 -o docs/results/X/populations
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from egis.toolkit.io import write_json
from egis.toolkit.labels import Cutoff, chip_accuracies, labels_meta, write_labels, write_side_file
from egis.toolkit.model import load_model
from egis.toolkit.population import Population, PopulationSpec

PRESETS = ("typical", "extreme")
CUTOFFS = ("A50", "A60", "A70")
SEEDS = {"labelled": 1, "evaluation": 2}
CIFAR_ZIP = Path(__file__).resolve().parents[2] / "shared/datasets/cifar10/cifar10-jpeg.zip"


def customer_data(name: str, model, images: int | None, seed: int = 0,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The customer's private labelled images for a reference model: (x, y) subsampled to
    ``images``, and the whole test split (what the evaluation's dataset-aware baseline reads)."""
    if name == "digits":
        from egis.toolkit.data import digits_split as split

        _, _, x, y = split()
    else:
        import os

        from egis.toolkit.data import load_labelled_images

        zip_path = Path(os.environ.get("EGIS_CIFAR10_ZIP", CIFAR_ZIP))
        data = load_labelled_images(zip_path, model.contract, model.num_classes, subdir="test")
        x, y = data.pixels, data.labels
    full = x
    if images is not None and images < len(y):
        keep = np.sort(np.random.default_rng(seed).choice(len(y), images, replace=False))
        x, y = x[keep], y[keep]
    return x.astype(np.float32), y.astype(np.int64), full


def generic_settings(sigma: float, presets=PRESETS) -> dict[str, tuple[str, dict]]:
    """The shipped settings: folder name -> (plugin, params) of the seed's generic presets."""
    return {preset: ("generic", {"sigma_tot": sigma, "preset": preset}) for preset in presets}


def make(name: str, sigma: float | None, count: int, images: int | None, presets=PRESETS,
         responses: tuple[Path, Path, int] | None = None,
         settings: dict[str, tuple[str, dict]] | None = None, out: Path | None = None) -> dict:
    """Populations, labels and statistics of one model (see the module docstring).

    ``settings`` (folder -> (plugin, params)) replaces the generic ``presets`` at ``sigma``;
    ``out`` replaces ``models/<name>/populations``.
    ``responses=(RESULTS_DIR, SID_DIR, STIMULI)`` also fills the response cache that
    ``egis evaluate MODEL --sid SID_DIR --images STIMULI -o RESULTS_DIR --real <test split>``
    reads, in the same pass over the chips (each chip's weights are drawn once, not twice).
    """
    from egis.toolkit.registry import load_plugin

    settings = settings if settings is not None else generic_settings(sigma, presets)
    model_path = Path(__file__).parent / name / "model.onnx"
    model = load_model(model_path)
    x, y, real = customer_data(name, model, images)
    stimuli = None
    if responses is not None:
        from egis.stimuli import EVALUATION_SEED, load_stimuli

        results_dir, sid_dir, stimuli_count = responses
        stimuli = load_stimuli(model, sid_dir, real, stimuli_count, seed=EVALUATION_SEED, work_dir=results_dir)
    out = out if out is not None else Path(__file__).parent / name / "populations"
    stats = json.loads((out / "stats.json").read_text()) if (out / "stats.json").exists() else {}
    for preset, (plugin, params) in settings.items():
        folder = out / preset
        accuracies = {}
        params = load_plugin(plugin, params).params if plugin != "generic" else params
        for chip_set, seed in SEEDS.items():
            spec = PopulationSpec(model.sha256, plugin, params, seed, count,
                                  model_path=f"models/{name}/model.onnx",
                                  note=f"{name} {preset} {chip_set} chips")
            folder.mkdir(parents=True, exist_ok=True)
            spec.save(folder / f"{chip_set}.json")
            started = time.perf_counter()
            population = Population(spec, model)
            if stimuli is None:
                acc = chip_accuracies(population, x, y)
            else:
                acc = _label_and_respond(population, folder / f"{chip_set}.json", x, y, stimuli,
                                         responses[0] / "cache")
            seconds = time.perf_counter() - started
            accuracies[chip_set] = acc
            threshold = Cutoff.parse("A50").threshold(acc)
            write_labels(folder / f"{chip_set}_accuracy.csv", range(count), acc >= threshold, acc)
            write_side_file(folder / f"{chip_set}_accuracy.csv", labels_meta(
                cutoff="A50", threshold=threshold, passed=acc >= threshold, population_sha256=spec.sha256(),
                model_sha256=model.sha256, images=len(y), seconds=round(seconds, 2),
                chips_per_s=round(count / seconds, 2), images_per_s=round(count * len(y) / seconds),
                stimulus_images=0 if stimuli is None else sum(len(v) for v in stimuli.values())))
        lab = accuracies["labelled"]
        for text in CUTOFFS:
            threshold = Cutoff.parse(text).threshold(lab)
            write_labels(folder / f"labelled_{text}.csv", range(count), lab >= threshold)
            write_side_file(folder / f"labelled_{text}.csv", labels_meta(
                cutoff=text, threshold=threshold, passed=lab >= threshold,
                population_sha256=PopulationSpec.load(folder / "labelled.json").sha256(),
                model_sha256=model.sha256, images=len(y)))
        stats[preset] = {
            chip_set: {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()),
                       "max": float(a.max()),
                       **{c: Cutoff.parse(c).threshold(a) for c in CUTOFFS}}
            for chip_set, a in accuracies.items()}
        if plugin == "generic":
            stats[preset]["sigma_tot"] = params["sigma_tot"]
            what = f"sigma_tot={params['sigma_tot']}"
        else:
            stats[preset]["plugin"], stats[preset]["params"] = plugin, params
            what = f"plugin {plugin}"
        stats[preset]["images"] = int(len(y))
        from egis.report_plots import accuracy_histogram

        accuracy_histogram(out / f"accuracy_{preset}.png", accuracies,
                           {c: Cutoff.parse(c).threshold(lab) for c in CUTOFFS},
                           f"{name}: chip accuracy, {preset} variation, {what}")
        write_json(out / "stats.json", stats)
        print(f"{name} {preset}: " + json.dumps(stats[preset]["labelled"]))
    return stats


def _label_and_respond(population: Population, pop_path: Path, x: np.ndarray, y: np.ndarray,
                       stimuli: dict[str, np.ndarray], cache_dir: Path) -> np.ndarray:
    """Accuracies, and the evaluation's response caches (one per set) filled in the same pass."""
    from egis.responses import population_lock, response_caches
    from egis.toolkit.responses import write_together

    chips = list(range(len(population)))
    caches = response_caches(pop_path, population.spec, chips, stimuli, cache_dir,
                             population.model.num_classes)
    stacked = np.concatenate([stimuli[name] for name in caches])
    with population_lock(cache_dir, pop_path):
        return write_together(list(caches.values()),
                              lambda out: chip_accuracies(population, x, y, chips, also=(stacked, out)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--sigma", type=float, default=None, help="generic's sigma_tot (the shipped presets)")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--plugin", default=None, help="another plugin's setting instead of the presets")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                        help="its parameter (repeatable)")
    parser.add_argument("--variability", default=None, help="folder name of that setting (default: the plugin)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="populations folder (default: models/<name>/populations, the shipped one)")
    parser.add_argument("--responses-for", type=Path, default=None, metavar="RESULTS_DIR",
                        help="also fill the response cache of `egis evaluate -o RESULTS_DIR`")
    parser.add_argument("--sid", type=Path, default=None, help="SID of that evaluation")
    parser.add_argument("--stimuli", type=int, default=None, help="its --images (stimuli per set)")
    args = parser.parse_args()
    responses = None
    if args.responses_for is not None:
        if args.sid is None or args.stimuli is None:
            parser.error("--responses-for needs --sid and --stimuli")
        responses = (args.responses_for, args.sid, args.stimuli)
    settings = None
    if args.plugin is not None:
        from egis.toolkit.registry import parse_settings

        settings = {args.variability or args.plugin: (args.plugin, parse_settings(args.settings))}
    elif args.sigma is None or args.settings:
        parser.error("the generic presets need --sigma (and take no --set); other plugins need --plugin")
    make(args.name, args.sigma, args.count, args.images, args.presets.split(","), responses,
         settings=settings, out=args.output)


if __name__ == "__main__":
    main()
