"""The training loop: Adam on the generator against the frozen model, with early stopping on
the entropy targets or a loss plateau, checkpoints, and sampling/export of the result."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from egis.entropy import EntropyTerms, check_batch_size, entropy_terms
from egis.generator import NOISE_DIM, PixelGenerator, recalibrate_batchnorm
from egis.synthesis.checkpoint import load_checkpoint, save_checkpoint
from egis.synthesis.config import (BN_RECALIBRATION_BATCHES, PLATEAU_MIN_GAIN, PLATEAU_WINDOW,
                                   StepRecord, SynthesisConfig, SynthesisError, TrainingResult,
                                   _BN_STREAM, _SAMPLE_STREAM, _TRAIN_STREAM)
from egis.synthesis.frozen import (FrozenClassifier, build_classifier, build_generator,
                                   deterministic, noise, warnings_quiet)
from egis.synthesis.prior import total_variation
from egis.synthesis.variation import chip_classifiers, top_class_spread
from egis.toolkit.io import atomic_path
from egis.toolkit.model import LoadedModel


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
        chips = (chip_classifiers(model, config.variation, config.variation_chips)
                 if config.variation_weight > 0 else [])
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
            record = _step(generator, classifier, optimizer, config, iteration, chips)
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
          config: SynthesisConfig, iteration: int, chips: list[FrozenClassifier] = ()) -> StepRecord:
    """One Adam update of the generator on a fresh noise batch.

    With ``chips`` (the variation-aware loss) the objective is the seed's loss minus
    ``variation_weight * M * spread`` over the batch's first ``variation_batch`` images, and
    the recorded loss is that objective (so the plateau stop watches what is minimised). With
    ``tv_weight`` the images' total variation (egis.synthesis.prior), times that weight, is
    added to both."""
    z = noise(config.seed, _TRAIN_STREAM, iteration, config.batch)
    images = generator(z)
    logits = classifier(images)
    terms = entropy_terms(logits)
    loss = warmed_loss(terms, hc_weight(iteration, config.hc_warmup))
    recorded, spread = terms.loss.detach(), 0.0
    if chips:
        sub = images[:config.variation_batch]
        spread_t = top_class_spread(logits[:config.variation_batch], [chip(sub) for chip in chips])
        bonus = config.variation_weight * logits.shape[1] * spread_t
        loss = loss - bonus
        recorded, spread = (terms.loss - bonus).detach(), float(spread_t.detach())
    if config.tv_weight > 0:
        prior = config.tv_weight * total_variation(images, generator.layout,
                                                   generator.pixel_max - generator.pixel_min)
        loss = loss + prior
        recorded = recorded + prior.detach()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return StepRecord(iteration, float(recorded), float(terms.h_c.detach()), float(terms.h_s.detach()), spread)


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

