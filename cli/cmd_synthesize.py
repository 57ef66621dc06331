"""`egis synthesize MODEL.onnx -o SID_DIR`: make test images from the model alone (EGIS).

Trains the entropy-guided generator (or makes a baseline set), samples the images and
writes the SID directory atomically. Progress and live H_c / H_s go to stderr; a one-line
summary goes to stdout.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from egis.cli.options import layout_option, load_customer_model, mean_option, pixel_range_option, std_option

from egis.toolkit.errors import EgisError


class Baseline(str, Enum):
    none = "none"
    gaussian = "gaussian"
    uniform = "uniform"
    untrained = "untrained"


@contextlib.contextmanager
def _progress(enabled: bool, num_classes: int) -> Iterator:
    """The shared progress bar, its text showing the latest H_c and H_s (and log M)."""
    from egis.toolkit.progress import progress_bar  # noqa: PLC0415

    if not enabled:
        yield None
        return
    log_m = math.log(num_classes)
    with progress_bar("training", None, enabled) as update:
        done = [0]

        def on_step(record, total: int) -> None:
            done[0] = record.iteration
            update(completed=record.iteration, total=total,
                   description=f"H_c {record.h_c:.3f} H_s {record.h_s:.3f} (log M {log_m:.3f})")

        yield on_step
        if done[0]:  # early stop: show a full bar at the iteration reached, not 210/5000
            update(total=done[0], completed=done[0])


def synthesize_command(
    model_path: Path = typer.Argument(..., metavar="MODEL.onnx", help="ONNX image classifier."),
    out: Path = typer.Option(..., "-o", "--output", help="SID directory to write (replaced atomically)."),
    images: int = typer.Option(2048, "--images", help="Number of images to sample."),
    iterations: int = typer.Option(5000, "--iterations",
                                   help="Maximum training iterations (the seed's 5000; early "
                                        "stopping usually ends far sooner)."),
    batch: int = typer.Option(256, "--batch", help="Noise vectors per iteration (>= 2 x classes)."),
    seed: int = typer.Option(0, "--seed", help="Seed of generator init and all noise."),
    lr: float = typer.Option(3e-4, "--lr", help="Adam learning rate."),
    early_stop: bool = typer.Option(True, "--early-stop/--no-early-stop",
                                    help="Stop once H_s >= 0.95 log M and H_c <= 0.1 log M held "
                                         "for --patience consecutive iterations, or at a loss "
                                         "plateau (--plateau)."),
    patience: int = typer.Option(50, "--patience", help="Iterations the targets must hold."),
    hc_warmup: Optional[int] = typer.Option(None, "--hc-warmup",
                                            help="Iterations over which the weight of H_c in the "
                                                 "loss ramps from 0 to 1 (0: the seed's loss "
                                                 "from the start). Default: see egis.synthesis."),
    # literals, not egis.synthesis's constants: importing it (torch) would slow down --help;
    # tests/test_synthesis.py checks that they agree
    plateau: int = typer.Option(500, "--plateau", min=0,
                                help="With --early-stop, also stop when the loss improved by less "
                                     "than 1% over the last N iterations after the H_c warm-up "
                                     "(a model whose confidence is capped never meets the H_c "
                                     "target). 0 disables; else at least 50."),
    checkpoint_every: int = typer.Option(250, "--checkpoint-every",
                                         help="Checkpoint to SID_DIR.checkpoint every N iterations."),
    resume: bool = typer.Option(False, "--resume", help="Continue from SID_DIR.checkpoint."),
    variation: Optional[Path] = typer.Option(None, "--variation", metavar="POPULATION.json",
                                             help="Variation-aware loss (method egis-va): also reward images "
                                                  "on which these simulated chips (egis duts make; use a "
                                                  "population with its own seed, not the evaluation's) "
                                                  "disagree. See egis.synthesis.variation."),
    variation_weight: float = typer.Option(1.0, "--variation-weight", min=0.0,
                                           help="Weight of the chips' top-class spread (with --variation)."),
    variation_chips: int = typer.Option(4, "--variation-chips", help="Chips of --variation in the torch graph."),
    variation_batch: int = typer.Option(64, "--variation-batch",
                                        help="Images of each batch the chips see (cost grows with chips x this)."),
    tv_weight: float = typer.Option(0.0, "--tv-weight", min=0.0,
                                    help="Weight of a smoothness prior: the images' total variation in units of "
                                         "the model's pixel range (egis.synthesis.prior). 0: the seed's loss alone."),
    baseline: Baseline = typer.Option(Baseline.none, "--baseline",
                                      help="Write a baseline set instead of training."),
    layout: Optional[str] = layout_option(), pixel_range: Optional[str] = pixel_range_option(),
    mean: Optional[str] = mean_option(), std: Optional[str] = std_option(),
    threads: int = typer.Option(2, "--threads", help="torch threads."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Synthesize test images from MODEL.onnx alone (entropy-guided generator) into SID_DIR."""
    from egis.synthesis import SynthesisConfig, synthesize  # noqa: PLC0415 (torch is slow to import)
    from egis.toolkit.model import load_model  # noqa: PLC0415

    config = SynthesisConfig(iterations=iterations, batch=batch, lr=lr, seed=seed, images=images,
                             early_stop=early_stop, patience=patience, plateau=plateau,
                             checkpoint_every=checkpoint_every, threads=threads,
                             variation=None if variation is None else str(variation),
                             variation_weight=variation_weight if variation is not None else 0.0,
                             variation_chips=variation_chips, variation_batch=variation_batch,
                             tv_weight=tv_weight,
                             **({} if hc_warmup is None else {"hc_warmup": hc_warmup}))
    from egis.synthesis.sid import check_output_dir  # noqa: PLC0415

    began = time.perf_counter()
    config.validate()
    check_output_dir(out)   # before any training: a bad -o must not cost a training run
    if variation is not None and not variation.is_file():
        raise EgisError(f"--variation {variation}: no such population file (make one with egis duts make)")
    if variation is not None and baseline is not Baseline.none:
        raise EgisError("--variation applies to EGIS training, not to --baseline sets")
    model = load_customer_model(model_path, layout, pixel_range, mean, std, require_torch=True)
    if baseline is not Baseline.none:
        if resume:
            raise EgisError("--resume applies to EGIS training, not to --baseline sets")
        from egis.baselines import make_baseline  # noqa: PLC0415

        meta = make_baseline(model, baseline.value, out, config)
    else:
        with _progress(not quiet, model.num_classes) as on_step:
            meta = synthesize(model, out, config, resume=resume, on_step=on_step)
    s = meta["set"]
    typer.echo(f"wrote {meta['image_count']} images to {out} ({meta['kind']}): set H_c {s['h_c']:.3f}, "
               f"H_s {s['h_s']:.3f} (log M {s['log_m']:.3f}), classes {s['classes_covered']}/"
               f"{meta['num_classes']}, max share {s['max_class_share']:.3f}, "
               f"{time.perf_counter() - began:.0f} s")
    for line in target_warnings(meta):
        typer.secho(line, fg=typer.colors.YELLOW, err=True)


def target_warnings(meta: dict) -> list[str]:
    """Why a trained set misses the entropy targets, in words a fab engineer can act on."""
    training, s = meta.get("training"), meta["set"]
    if training is None:  # baselines are not trained towards the targets
        return []
    targets = training["targets"]
    plateau = training.get("stop_reason") == "plateau"
    lines = []
    if s["h_c"] > targets["h_c_max"]:
        why = ("the loss stopped improving: a model trained with label smoothing or a softmax "
               "temperature cannot be that confident" if plateau else
               f"training ended at the --iterations cap ({training['iterations']}); raise it")
        lines.append(f"warning: the images' H_c {s['h_c']:.3f} is above the target "
                     f"{targets['h_c_max']:.3f} ({why}). They are still usable test stimuli.")
    if s["h_s"] < targets["h_s_min"] or s["classes_covered"] < meta["num_classes"]:
        lines.append(f"warning: the images spread unevenly over the classes ({s['classes_covered']}/"
                     f"{meta['num_classes']} covered, H_s {s['h_s']:.3f} < target {targets['h_s_min']:.3f}); "
                     "try a longer --hc-warmup or another --seed.")
    return lines


def register(app: typer.Typer) -> None:
    app.command("synthesize")(synthesize_command)
