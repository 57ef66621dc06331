"""`egis demo`: the whole story, end to end, through the same commands a user would type.

Default (digits, embedded, no external data): the customer makes and labels its chips with
its private data, the fab synthesises images from the model alone, compacts them into a
test bundle, the tester tests the evaluation chips, and the metrics are printed. With
``--model cifar10_vgg16`` (or another shipped model) the customer's labels are the shipped
label files, so the fab side needs no data at all.
"""

from __future__ import annotations

import contextlib
import csv
import io
import shlex
import time
from pathlib import Path

import numpy as np
import typer

from egis.toolkit.errors import DataError
from egis.toolkit.io import atomic_open, write_npz

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


def _chip_count(text: str) -> int:
    """``--chips``: N or 0:N (the demo always uses the first chips of each population)."""
    start, sep, stop = text.strip().rpartition(":") if ":" in text else ("", "", text.strip())
    try:
        count = int(stop)
    except ValueError:
        count = -1
    if (sep and start not in ("", "0")) or count < 10:
        raise DataError(f"--chips must be N or 0:N with N >= 10, got '{text}'")
    return count


def _run(app: typer.Typer, args: list[str], capture: bool = False) -> str:
    """Run one egis command in-process, echoing it like a shell transcript."""
    typer.secho("$ egis " + " ".join(shlex.quote(a) for a in args), fg="cyan", err=True)
    command = typer.main.get_command(app)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer) if capture else contextlib.nullcontext():
        command.main(args=args, prog_name="egis", standalone_mode=False)
    return buffer.getvalue()


def _customer_digits(work: Path, model: Path, chips: int, variability: str, sigma: float, app) -> tuple[Path, Path, Path]:
    """Customer side: two populations, labelled with the private digits test split."""
    from egis.toolkit.data import digits_split as split

    customer = work / "customer"
    customer.mkdir(parents=True, exist_ok=True)
    _, _, x, y = split()
    write_npz(customer / "digits_test.npz", x=x, y=y)   # the customer's private data
    for name, seed in (("labelled", 1), ("evaluation", 2)):
        _run(app, ["duts", "make", str(model), "-o", str(work / f"{name}.json"), "--set", f"sigma_tot={sigma}",
                   "--set", f"preset={variability}", "--count", str(chips), "--seed", str(seed)])
    labels = work / "labels.csv"
    _run(app, ["label", str(model), str(work / "labelled.json"), "--data", str(customer / "digits_test.npz"),
               "-o", str(labels), "--cutoff", "A50"])
    truth = customer / "evaluation_truth.csv"
    _run(app, ["label", str(model), str(work / "evaluation.json"), "--data", str(customer / "digits_test.npz"),
               "-o", str(truth), "--cutoff-from", str(labels.with_suffix(".json")), "--with-accuracy"])
    return work / "labelled.json", labels, truth


def _shipped(work: Path, name: str, variability: str, chips: int) -> tuple[Path, Path, Path, int]:
    """The shipped labelled population, its A50 labels and the evaluation truth, cut to the
    first ``chips`` chips of each population (copies in WORK/customer/) when they hold more.
    Returns the number of evaluation chips to test, too."""
    from egis.toolkit.labels import read_labels, write_labels, write_side_file

    folder = MODELS_DIR / name / "populations" / variability
    if not (folder / "labelled_A50.csv").exists():
        raise DataError(f"model {name} ships no populations for {variability} variation "
                        f"(expected {folder}/labelled_A50.csv)")
    labels, truth = folder / "labelled_A50.csv", folder / "evaluation_accuracy.csv"
    shipped = min(len(read_labels(labels).chips), len(read_labels(truth).chips))
    if chips >= shipped:
        return folder / "labelled.json", labels, truth, shipped
    customer = work / "customer"
    customer.mkdir(parents=True, exist_ok=True)
    cut = []
    for source in (labels, truth):
        full = read_labels(source)
        target = customer / source.name
        write_labels(target, full.chips[:chips], full.passed[:chips],
                     None if full.accuracies is None else full.accuracies[:chips])
        write_side_file(target, {**full.meta, "note": f"first {chips} chips of {source}"})
        cut.append(target)
    return folder / "labelled.json", cut[0], cut[1], chips


def demo(
    model_name: str = typer.Option("digits", "--model", help="Shipped reference model (digits, cifar10_vgg16, cifar10_mobilenet)."),
    out: Path = typer.Option(Path("egis-demo"), "-o", "--output", help="Working folder for every artifact."),
    k: int = typer.Option(4, "-k", min=1, help="Test images in the bundle."),
    chips_text: str = typer.Option("200", "--chips", metavar="N|0:N",
                                   help="Chips per population, at least 10 (the first N, as in label and "
                                        "test): digits makes this many; shipped models use the first N of theirs."),
    images: int = typer.Option(512, help="Synthetic images to generate."),
    variability: str = typer.Option("typical", help="typical (25/25/50) or extreme (50/0/50)."),
    seed: int = typer.Option(0, help="Seed of synthesis and compaction."),
    iterations: int = typer.Option(5000, min=1, help="Most generator iterations; early stopping ends once "
                                   "the entropy targets hold (a few hundred on the shipped models)."),
) -> None:
    """Run the whole EGIS flow and print test accuracy, escapes and yield loss."""
    from egis.cli.main import app
    from egis.metrics import test_metrics
    from egis.toolkit.io import read_json
    from egis.toolkit.labels import read_labels

    chips = _chip_count(chips_text)
    model_name = model_name.replace("-", "_")
    model = MODELS_DIR / model_name / "model.onnx"
    if not model.exists():
        available = sorted(p.name for p in MODELS_DIR.iterdir() if (p / "model.onnx").exists())
        raise DataError(f"no shipped model '{model_name}'; available: {', '.join(available)}")
    if variability not in ("typical", "extreme"):
        raise DataError(f"variability must be typical or extreme, got '{variability}'")
    from egis.toolkit.io import check_output_dir

    check_output_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    stages: dict[str, float] = {}

    typer.secho("\n[customer] chips are labelled on premises; only pass/fail labels leave", bold=True, err=True)
    t = time.perf_counter()
    if model_name == "digits":
        population, labels, truth = _customer_digits(out, model, chips, variability, 0.3, app)
        tested = chips
    else:
        population, labels, truth, tested = _shipped(out, model_name, variability, chips)
        typer.echo(f"shipped labels: {labels} ({tested} labelled and {tested} evaluation chips)", err=True)
    stages["customer: populations + labels"] = time.perf_counter() - t

    typer.secho("\n[fab] synthesise test images from the ONNX model alone", bold=True, err=True)
    t = time.perf_counter()
    sid = out / "sid"
    _run(app, ["synthesize", str(model), "-o", str(sid), "--images", str(images), "--seed", str(seed),
               "--iterations", str(iterations), "-q"])
    stages["fab: synthesis"] = time.perf_counter() - t

    typer.secho("\n[fab] compact to K images and build the test bundle", bold=True, err=True)
    t = time.perf_counter()
    cid = out / "cid"
    _run(app, ["compact", str(model), str(sid), str(population), str(labels), "-k", str(k), "-o", str(cid),
               "--seed", str(seed), "-q"])
    stages["fab: signatures + compaction + bundle"] = time.perf_counter() - t

    typer.secho("\n[tester] test every evaluation chip with the bundle (onnxruntime only)", bold=True, err=True)
    t = time.perf_counter()
    evaluation = population.with_name("evaluation.json")
    verdict_csv = _run(app, ["test", str(cid / "bundle"), "--population", str(evaluation), "--model", str(model),
                             "--chips", f"0:{tested}", "--csv"], capture=True)
    with atomic_open(out / "verdicts.csv") as handle:
        handle.write(verdict_csv)
    stages["tester: evaluation chips"] = time.perf_counter() - t

    rows = list(csv.DictReader(io.StringIO(verdict_csv)))
    passed = np.array([r["pass"] in ("1", "True", "true") for r in rows])
    ground = read_labels(truth)
    threshold = float(read_json(labels.with_suffix(".json"))["threshold"])
    if len(passed) != len(ground.chips):
        raise DataError(f"tester returned {len(passed)} verdicts for {len(ground.chips)} evaluation chips")
    metrics = test_metrics(passed, ground.accuracies, threshold)
    typer.secho("\n[result] evaluation chips never seen by synthesis, compaction or the detector", bold=True)
    typer.echo(f"model {model_name}, {variability} variation, cutoff A50 (accuracy {threshold:.4f}), K={k}, "
               f"{len(passed)} evaluation chips")
    typer.echo("  ".join(f"{name} {value:5.1f}%" for name, value in metrics.items()))
    typer.echo("(TA test accuracy, TE test escapes = CTE critical + BTE benign, YL yield loss)")
    for name, seconds in stages.items():
        typer.echo(f"  {name:<42} {seconds:7.1f} s")
    typer.echo(f"  {'total':<42} {time.perf_counter() - started:7.1f} s")
    typer.echo(f"artifacts: {out}/ (sid/grid.png, sid/entropy.png, cid/reward.png, cid/cid.png, "
               f"cid/bundle/, verdicts.csv)")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
