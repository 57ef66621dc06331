"""Baseline test-image sets, written in the same SID format as EGIS, to compare against.

* ``gaussian``: i.i.d. pixels ~ N(mid, (range/6)^2), clipped to [pixel_min, pixel_max]
  (mid = centre of the pixel domain; range/6 puts 99.7% inside before clipping).
* ``uniform``: i.i.d. pixels ~ U(pixel_min, pixel_max).
* ``untrained``: the EGIS generator with the same seed and initial weights as a real run,
  but no training (BatchNorm statistics recalibrated the same way), so any gain of EGIS
  over it is due to the entropy objective, not to the generator's architecture.

All are valid chip inputs in the pixel domain; labels and confidences come from the
nominal model (onnxruntime), like EGIS's.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from egis.synthesis import (SynthesisConfig, SynthesisError, build_generator, check_output_dir, deterministic,
                            finalize_generator, predict, sample, write_sid)
from egis.toolkit.model import InputContract, LoadedModel

BASELINES = ("gaussian", "uniform", "untrained")
_NOISE_STREAM = 7


def noise_images(contract: InputContract, kind: str, count: int, seed: int) -> np.ndarray:
    """(count, *image_shape) float32 i.i.d. noise images in the pixel domain."""
    rng = np.random.default_rng([seed, _NOISE_STREAM])
    shape = (count, *contract.image_shape)
    lo, hi = contract.pixel_min, contract.pixel_max
    if kind == "uniform":
        images = rng.uniform(lo, hi, size=shape)
    elif kind == "gaussian":
        images = np.clip(rng.normal((lo + hi) / 2.0, (hi - lo) / 6.0, size=shape), lo, hi)
    else:
        raise SynthesisError(f"unknown noise baseline '{kind}'; use gaussian or uniform")
    return images.astype(np.float32)


def make_baseline(model: LoadedModel, kind: str, out_dir: str | Path,
                  config: SynthesisConfig = SynthesisConfig()) -> dict[str, Any]:
    """Write a baseline SID directory of ``config.images`` images; returns its meta.json.

    Only ``images``, ``seed``, ``batch`` (BatchNorm recalibration) and ``threads`` of the
    config matter here. No training.csv / entropy.png (nothing is trained); an untrained
    generator still gets generator.onnx.
    """
    if kind not in BASELINES:
        raise SynthesisError(f"unknown baseline '{kind}'; choose one of {', '.join(BASELINES)}")
    config.validate()
    check_output_dir(out_dir)
    began = time.perf_counter()
    generator = noise_vectors = None
    if kind == "untrained":
        with deterministic(config.seed, config.threads):
            generator = finalize_generator(build_generator(model, config.seed), config)
            noise_vectors, images = sample(generator, config.images, config.seed)
    else:
        images = noise_images(model.contract, kind, config.images, config.seed)
    predictions = predict(model, images)
    meta = {"kind": f"baseline:{kind}", "seed": config.seed,
            "hyperparameters": {"images": config.images, "batch": config.batch, "seed": config.seed}}
    return write_sid(out_dir, model=model, noise_vectors=noise_vectors, images=images,
                     predictions=predictions, meta=meta, generator=generator,
                     timings={"wall_time_s": time.perf_counter() - began})
