"""Entropy-guided image synthesis (EGIS): test images made from the ONNX model alone.

A generator (egis.generator) is trained so that the frozen model classifies its images
confidently and evenly over all classes (loss -exp(H_s - H_c), egis.entropy). Only the
generator learns: the model is converted by ``toolkit.torch_bridge.to_torch`` into an
eval-mode module with ``requires_grad=False`` everywhere, so neither its weights nor its
BatchNorm statistics can change.

Pipeline per iteration: noise (B, 100) -> generator -> tanh -> pixel domain + layout
(a valid chip input) -> contract normalisation -> frozen model -> logits -> loss.

Defaults and why (measured with bench/bench_synthesis.py on 2 CPU cores shared with other
jobs, load average ~6, torch threads 1):
* batch 256, Adam lr 3e-4: the seed's values. B must be >= 2M (egis.entropy).
* iterations: the seed trains 5000; here ``DEFAULT_ITERATIONS`` = 5000 is an upper bound and
  *early stopping* (on by default; ``early_stop=False`` / ``--no-early-stop`` runs them all)
  ends training once H_s >= 0.95 log M and H_c <= 0.1 log M (the issue's targets) have held
  for ``patience`` = 50 consecutive iterations. digits: targets first met at iteration 76,
  held from ~160, stop at 210 (0.16-0.18 s/iteration, ~37 s in all) instead of ~15 min for
  5000. The CIFAR reference models stop after 266-349 iterations (below). A second stop,
  ``plateau`` = 500 (``plateaued``), ends training when the loss gained < 1% over the last 500
  iterations after the warm-up: for models that can never meet the H_c target (below). On
  the label-smoothed VGG16 it stopped at iteration 1784 (H_c 0.43, 10/10 classes; 755 s at
  1 thread) instead of running all 5000 (~35 min).
* H_c warm-up, ``DEFAULT_HC_WARMUP`` = 300 iterations (``hc_warmup=0`` / ``--hc-warmup 0``
  gives the seed's loss from the first step): the weight of H_c in the loss ramps linearly
  from 0 to 1, then the seed's loss is minimised unchanged (see ``warmed_loss``). Measured on
  the 8-epoch VGG16 (78.9%), 1 thread, busy cores: without it the generator locked into 3
  classes by iteration 50 (H_s 1.18 at 250); with a 100-iteration ramp 8 classes at 200
  (H_s 2.12, H_c 0.48); with 300, 9 classes at 400 (H_s 2.20, H_c 0.30). digits meets the
  targets either way (iteration 113 without, 198 with the 300 ramp).
* models trained with label smoothing cannot reach H_c <= 0.1 log M: smoothing eps over M
  classes trains the softmax towards (1 - eps + eps/M, eps/M, ...), whose entropy (0.50 nats
  for eps = 0.1, M = 10) is above 0.1 log M = 0.23. A VGG16 trained with eps = 0.1 never went
  below 0.43 nats on 2000 real test images and its generator settled at H_c ~0.47 after 1000
  iterations, so the target stop never fired. The shipped CIFAR models are therefore
  fine-tuned without smoothing (models/*/CARD.md). With those, 2 torch threads, machine idle:
  VGG16 meets the targets at iteration 300 and stops at 349 (0.24 s/iteration, 86 s);
  MobileNet at 217, stop 266 (0.35 s/iteration, 96 s); both cover all 10 classes.
* generator init: torch's default (see egis.generator.dcgan_init for the comparison).
* noise for iteration i is drawn from a generator seeded with (seed, i), so a run resumed
  from a checkpoint continues bit-for-bit like an uninterrupted one.
* after training, BatchNorm statistics are recomputed over 16 noise batches and images are
  sampled in eval mode, the same computation generator.onnx performs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from egis.entropy import EntropyTerms, check_batch_size, entropy_terms
from egis.generator import NOISE_DIM, Generator, Normalizer, PixelGenerator, recalibrate_batchnorm
from toolkit.bundle import atomic_directory
from toolkit.errors import EgisError, ModelError
from toolkit.io import atomic_path, read_json, read_npz, write_json, write_npz
from toolkit.model import LoadedModel
from toolkit.torch_bridge import to_torch

DEFAULT_ITERATIONS = 5000
DEFAULT_BATCH = 256
DEFAULT_LR = 3e-4
DEFAULT_IMAGES = 2048
DEFAULT_PATIENCE = 50
DEFAULT_HC_WARMUP = 300
DEFAULT_PLATEAU = 500
PLATEAU_WINDOW = 50        # iterations averaged on each side of the plateau comparison
PLATEAU_MIN_GAIN = 0.01    # relative loss improvement that still counts as progress
CHECKPOINT_NAME = "checkpoint"
BN_RECALIBRATION_BATCHES = 16
_SAMPLE_STREAM = 1      # second seed word of the noise streams, so they never overlap
_TRAIN_STREAM = 0
_BN_STREAM = 2


class SynthesisError(EgisError):
    """Synthesis cannot run with these settings (bad options, stale checkpoint)."""


@dataclass(frozen=True)
class SynthesisConfig:
    """Hyper-parameters of one synthesis run; all of them go into meta.json."""

    iterations: int = DEFAULT_ITERATIONS
    batch: int = DEFAULT_BATCH
    lr: float = DEFAULT_LR
    seed: int = 0
    images: int = DEFAULT_IMAGES
    early_stop: bool = True
    patience: int = DEFAULT_PATIENCE
    hs_target: float = 0.95          # H_s >= hs_target * log M
    hc_target: float = 0.10          # H_c <= hc_target * log M
    checkpoint_every: int = 250
    threads: int = 2
    hc_warmup: int = DEFAULT_HC_WARMUP  # iterations over which the H_c weight ramps 0 -> 1
    # with early_stop: stop when the loss gained < PLATEAU_MIN_GAIN over this many iterations
    # after the warm-up (0: never; else at least PLATEAU_WINDOW)
    plateau: int = DEFAULT_PLATEAU

    def validate(self) -> None:
        for name in ("iterations", "batch", "images", "patience", "checkpoint_every", "threads"):
            if getattr(self, name) < 1:
                raise SynthesisError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise SynthesisError(f"learning rate must be a positive number, got {self.lr}")
        if self.hc_warmup < 0:
            raise SynthesisError(f"--hc-warmup must be 0 or more, got {self.hc_warmup}")
        if self.plateau != 0 and self.plateau < PLATEAU_WINDOW:
            raise SynthesisError(f"--plateau must be 0 (off) or at least {PLATEAU_WINDOW}, got {self.plateau}")
        if self.seed < 0:  # numpy's SeedSequence (all noise streams) rejects negative seeds
            raise SynthesisError(f"--seed must be 0 or more, got {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def training_key(self) -> dict[str, Any]:
        """The settings a checkpoint must share to be resumed (not iterations/images)."""
        return {k: v for k, v in self.to_dict().items()
                if k in ("batch", "lr", "seed", "hc_warmup")}


@dataclass
class StepRecord:
    iteration: int       # 1-based: the state after this many updates
    loss: float
    h_c: float
    h_s: float


@dataclass
class TrainingResult:
    """A trained generator and how it got there."""

    pixel_generator: PixelGenerator
    history: list[StepRecord]
    stopped_early: bool               # ended before config.iterations (targets held or plateau)
    seconds: float                    # wall time of the iterations run in this call
    iterations_run: int               # iterations run in this call (not counting resumed ones)
    resumed_from: int = 0
    targets_met_at: int | None = None  # first iteration of the final streak meeting both targets
    stop_reason: str = "iterations"   # "targets", "plateau" or "iterations"

    @property
    def seconds_per_iteration(self) -> float:
        return self.seconds / max(1, self.iterations_run)


# --------------------------------------------------------------------------- determinism
@contextlib.contextmanager
def deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seed torch, fix the thread count and force deterministic kernels; restore afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


def noise(seed: int, stream: int, index: int, count: int) -> torch.Tensor:
    """Standard normal noise (count, 100) that is a pure function of (seed, stream, index)."""
    state = np.random.SeedSequence([seed, stream, index]).generate_state(2, dtype=np.uint64)
    rng = torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
    return torch.randn(count, NOISE_DIM, generator=rng)


# --------------------------------------------------------------------------- model side
def _ends_in_softmax(model: LoadedModel) -> bool:
    producers = [n for n in model.proto.graph.node if model.output_name in n.output]
    return bool(producers) and producers[0].op_type in ("Softmax", "LogSoftmax")


class FrozenClassifier(nn.Module):
    """Pixel-domain images in model layout -> (B, M) logits of the frozen model.

    Models whose graph already ends in Softmax give probabilities: their log is a valid logit
    vector (softmax of log p is p), so the loss sees the same distribution either way.
    """

    def __init__(self, model: LoadedModel) -> None:
        super().__init__()
        contract = model.contract
        self.normalizer = Normalizer(contract.mean, contract.std, contract.channels, contract.layout)
        self.net = to_torch(model.proto)
        self.probabilities = _ends_in_softmax(model)
        self.num_classes = model.num_classes
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenClassifier:
        """Stay in eval mode whatever the caller asks: BatchNorm statistics must not move."""
        return super().train(False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.net(self.normalizer(pixels))
        out = out.reshape(out.shape[0], -1)
        if self.probabilities:
            out = torch.log(out.clamp_min(1e-30))
        return out


def build_classifier(model: LoadedModel, probe_batch: int = 2) -> FrozenClassifier:
    """Convert and freeze the model; check it runs on a batch and gives M outputs."""
    classifier = FrozenClassifier(model)
    probe = torch.full((probe_batch, *model.contract.image_shape), model.contract.pixel_min)
    try:
        with torch.no_grad():
            out = classifier(probe)
    except Exception as exc:  # noqa: BLE001 - a graph with a fixed batch fails here
        raise ModelError(f"the converted model does not run on a batch of {probe_batch} images "
                         f"({type(exc).__name__}); synthesis needs a free batch dimension") from exc
    if out.shape != (probe_batch, model.num_classes):
        raise ModelError(f"the model gives {tuple(out.shape[1:])} outputs per image, "
                         f"expected {model.num_classes} class scores")
    return classifier


def build_generator(model: LoadedModel, seed: int) -> PixelGenerator:
    """The seeded, untrained generator that writes chip inputs for this model."""
    c = model.contract
    torch.manual_seed(seed)
    return PixelGenerator(Generator(c.channels, c.height, c.width), c.pixel_min, c.pixel_max, c.layout)


# --------------------------------------------------------------------------- checkpoints
def _optimizer_arrays(optimizer: torch.optim.Optimizer) -> tuple[dict[str, np.ndarray], dict]:
    state = optimizer.state_dict()
    arrays = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            arrays[f"opt/{index}/{key}"] = torch.as_tensor(value).detach().cpu().numpy()
    return arrays, {"param_groups": state["param_groups"]}


def _optimizer_state(arrays: dict[str, np.ndarray], groups: dict) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in arrays.items():
        if name.startswith("opt/"):
            _, index, key = name.split("/", 2)
            state.setdefault(int(index), {})[key] = torch.from_numpy(value.copy())
    return {"state": state, "param_groups": groups["param_groups"]}


def save_checkpoint(directory: Path, generator: PixelGenerator, optimizer: torch.optim.Optimizer,
                    history: list[StepRecord], streak: int, model_sha256: str,
                    config: SynthesisConfig) -> None:
    """Generator + Adam state as .npz arrays, the rest as JSON (no pickle).

    The JSON is written last and names the iteration; a reader trusts only a pair whose
    iterations agree, so a crash between the two writes is harmless.
    """
    directory.mkdir(parents=True, exist_ok=True)
    iteration = history[-1].iteration if history else 0
    arrays = {f"gen/{k}": v.detach().cpu().numpy() for k, v in generator.state_dict().items()}
    opt_arrays, groups = _optimizer_arrays(optimizer)
    arrays.update(opt_arrays)
    arrays["iteration"] = np.asarray(iteration, dtype=np.int64)
    write_npz(directory / f"{CHECKPOINT_NAME}.npz", **arrays)
    write_json(directory / f"{CHECKPOINT_NAME}.json", {
        "iteration": iteration, "streak": streak, "model_sha256": model_sha256,
        "training": config.training_key(), "optimizer": groups,
        "history": [dataclasses.astuple(r) for r in history]})


def load_checkpoint(directory: Path, generator: PixelGenerator, optimizer: torch.optim.Optimizer,
                    model_sha256: str, config: SynthesisConfig) -> tuple[list[StepRecord], int]:
    """Restore generator and optimizer in place; return (history, streak)."""
    meta_path = directory / f"{CHECKPOINT_NAME}.json"
    arrays_path = directory / f"{CHECKPOINT_NAME}.npz"
    if not (meta_path.is_file() and arrays_path.is_file()):
        raise SynthesisError(f"--resume: no checkpoint in {directory}")
    try:
        meta = read_json(meta_path)
        arrays = read_npz(arrays_path)
        complete = (int(arrays["iteration"]) == meta["iteration"]
                    and all(key in meta for key in ("model_sha256", "training", "optimizer",
                                                    "history", "streak")))
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        complete = False
    if not complete:
        raise SynthesisError(f"--resume: checkpoint in {directory} is incomplete or damaged; "
                             "delete it and start again")
    if meta["model_sha256"] != model_sha256:
        raise SynthesisError(f"--resume: checkpoint in {directory} was made for another model")
    if meta["training"] != config.training_key():
        raise SynthesisError(f"--resume: checkpoint in {directory} used {meta['training']}, "
                             f"not {config.training_key()}")
    generator.load_state_dict({k[4:]: torch.from_numpy(v.copy()) for k, v in arrays.items()
                               if k.startswith("gen/")})
    optimizer.load_state_dict(_optimizer_state(arrays, meta["optimizer"]))
    history = [StepRecord(int(i), float(l), float(c), float(s)) for i, l, c, s in meta["history"]]
    return history, int(meta["streak"])


# --------------------------------------------------------------------------- training
ProgressCallback = Callable[[StepRecord, int], None]


def targets_met(record: StepRecord, num_classes: int, config: SynthesisConfig) -> bool:
    log_m = math.log(num_classes)
    return record.h_s >= config.hs_target * log_m and record.h_c <= config.hc_target * log_m


def train_generator(model: LoadedModel, config: SynthesisConfig, *,
                    checkpoint_dir: Path | None = None, resume: bool = False,
                    on_step: ProgressCallback | None = None,
                    classifier: FrozenClassifier | None = None) -> TrainingResult:
    """Train the generator against the frozen model; see the module docstring.

    ``on_step(record, total_iterations)`` is called after every update (progress display).
    Checkpoints go to ``checkpoint_dir`` every ``config.checkpoint_every`` iterations;
    ``resume=True`` continues from the one there.
    """
    config.validate()
    check_batch_size(config.batch, model.num_classes)
    with deterministic(config.seed, config.threads):
        classifier = classifier or build_classifier(model)
        generator = build_generator(model, config.seed)
        optimizer = torch.optim.Adam(generator.parameters(), lr=config.lr)
        history: list[StepRecord] = []
        streak = 0
        if resume:
            if checkpoint_dir is None:
                raise SynthesisError("--resume needs a checkpoint directory")
            history, streak = load_checkpoint(checkpoint_dir, generator, optimizer, model.sha256, config)
        start = len(history)
        generator.train()
        stop_reason = "iterations"
        began = time.perf_counter()
        for iteration in range(start + 1, config.iterations + 1):
            if config.early_stop and streak >= config.patience:
                stop_reason = "targets"
                break
            if config.early_stop and streak == 0 and plateaued(history, config):
                stop_reason = "plateau"
                break
            record = _step(generator, classifier, optimizer, config, iteration)
            history.append(record)
            streak = streak + 1 if targets_met(record, model.num_classes, config) else 0
            if on_step is not None:
                on_step(record, config.iterations)
            if checkpoint_dir is not None and iteration % config.checkpoint_every == 0:
                save_checkpoint(checkpoint_dir, generator, optimizer, history, streak, model.sha256, config)
        seconds = time.perf_counter() - began
        generator.eval()
    met_at = history[-streak].iteration if streak and history else None
    return TrainingResult(pixel_generator=generator, history=history,
                          stopped_early=stop_reason != "iterations", seconds=seconds,
                          iterations_run=len(history) - start, resumed_from=start,
                          targets_met_at=met_at, stop_reason=stop_reason)


def plateaued(history: list[StepRecord], config: SynthesisConfig) -> bool:
    """Whether the loss gained less than PLATEAU_MIN_GAIN over the last ``config.plateau`` iterations.

    Why: a model whose confidence is capped (trained with label smoothing or a temperature)
    never meets the H_c target, so target-based early stopping never fires and every one of
    the (seed's 5000) iterations would run for nothing once the loss has flattened. Only
    iterations after the H_c warm-up count: during the ramp the generator minimises a different
    objective, so progress on the recorded (seed's) loss says little. Not consulted while the
    targets hold (the patience streak decides then). Pure in the history, so a resumed run
    stops where an uninterrupted one would.
    """
    n, w = config.plateau, PLATEAU_WINDOW
    if n <= 0 or len(history) < config.hc_warmup + n + w:
        return False
    recent = float(np.mean([r.loss for r in history[-w:]]))
    before = float(np.mean([r.loss for r in history[-n - w:-n]]))
    return recent > before - PLATEAU_MIN_GAIN * abs(before)


def hc_weight(iteration: int, warmup: int) -> float:
    """Weight of H_c in the loss at a 1-based iteration: linear from 1/warmup to 1, then 1."""
    return 1.0 if warmup <= 0 else min(1.0, iteration / warmup)


def warmed_loss(terms: EntropyTerms, weight: float) -> torch.Tensor:
    """-exp(H_s - weight * H_c): the seed's loss once ``weight`` reaches 1.

    Why a warm-up: from the untrained generator, the seed's loss makes the images confident
    faster than it makes them diverse, and a class whose softmax mass has gone to ~0 in every
    image gets almost no gradient back (softmax saturation), so training can lock into a few
    classes. Weighting H_c down at first spreads the batch over all classes before confidence
    is pushed; the weight reaches 1 after ``hc_warmup`` iterations and the rest of training
    minimises exactly the seed's objective.
    """
    if weight >= 1.0:
        return terms.loss
    return -torch.exp(terms.h_s - weight * terms.h_c)


def _step(generator: PixelGenerator, classifier: FrozenClassifier, optimizer: torch.optim.Optimizer,
          config: SynthesisConfig, iteration: int) -> StepRecord:
    """One Adam update of the generator on a fresh noise batch."""
    z = noise(config.seed, _TRAIN_STREAM, iteration, config.batch)
    terms = entropy_terms(classifier(generator(z)))
    loss = warmed_loss(terms, hc_weight(iteration, config.hc_warmup))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return StepRecord(iteration, float(terms.loss.detach()), float(terms.h_c.detach()), float(terms.h_s.detach()))


# --------------------------------------------------------------------------- sampling
def finalize_generator(generator: PixelGenerator, config: SynthesisConfig) -> PixelGenerator:
    """Recompute BatchNorm statistics (see recalibrate_batchnorm) and switch to eval mode."""
    with deterministic(config.seed, config.threads):
        recalibrate_batchnorm(generator.generator, BN_RECALIBRATION_BATCHES, config.batch,
                              seed=int(np.random.SeedSequence([config.seed, _BN_STREAM]).generate_state(1)[0]))
    return generator.eval()


def sample(generator: PixelGenerator, count: int, seed: int, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(noise (count, 100), images (count, *image_shape)) float32 from an eval-mode generator."""
    z = noise(seed, _SAMPLE_STREAM, 0, count)
    generator.eval()
    with torch.no_grad():
        images = torch.cat([generator(z[i:i + chunk]) for i in range(0, count, chunk)])
    return z.numpy().astype(np.float32), images.numpy().astype(np.float32)


def export_generator(generator: PixelGenerator, path: Path) -> None:
    """generator.onnx: noise (B, 100) -> images in pixel domain and model layout.

    Legacy exporter (dynamo=False), opset 13, dynamic batch: readable by onnxruntime and
    onnx2torch alike (toolchain-facts.md).
    """
    generator.eval()
    dummy = torch.zeros(2, NOISE_DIM)
    with atomic_path(path) as tmp, warnings_quiet():
        torch.onnx.export(generator, (dummy,), str(tmp), dynamo=False, opset_version=13,
                          input_names=["noise"], output_names=["images"],
                          dynamic_axes={"noise": {0: "batch"}, "images": {0: "batch"}})


@contextlib.contextmanager
def warnings_quiet() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@dataclass
class Predictions:
    probabilities: np.ndarray   # (N, M) float32
    pred: np.ndarray            # (N,) int64
    confidence: np.ndarray      # (N,) float32


def predict(model: LoadedModel, pixels: np.ndarray) -> Predictions:
    """Class probabilities of the nominal model on pixel-domain images, via onnxruntime:
    the same engine the tester uses, so labels and confidences are those of the chip path."""
    from toolkit.engine import ChipSimulator  # noqa: PLC0415 - keep torch-free import graph small

    simulator = ChipSimulator(model, threads=2)
    out = simulator.logits(simulator.nominal_weights(), pixels).astype(np.float64)
    if _ends_in_softmax(model):
        probs = out / out.sum(axis=1, keepdims=True)
    else:
        out -= out.max(axis=1, keepdims=True)
        probs = np.exp(out)
        probs /= probs.sum(axis=1, keepdims=True)
    return Predictions(probs.astype(np.float32), probs.argmax(axis=1).astype(np.int64),
                       probs.max(axis=1).astype(np.float32))


# --------------------------------------------------------------------------- SID directory
SID_FORMAT_VERSION = 1
GRID_IMAGES = 64


def checkpoint_dir_for(out_dir: str | Path) -> Path:
    """Where training checkpoints of ``out_dir`` live: a visible sibling ``<out>.checkpoint``.

    Not inside the SID directory, which only appears (atomically) once complete, and not in
    a temp dir, which a failure removes: --resume must find it after a crash.
    """
    out = Path(out_dir)
    return out.with_name(out.name + ".checkpoint")


def check_output_dir(out_dir: str | Path) -> None:
    """Fail fast (before any training) on an output path we must not replace."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SynthesisError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "meta.json").is_file():
        raise SynthesisError(f"{out} exists and is not an SID directory (no meta.json); "
                             "choose another output directory")


@contextlib.contextmanager
def staged_directory(out_dir: str | Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``out_dir``; it becomes ``out_dir`` on success.

    A failure removes it, so readers never see a half-written SID directory. An existing
    ``out_dir`` is replaced only if it is an earlier SID directory (has meta.json) or empty,
    never a folder of someone's other files.
    """
    check_output_dir(out_dir)
    with atomic_directory(out_dir) as staging:
        yield staging


def class_histogram(pred: np.ndarray, num_classes: int) -> list[int]:
    return np.bincount(pred, minlength=num_classes).astype(int).tolist()


def set_summary(predictions: Predictions, num_classes: int) -> dict[str, Any]:
    """Entropies, histogram and the issue's coverage test (every class, none above 3/M)."""
    from egis.entropy import set_entropies  # noqa: PLC0415

    h_c, h_s = set_entropies(predictions.probabilities)
    histogram = class_histogram(predictions.pred, num_classes)
    count = max(1, len(predictions.pred))
    return {"h_c": h_c, "h_s": h_s, "log_m": math.log(num_classes), "class_histogram": histogram,
            "classes_covered": int(sum(1 for h in histogram if h > 0)),
            "max_class_share": max(histogram) / count,
            "coverage_ok": min(histogram) > 0 and max(histogram) / count <= 3.0 / num_classes,
            "mean_confidence": float(np.mean(predictions.confidence)) if len(predictions.pred) else 0.0}


def write_history_csv(path: Path, history: list[StepRecord]) -> None:
    from toolkit.io import atomic_open  # noqa: PLC0415

    with atomic_open(path) as handle:
        handle.write("iteration,loss,h_c,h_s\n")
        for r in history:
            handle.write(f"{r.iteration},{r.loss:.6g},{r.h_c:.6g},{r.h_s:.6g}\n")


def write_sid(out_dir: str | Path, *, model: LoadedModel, noise_vectors: np.ndarray | None,
              images: np.ndarray, predictions: Predictions, meta: dict[str, Any],
              history: list[StepRecord] | None = None,
              generator: PixelGenerator | None = None) -> dict[str, Any]:
    """Write an SID directory atomically; returns the meta.json content.

    images.npz: images (N, *image_shape) float32 pixel domain, pred int64, confidence
    float32, and noise (N, 100) when a generator made them (generator.onnx(noise) == images).
    """
    from egis import plots  # noqa: PLC0415

    contract = model.contract
    summary = set_summary(predictions, model.num_classes)
    meta = {"format_version": SID_FORMAT_VERSION, "model_sha256": model.sha256,
            "num_classes": model.num_classes, "input_contract": contract.to_dict(),
            "image_count": int(len(images)), "set": summary, **meta}
    with staged_directory(out_dir) as staging:
        arrays = {"images": images.astype(np.float32), "pred": predictions.pred.astype(np.int64),
                  "confidence": predictions.confidence.astype(np.float32)}
        if noise_vectors is not None:
            arrays["noise"] = noise_vectors.astype(np.float32)
        write_npz(staging / "images.npz", **arrays)
        if generator is not None:
            export_generator(generator, staging / "generator.onnx")
        if history is not None:
            write_history_csv(staging / "training.csv", history)
            its = [r.iteration for r in history]
            plots.line_plot(staging / "entropy.png",
                            {"H_c (per-image entropy)": (its, [r.h_c for r in history]),
                             "H_s (batch class entropy)": (its, [r.h_s for r in history])},
                            hlines={"log M": math.log(model.num_classes)},
                            title="EGIS training", xlabel="iteration", ylabel="entropy (nats)")
        shown = min(GRID_IMAGES, len(images))
        plots.image_grid(staging / "grid.png", images[:shown],
                         [f"{p} ({c:.2f})" for p, c in zip(predictions.pred[:shown], predictions.confidence[:shown])],
                         layout=contract.layout, vmin=contract.pixel_min, vmax=contract.pixel_max,
                         title=f"{meta.get('kind', 'sid')}: predicted class (confidence)")
        write_json(staging / "meta.json", meta)
    return meta


def synthesize(model: LoadedModel, out_dir: str | Path, config: SynthesisConfig = SynthesisConfig(), *,
               resume: bool = False, on_step: ProgressCallback | None = None,
               keep_checkpoint: bool = False) -> dict[str, Any]:
    """Train the generator, sample ``config.images`` images, write the SID directory.

    Checkpoints go to :func:`checkpoint_dir_for` ``(out_dir)`` and are removed once the SID
    directory is complete (unless ``keep_checkpoint``). Returns meta.json's content.
    """
    import shutil  # noqa: PLC0415

    check_output_dir(out_dir)
    began = time.perf_counter()
    checkpoints = checkpoint_dir_for(out_dir)
    result = train_generator(model, config, checkpoint_dir=checkpoints, resume=resume, on_step=on_step)
    generator = finalize_generator(result.pixel_generator, config)
    with deterministic(config.seed, config.threads):
        noise_vectors, images = sample(generator, config.images, config.seed)
    predictions = predict(model, images)
    last = result.history[-1] if result.history else None
    meta = {"kind": "egis", "seed": config.seed, "hyperparameters": config.to_dict(),
            "training": {"iterations": len(result.history), "resumed_from": result.resumed_from,
                         "stopped_early": result.stopped_early, "stop_reason": result.stop_reason,
                         "targets_met_at": result.targets_met_at,
                         "seconds": result.seconds, "seconds_per_iteration": result.seconds_per_iteration,
                         "final_loss": last.loss if last else None,
                         "final_h_c": last.h_c if last else None,
                         "final_h_s": last.h_s if last else None,
                         "targets": {"h_s_min": config.hs_target * math.log(model.num_classes),
                                     "h_c_max": config.hc_target * math.log(model.num_classes)}},
            "wall_time_s": None}
    meta["wall_time_s"] = time.perf_counter() - began
    written = write_sid(out_dir, model=model, noise_vectors=noise_vectors, images=images,
                        predictions=predictions, meta=meta, history=result.history, generator=generator)
    if not keep_checkpoint:
        shutil.rmtree(checkpoints, ignore_errors=True)
    return written
