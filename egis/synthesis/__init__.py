"""Entropy-guided image synthesis (EGIS): test images made from the ONNX model alone.

A generator (egis.generator) is trained so that the frozen model classifies its images
confidently and evenly over all classes (loss -exp(H_s - H_c), egis.entropy). Only the
generator learns: the model is converted by ``egis.toolkit.torch_bridge.to_torch`` into an
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

Modules (the package imports none of them eagerly, so reading an SID stays torch-free):

* ``config``      -- SynthesisConfig, StepRecord, TrainingResult, defaults (torch-free)
* ``frozen``      -- the frozen model as a torch module, noise streams, determinism
* ``training``    -- the training loop, early stops, sampling, generator export
* ``checkpoint``  -- resumable checkpoints on ``egis.toolkit.torch_state``
* ``predictions`` -- the nominal model's probabilities through onnxruntime (torch-free)
* ``sid``         -- the SID directory: writer and reader (torch-free)
* ``run``         -- ``synthesize``: one run end to end
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "config": ("SynthesisConfig", "SynthesisError", "StepRecord", "TrainingResult",
               "DEFAULT_ITERATIONS", "DEFAULT_BATCH", "DEFAULT_LR", "DEFAULT_IMAGES",
               "DEFAULT_PATIENCE", "DEFAULT_HC_WARMUP", "DEFAULT_PLATEAU", "PLATEAU_WINDOW",
               "PLATEAU_MIN_GAIN", "CHECKPOINT_NAME"),
    "frozen": ("FrozenClassifier", "build_classifier", "build_generator", "deterministic", "noise"),
    "training": ("train_generator", "targets_met", "plateaued", "hc_weight", "warmed_loss",
                 "finalize_generator", "sample", "export_generator", "_step"),
    "checkpoint": ("save_checkpoint", "load_checkpoint"),
    "predictions": ("Predictions", "predict"),
    "sid": ("SID_FORMAT_VERSION", "write_sid", "read_sid_images", "check_output_dir",
            "checkpoint_dir_for", "staged_directory", "set_summary", "class_histogram"),
    "run": ("synthesize",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(n for n in _WHERE if not n.startswith("_"))


def __getattr__(name: str) -> Any:
    """Lazy re-exports (PEP 562): ``from egis.synthesis import synthesize`` imports torch,
    ``from egis.synthesis import read_sid_images`` does not."""
    if name not in _WHERE:
        raise AttributeError(f"module 'egis.synthesis' has no attribute {name!r}")
    return getattr(importlib.import_module(f"egis.synthesis.{_WHERE[name]}"), name)
