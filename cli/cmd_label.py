"""`egis label`: the customer's on-premises step. Accuracies stay home; only labels leave."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from egis.cli.options import layout_option, load_customer_model, mean_option, pixel_range_option, std_option

from egis.toolkit.errors import DataError


def label(
    model: Path = typer.Argument(..., help="Customer ONNX classifier."),
    population: str = typer.Argument(..., metavar="CHIPS",
                                     help="Chip set: a population spec (egis duts make), a folder, glob or list "
                                          "file of chip ONNX files, or adapter:NAME:TARGET."),
    data: Path = typer.Option(..., "--data", help="Labelled images: .npz (x, y), folder root/<class>/*, or .zip of one."),
    output: Path = typer.Option(..., "-o", "--output", help="LABELS.csv to write (plus LABELS.json)."),
    cutoff: str = typer.Option("A50", help="A<p>: p% most accurate chips pass; or an absolute accuracy."),
    cutoff_from: Optional[Path] = typer.Option(None, help="Reuse the threshold recorded in another LABELS.json (for evaluation chips)."),
    with_accuracy: bool = typer.Option(False, "--with-accuracy", help="Add each chip's accuracy (customer's own copy only)."),
    images: Optional[int] = typer.Option(None, "--images", min=1, help="Use a random subset of N images."),
    chips: Optional[str] = typer.Option(None, "--chips", help="Chips of POP: START:STOP or N (the first N); default all."),
    subdir: Optional[str] = typer.Option(None, help="Folder inside a zip/folder holding <class>/ (e.g. test)."),
    class_map: Optional[str] = typer.Option(None, help="Class order: 'a,b,c' or a JSON file; default sorted folder names."),
    seed: int = typer.Option(0, help="Seed for --images subsampling."),
    threads: Optional[int] = typer.Option(None, help="onnxruntime threads (default: up to 2)."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="auto|ADDRESS",
                                      help="Simulate chips on a Ray cluster (or $EGIS_RAY_ADDRESS; 'local' starts "
                                           "one here); results equal the local run's. Needs egis-toolkit[ray]."),
    adaptive: bool = typer.Option(False, "--adaptive",
                                  help="Give more images only to chips whose accuracy interval still straddles "
                                       "the cutoff (toolkit/adaptive.py); labels of simulated populations."),
    confidence: float = typer.Option(0.995, "--confidence", min=0.5, max=0.999999,
                                     help="Confidence of each adaptive decision (Clopper-Pearson)."),
    first: int = typer.Option(500, "--first", min=10, help="Images every chip gets in the first adaptive round."),
    decide: Optional[str] = typer.Option(None, "--decide", metavar="CUTOFFS",
                                         help="Adaptive: also decide every chip at these cutoffs (e.g. A60,A70 "
                                              "or 0.62); with --with-accuracy, accuracies are exact wherever a "
                                              "decision needed them and estimates elsewhere (column 'images')."),
    margin: float = typer.Option(0.0, "--margin", min=0.0, max=0.5,
                                 help="Adaptive: also decide at each cutoff minus this accuracy (0.01: the "
                                      "critical-escape line of egis evaluate)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                          help="Processes for chip simulation (default $EGIS_WORKERS, else 1); "
                                               "results are identical for any count."),
    layout: Optional[str] = layout_option(), pixel_range: Optional[str] = pixel_range_option(),
    mean: Optional[str] = mean_option(), std: Optional[str] = std_option(),
) -> None:
    """Label chips pass/fail with the customer's own data.

    Every argument, file and output path is checked before the first chip is simulated.
    Ties at an A<p> threshold pass (a warning says when that moves the pass fraction far from
    p%). Wall-clock figures go to LABELS.timings.json, so the labels and their side file are
    the same bytes for the same inputs."""
    from egis.toolkit.chipset import open_chip_set
    from egis.toolkit.data import load_labelled_images
    from egis.toolkit.io import check_output_file, read_json, write_json
    from egis.toolkit.labels import (Cutoff, chance_warning, chip_set_accuracies, labels_meta, pass_fail,
                                     side_file, tie_warning, write_labels, write_side_file)
    from egis.toolkit.signatures import images_sha256

    check_output_file(output)
    if side_file(output) == output:
        raise DataError(f"-o {output}: give a .csv path (the side file is {output.stem}.json)")
    if cutoff_from is not None:
        try:
            reference = read_json(cutoff_from)
        except FileNotFoundError:
            raise DataError(f"--cutoff-from {cutoff_from}: file not found") from None
        except (OSError, ValueError) as exc:
            raise DataError(f"--cutoff-from {cutoff_from} is not a labels side file ({exc})") from None
        value = reference.get("threshold") if isinstance(reference, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(f"--cutoff-from {cutoff_from} records no numeric threshold")
        rule = Cutoff.parse(str(value))
        cutoff_text = f"{reference.get('cutoff', 'threshold')} of {cutoff_from.name}"
    else:
        rule = Cutoff.parse(cutoff)
        cutoff_text = rule.text
    if not adaptive and (decide or margin):
        raise DataError("--decide and --margin only apply with --adaptive")
    deciding = [rule] + [Cutoff.parse(text) for text in (decide or "").split(",") if text.strip()]
    from egis.toolkit.runner import get_runner

    workers = get_runner(workers, ray) if (ray or workers) else None
    loaded = load_customer_model(model, layout, pixel_range, mean, std)
    chip_set = open_chip_set(population, model, model=loaded, chips=chips, threads=threads)
    if adaptive and chip_set.kind != "population":
        raise DataError("--adaptive labels simulated populations only")
    dataset = load_labelled_images(data, loaded.contract, loaded.num_classes, class_map, subdir)
    pixels, labels = dataset.pixels, dataset.labels
    if images is not None and images < len(labels):
        keep = np.sort(np.random.default_rng(seed).choice(len(labels), images, replace=False))
        pixels, labels = pixels[keep], labels[keep]

    started = time.perf_counter()
    adaptive_record = None
    if adaptive:
        from egis.toolkit.adaptive import adaptive_accuracies

        result = adaptive_accuracies(chip_set.population, pixels, labels, chip_set.indices, deciding,
                                     confidence=confidence, first=first, seed=seed, threads=threads,
                                     workers=workers, margin=margin)
        accuracies, images_used = result.accuracies, result.images_used
        adaptive_record = {"confidence": confidence, "first": first, "rounds": result.rounds,
                           "chip_images": result.chip_images_run,
                           "images_saved": round(result.images_saved, 4),
                           "decided_at": {c.text: t for c, t in zip(deciding, result.thresholds)},
                           "margin": margin, "exact_chips": int(result.exact.sum())}
    else:
        images_used = None
        accuracies = chip_set_accuracies(chip_set, pixels, labels, threads=threads, workers=workers,
                                         on_excluded=lambda cid, why: typer.echo(
                                             f"warning: chip {cid} excluded (no answer: {why})", err=True))
    seconds = time.perf_counter() - started
    keep = np.flatnonzero(np.isfinite(accuracies))
    if len(keep) < 2:
        raise DataError(f"only {len(keep)} of {len(chip_set)} chips answered; nothing to label")
    selected = [chip_set.ids[i] for i in keep]
    accuracies = accuracies[keep]
    threshold = rule.threshold(accuracies)
    passed = pass_fail(accuracies, threshold)
    for warning in (tie_warning(rule, accuracies, threshold),
                    chance_warning(threshold, loaded.num_classes, len(labels))):
        if warning:
            typer.echo(f"warning: {warning}", err=True)
    write_labels(output, selected, passed, accuracies if with_accuracy else None,
                 images_used[keep] if with_accuracy and images_used is not None else None)
    record = chip_set.record()
    write_side_file(output, labels_meta(
        cutoff=cutoff_text, threshold=threshold, passed=passed,
        population_sha256=record.get("population_sha256", ""), model_sha256=loaded.sha256,
        images=len(labels), chip_set_kind=chip_set.kind, images_sha256=images_sha256(pixels),
        **({"adaptive": adaptive_record} if adaptive_record else {}),
        # populations are bound by population_sha256; other chips one by one
        **({} if chip_set.kind == "population" else
           {"chip_identities": {cid: chip_set.identity(int(i)) for cid, i in zip(selected, keep)}})))
    rate = len(selected) / seconds
    # chip-images actually run per second (adaptive labelling runs fewer than chips x images)
    image_rate = (adaptive_record["chip_images"] if adaptive_record else len(selected) * len(labels)) / seconds
    write_json(output.with_name(output.stem + ".timings.json"),
               {"seconds": round(seconds, 3), "chips_per_s": round(rate, 3),
                "images_per_s": round(image_rate, 1)})
    typer.echo(f"{output}: {len(selected)} chips, {int(passed.sum())} pass at {cutoff_text} "
               f"(threshold accuracy {threshold:.4f}); accuracy mean {accuracies.mean():.4f} "
               f"std {accuracies.std():.4f} min {accuracies.min():.4f}; "
               f"{rate:.1f} chips/s, {image_rate:.0f} images/s"
               + (f" ({100 * adaptive_record['images_saved']:.1f}% of chip-images saved, "
                  f"{adaptive_record['exact_chips']} chips on every image)" if adaptive_record else ""))


def register(app: typer.Typer) -> None:
    app.command("label")(label)
