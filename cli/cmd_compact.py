"""`egis compact`: choose K test images by annealing, train the detector, write the bundle.

Inputs are the fab's: the customer model, an SID directory (images.npz from `egis
synthesize`), the population spec and the customer's LABELS.csv (only pass/fail leaves the
customer). The chips' responses to all N images are computed once into a memory-mapped
cache (CID_DIR/cache by default, reused when model, population, images and chips match).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from egis.cli.options import layout_option, load_customer_model, mean_option, pixel_range_option, std_option

from egis.toolkit.errors import DataError


def compact_command(
    model_path: Path = typer.Argument(..., metavar="MODEL.onnx",
                                      help="Customer ONNX classifier, or a handoff folder (egis handoff), "
                                           "whose chips and labels are then the defaults."),
    sid_dir: Path = typer.Argument(..., metavar="SID_DIR", help="Synthetic images (egis synthesize)."),
    population: Optional[str] = typer.Argument(None, metavar="[CHIPS]",
                                     help="The labelled chips: a population spec (simulated here), a responses "
                                          "folder (egis measure), or any chip set (folder/glob/list of chip ONNX "
                                          "files, adapter:NAME:TARGET; measured here into the cache)."),
    labels_path: Optional[Path] = typer.Argument(None, metavar="[LABELS.csv]",
                                                 help="Pass/fail labels (egis label); default: the handoff's."),
    k: int = typer.Option(4, "-k", help="Number of test images K."),
    out: Path = typer.Option(..., "-o", "--output", help="CID directory to write."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the annealing and its splits."),
    trials: int = typer.Option(5, "--trials", min=1, help="Random 80/20 splits per reward (I); not used with "
                                                            "--unlabelled, whose reward needs no splits."),
    bundle: bool = typer.Option(True, "--bundle/--no-bundle", help="Also train the detector and write CID_DIR/bundle."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Signature cache directory (default CID_DIR/cache, "
                                              "reused when model, chips and images match; when CID_DIR is new and "
                                              "the command fails, CID_DIR is removed with it)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=1, help="Parallel trials (default: min(trials, CPUs)); "
                                                                   "not used with --unlabelled."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="onnxruntime threads for chip simulation."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                          help="Processes for chip simulation (default $EGIS_WORKERS, else 1); "
                                               "results are identical for any count."),
    max_escape: Optional[str] = typer.Option(None, "--max-escape", metavar="P",
                                             help="Escape budget: choose the detector's pass threshold on "
                                                  "held-out folds so that at most P of the chips (0.01 or 1%) "
                                                  "are bad chips passed, at the least yield loss."),
    escape_confidence: Optional[str] = typer.Option(None, "--escape-confidence", metavar="C",
                                                    help="With --max-escape: hold the budget at confidence C "
                                                         "(0.75 or 75%): the one-sided Clopper-Pearson bound "
                                                         "of the held-out escape rate, not its mean, must stay "
                                                         "under P (fewer escapes, more yield loss)."),
    escape_cost: float = typer.Option(1.0, "--escape-cost", min=0.001,
                                      help="Annealing reward: a passed bad chip costs this many failed good chips "
                                           "(1: validation accuracy, the seed's Algorithm 1)."),
    validation: str = typer.Option("splits", "--validation", metavar="splits|folds",
                                   help="Annealing reward's validation: splits: --trials random 80/20 splits "
                                        "(the seed's); folds: --trials-fold cross-validation, repeated twice "
                                        "(every labelled chip validated twice; a less noisy reward)."),
    prefilter: str = typer.Option("none", "--prefilter", metavar="none|spread|relevance",
                                  help="spread: anneal only over the images the labelled chips disagree on "
                                       "most; relevance: only over those whose logits best separate their "
                                       "pass and fail (egis/selection.py); none: all images (the seed's Algorithm 1)."),
    select: bool = typer.Option(False, "--select",
                                help="Anneal under every reward (the seed's splits, folds, cost-weighted, "
                                     "spread) and keep the K images that score best on held-out folds of the "
                                     "labelled chips (egis-select); replaces --validation/--escape-cost/--prefilter."),
    unlabelled: Optional[str] = typer.Option(None, "--unlabelled", metavar="CHIPS",
                                             help="The fab's unlabelled chips (egis-distil): a population spec "
                                                  "(every chip simulated here), a responses folder (egis measure) "
                                                  "or a chip set, on the same SID. A teacher fitted on the labelled "
                                                  "chips' responses to every image labels them; K is annealed on "
                                                  "agreement with it and the detector fitted on both "
                                                  "(egis/distil.py). Replaces --select/--validation/--escape-cost/"
                                                  "--prefilter."),
    sign: Optional[Path] = typer.Option(None, "--sign", metavar="KEY",
                                        help="Sign the bundle with this private key (egis keys new), so "
                                             "testers given the public key (egis test --trust) accept it."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="auto|ADDRESS",
                                      help="Simulate chips on a Ray cluster (or $EGIS_RAY_ADDRESS; 'local' starts "
                                           "one here); results equal the local run's. Needs egis-toolkit[ray]."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    layout: Optional[str] = layout_option(), pixel_range: Optional[str] = pixel_range_option(),
    mean: Optional[str] = mean_option(), std: Optional[str] = std_option(),
) -> None:
    """Select K test images (Algorithm 1), then train and export the pass/fail detector."""
    from egis.compaction import VALIDATIONS
    from egis.methods import PREFILTERS
    from egis.pipeline import check_chip_labels, check_k, compact_to_bundle, population_record
    from egis.synthesis.sid import read_sid_images
    from egis.toolkit.chipset import is_population_spec, open_chip_set
    from egis.toolkit.handoff import is_handoff, open_handoff
    from egis.toolkit.io import check_output_dir, removed_on_failure, sha256_file
    from egis.toolkit.labels import read_labels
    from egis.toolkit.measure import is_responses_dir, load_responses
    from egis.toolkit.population import open_population
    from egis.toolkit.runner import get_runner
    from egis.toolkit.signatures import compute_signatures, images_sha256

    model_file = model_path
    if is_handoff(model_path):
        package = open_handoff(model_path)          # verified once, here
        model_file = package.model_path
        labels_path = labels_path or package.labels_path
        population = population or (str(package.chips_ref) if package.chips_ref else None)
    if population is None or labels_path is None:
        raise DataError("give CHIPS and LABELS.csv (or a handoff folder that holds them as MODEL)")
    if validation not in VALIDATIONS:
        raise DataError(f"--validation must be {' or '.join(VALIDATIONS)}, got {validation!r}")
    if prefilter not in PREFILTERS:
        raise DataError(f"--prefilter must be one of {', '.join(PREFILTERS)}, got {prefilter!r}")
    if select and (validation != "splits" or escape_cost != 1.0 or prefilter != "none"):
        raise DataError("--select chooses the annealing reward itself; drop --validation, --escape-cost "
                        "and --prefilter")
    if unlabelled is not None and (select or validation != "splits" or escape_cost != 1.0 or prefilter != "none"):
        raise DataError("--unlabelled chooses by agreement with the teacher; drop --select, --validation, "
                        "--escape-cost and --prefilter")
    check_output_dir(out)
    from egis.escape import parse_escape_options

    budget, confidence = parse_escape_options(max_escape, escape_confidence)
    if budget is not None and not bundle:
        raise DataError("--max-escape sets the bundle's pass threshold; it needs --bundle")
    if sign is not None:
        from egis.toolkit.signing import load_private_key

        load_private_key(sign)      # a bad key must fail now, not after the compaction
    if cache is not None:
        check_output_dir(cache)
    labels_file = read_labels(labels_path)
    workers = get_runner(workers, ray) if (ray or workers) else None
    model = load_customer_model(model_file, layout, pixel_range, mean, std)
    if is_population_spec(population):
        pop = open_population(population, model)
        spec = pop.spec
        chips, labels = check_chip_labels(labels_file, labels_path, spec.sha256(), len(pop))
        chip_record = population_record(spec)
    else:
        labels = labels_file.passed.astype("int64")
        chips = list(labels_file.ids)
    pixels = read_sid_images(sid_dir, model.sha256)
    sha = images_sha256(pixels)
    check_k(k, len(pixels))     # before any chip is simulated
    if (bundle or unlabelled is not None) and len(set(labels.tolist())) < 2:
        raise DataError(f"{labels_path}: every labelled chip has the same label; the detector needs "
                        "passing and failing chips")
    measured = None
    if is_responses_dir(population):
        measured = load_responses(population)
        if measured.meta["model_sha256"] != model.sha256 or measured.meta["images_sha256"] != sha:
            raise DataError(f"{population} holds responses of another model or other images than {sid_dir}")
        labels_file.check_chip_set(measured.meta["identities"], labels_path)
    elif not is_population_spec(population):
        chip_set = open_chip_set(population, model_file, model=model, threads=threads)
        labels_file.check_chip_set(chip_set.identities(), labels_path)
    if unlabelled is not None:
        labelled_identities = (measured.meta["identities"] if measured is not None
                               else None if is_population_spec(population) else chip_set.identities())
        unlabelled_source = _unlabelled_source(unlabelled, population, labelled_identities, model, model_file, sha,
                                               sid_dir, threads)
    with removed_on_failure(out):
        if is_population_spec(population):
            logits = compute_signatures(pop, pixels, chips, cache_dir=cache or out / "cache",
                                        progress=not quiet, threads=threads, workers=workers)
        else:
            if measured is None:
                measured = _measure(chip_set, pixels, sha, (cache or out / "cache") / "responses", quiet, "chip")
            rows = measured.rows_of(chips)
            logits = measured.logits[rows]
            chip_record = _chip_set_record(measured, len(measured.chip_ids))
        unlabelled_logits = None
        if unlabelled is not None:
            unlabelled_logits, unlabelled_record = _unlabelled_responses(
                unlabelled_source, pixels, sha, (cache or out / "cache") / "unlabelled", threads, workers, quiet)
            chip_record = {**chip_record, "unlabelled": unlabelled_record}
        outcome = compact_to_bundle(
            model, pixels, logits, labels, k, out, chip_set=chip_record,
            labels_meta=labels_file.meta, chips=chips, seed=seed, trials=trials, bundle=bundle, jobs=jobs,
            progress=not quiet, sign_key=sign, max_escape=budget, escape_confidence=confidence,
            prefilter=prefilter, escape_cost=escape_cost, validation=validation, select=select,
            unlabelled=unlabelled_logits, provenance={"images_sha256": sha, "labels_sha256": sha256_file(labels_path)})
    result = outcome.result
    message = (f"{out}: K={k} images {result.indices}, reward {result.initial_reward:.3f} -> "
               f"{result.reward:.3f} in {len(result.history)} iterations ({result.seconds:.1f} s)")
    if unlabelled is not None:
        message += (f"; distilled from {result.settings['unlabelled_chips']} unlabelled chips "
                    f"(the teacher passes {100 * result.settings['teacher_pass_rate']:.1f}% of them)")
    if select:
        chosen = result.settings["select"]
        scores = ", ".join(f"{name} {score:.3f}" for name, score in chosen["candidates"].items())
        message += f"; --select chose {chosen['chosen']} (held-out accuracy: {scores})"
    if outcome.bundle is not None:
        message += (f"; bundle {outcome.bundle} (detector training accuracy "
                    f"{outcome.detector_training_accuracy:.3f})")
    if outcome.escape_budget is not None:
        b = outcome.escape_budget
        held = "" if b.confidence is None else (f" at {100 * b.confidence:g}% confidence (upper bound "
                                                f"{100 * b.validation_escape_bound:.2f}%)")
        message += (f"; escape budget {100 * b.max_escape:g}%{held}: pass when P(pass) >= {b.threshold:.4f}, "
                    f"held-out escapes {100 * b.validation_escape:.1f}% (0.5: {100 * b.default_escape:.1f}%), "
                    f"yield loss {100 * b.validation_yield_loss:.1f}% (0.5: {100 * b.default_yield_loss:.1f}%)")
        if not b.met:
            typer.echo("warning: no threshold meets the escape budget on held-out chips; the bundle "
                       "passes no chip", err=True)
    typer.echo(message)


def _unlabelled_source(unlabelled: str, labelled: str, labelled_identities: dict[str, str] | None, model,
                       model_file: Path, sha: str, sid_dir: Path, threads: int | None):
    """The unlabelled chips, opened and checked before any work: a population spec, a responses
    folder of this model and these images, or a chip set -- none of them holding labelled
    chips (same population seed; same chip files or adapter targets)."""
    from egis.distil import refuse_shared_chips, refuse_shared_identities
    from egis.toolkit.chipset import is_population_spec, open_chip_set
    from egis.toolkit.measure import is_responses_dir, load_responses
    from egis.toolkit.population import open_population

    where = f"--unlabelled {unlabelled}"
    if is_population_spec(unlabelled):
        pop = open_population(unlabelled, model)
        if is_population_spec(labelled):
            refuse_shared_chips(pop.spec, open_population(labelled, model).spec, "labelled", where)
        return pop
    if is_responses_dir(unlabelled):
        source = load_responses(unlabelled)
        if source.meta["model_sha256"] != model.sha256 or source.meta["images_sha256"] != sha:
            raise DataError(f"{where} holds responses of another model or other images than {sid_dir}")
        identities = source.meta["identities"]
    else:
        source = open_chip_set(unlabelled, model_file, model=model, threads=threads)
        identities = source.identities()
    if labelled_identities is not None:
        refuse_shared_identities(identities, labelled_identities, where)
    return source


def _unlabelled_responses(source, pixels, sha: str, cache_dir: Path, threads: int | None, workers,
                          quiet: bool):
    """(every unlabelled chip's responses to ``pixels``, how the manifest names those chips)."""
    from egis.toolkit.measure import Responses
    from egis.toolkit.population import Population
    from egis.toolkit.signatures import compute_signatures

    if isinstance(source, Population):
        logits = compute_signatures(source, pixels, list(range(len(source))), cache_dir=cache_dir,
                                    progress=not quiet, threads=threads, workers=workers)
        return logits, {"kind": "population", "sha256": source.spec.sha256(), "count": len(source)}
    if not isinstance(source, Responses):
        source = _measure(source, pixels, sha, cache_dir, quiet, "unlabelled chip")
    usable = source.ok_ids              # a chip the measurement excluded has no responses to learn from
    return source.logits[source.rows_of(usable)], _chip_set_record(source, len(usable))


def _measure(chip_set, pixels, sha: str, out_dir: Path, quiet: bool, what: str):
    """A chip set's responses to ``pixels`` (egis.toolkit.measure, resumable in ``out_dir``);
    each chip the measurement excludes is named on stderr as a ``what``."""
    from egis.toolkit.measure import measure

    return measure(chip_set, pixels, out_dir, images_sha256=sha, progress=not quiet,
                   on_excluded=lambda cid, why: typer.echo(f"warning: {what} {cid} excluded: {why}", err=True))


def _chip_set_record(measured, count: int) -> dict:
    """How the manifest names a measured chip set: its kind, its sha256 and how many chips."""
    return {"kind": measured.meta["chip_set"]["kind"], "sha256": measured.meta["chip_set_sha256"], "count": count}


def register(app: typer.Typer) -> None:
    app.command("compact")(compact_command)
