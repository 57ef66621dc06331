"""`egis compact`: choose K test images by annealing, train the detector, write the bundle.

Inputs are the fab's: the customer model, an SID directory (images.npz from `egis
synthesize`), the population spec and the customer's LABELS.csv (only pass/fail leaves the
customer). The chips' responses to all N images are computed once into a memory-mapped
cache (CID_DIR/cache by default, reused when model, population, images and chips match).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from toolkit.errors import DataError




def load_chip_labels(path: Path, population_sha256: str, count: int) -> tuple[list[int], np.ndarray, dict]:
    """(chip indices, labels 1=pass, LABELS.json meta) checked against the population."""
    from toolkit.labels import read_labels

    labels = read_labels(path)
    sha = labels.meta.get("population_sha256")
    if sha and sha != population_sha256:
        raise DataError(f"{path} labels another population (sha256 {sha[:12]}...)")
    chips = [int(c) for c in labels.chips]
    if len(set(chips)) != len(chips):
        raise DataError(f"{path} lists a chip more than once")
    bad = [c for c in chips if not 0 <= c < count]
    if bad:
        raise DataError(f"{path} names chip {bad[0]}, outside the population (0..{count - 1})")
    return chips, labels.passed.astype(np.int64), labels.meta


def write_reward(cid_dir: Path, result: Any) -> None:
    """reward.csv (every iteration) and reward.png (best and current reward)."""
    from egis.plots import line_plot
    from toolkit.io import atomic_open

    with atomic_open(cid_dir / "reward.csv") as handle:
        writer = csv.writer(handle)
        writer.writerow(["iteration", "temperature", "candidate", "current", "best", "accepted"])
        for s in result.history:
            writer.writerow([s.iteration, f"{s.temperature:.6g}", f"{s.candidate:.6f}",
                             f"{s.current:.6f}", f"{s.best:.6f}", int(s.accepted)])
    its = [s.iteration for s in result.history]
    line_plot(cid_dir / "reward.png",
              {"best": (its, [s.best for s in result.history]),
               "current": (its, [s.current for s in result.history])},
              title=f"compaction K={len(result.indices)}: mean validation accuracy",
              xlabel="iteration", ylabel="reward")


def bundle_info(model: Any, spec: Any, labels_meta: dict, chips: list[int], result: Any,
                extra: dict[str, Any]) -> dict[str, Any]:
    """Manifest facts (everything but the bundle's own layout and hashes)."""
    import toolkit

    contract = model.contract
    return {
        "model": {"sha256": model.sha256, "input_name": model.input_name,
                  "output_name": model.output_name, "num_classes": model.num_classes,
                  "input_shape": [model.fixed_batch, *contract.image_shape],
                  "fixed_batch": model.fixed_batch, "layout": contract.layout,
                  "input_contract": contract.to_dict()},
        "cutoff": {"definition": "a chip passes when its accuracy on the customer's data is >= "
                                 "threshold; the detector predicts that label",
                   "cutoff": labels_meta.get("cutoff"), "threshold": labels_meta.get("threshold")},
        "population": {"sha256": spec.sha256(), "plugin": spec.plugin, "params": spec.params,
                       "seed": spec.seed, "count": spec.count, "labelled_chips": len(chips)},
        "tool": {"name": "egis-toolkit", "version": toolkit.__version__},
        # no wall-clock fields: the same inputs and seed must give the same bundle bytes
        "creation": {**{k: v for k, v in result.to_dict().items() if k != "seconds"}, **extra},
    }


def compact_command(
    model_path: Path = typer.Argument(..., metavar="MODEL.onnx", help="Customer ONNX classifier."),
    sid_dir: Path = typer.Argument(..., metavar="SID_DIR", help="Synthetic images (egis synthesize)."),
    population: Path = typer.Argument(..., metavar="POP.json", help="Population spec (egis duts make)."),
    labels_path: Path = typer.Argument(..., metavar="LABELS.csv", help="Pass/fail labels (egis label)."),
    k: int = typer.Option(4, "-k", help="Number of test images K."),
    out: Path = typer.Option(..., "-o", "--out", help="CID directory to write."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the annealing and its splits."),
    trials: int = typer.Option(5, "--trials", min=1, help="Random 80/20 splits per reward (I)."),
    bundle: bool = typer.Option(True, "--bundle/--no-bundle", help="Also train the detector and write CID_DIR/bundle."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Signature cache directory (default CID_DIR/cache)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=1, help="Parallel trials (default: min(trials, CPUs))."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="onnxruntime threads for chip simulation."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Select K test images (Algorithm 1), then train and export the pass/fail detector."""
    from egis.compaction import BoosterConfig, compact
    from egis.plots import image_grid
    from egis.sid import read_sid_images
    from toolkit.io import sha256_file, write_json, write_npz
    from toolkit.population import open_population
    from toolkit.signatures import compute_signatures, images_sha256

    pop = open_population(population, model_path)
    model, spec = pop.model, pop.spec
    pixels = read_sid_images(sid_dir, model.sha256)
    chips, labels, labels_meta = load_chip_labels(labels_path, spec.sha256(), len(pop))
    if not 1 <= k < len(pixels):
        raise DataError(f"-k must be between 1 and {len(pixels) - 1} for {len(pixels)} images")
    logits = compute_signatures(pop, pixels, chips, cache_dir=cache or out / "cache",
                                progress=not quiet, threads=threads)
    config = BoosterConfig()
    result = compact(logits, labels, k, seed=seed, trials=trials, config=config, n_jobs=jobs,
                     progress=not quiet)
    chosen = pixels[result.indices]
    write_json(out / "indices.json", result.to_dict())
    write_npz(out / "images.npz", images=chosen, indices=np.asarray(result.indices, np.int64))
    write_reward(out, result)
    image_grid(out / "cid.png", chosen, [f"#{i}" for i in result.indices],
               layout=model.contract.layout, vmin=model.contract.pixel_min,
               vmax=model.contract.pixel_max, title=f"CID: K={k}, reward {result.reward:.3f}")
    message = (f"{out}: K={k} images {result.indices}, reward {result.initial_reward:.3f} -> "
               f"{result.reward:.3f} in {len(result.history)} iterations ({result.seconds:.1f} s)")
    if bundle:
        from egis.detector import build_detector
        from toolkit.bundle import write_bundle
        from toolkit.signatures import signatures

        detector, onnx_bytes = build_detector(logits, labels, result.indices, config)
        train_acc = float(np.mean(detector.predict(signatures(logits, result.indices)) == labels))
        extra = {"images_sha256": images_sha256(pixels), "labels_sha256": sha256_file(labels_path),
                 "detector_training_accuracy": train_acc}
        info = bundle_info(model, spec, labels_meta, chips, result, extra)
        write_bundle(out / "bundle", model.contract.normalize(chosen), onnx_bytes, info, chosen)
        message += f"; bundle {out / 'bundle'} (detector training accuracy {train_acc:.3f})"
    typer.echo(message)


def register(app: typer.Typer) -> None:
    app.command("compact")(compact_command)
