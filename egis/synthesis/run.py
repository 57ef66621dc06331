"""One synthesis run end to end: train, finalise, sample, predict, write the SID directory."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any

from egis.synthesis.config import SynthesisConfig
from egis.synthesis.frozen import deterministic
from egis.synthesis.predictions import predict
from egis.synthesis.sid import check_output_dir, checkpoint_dir_for, write_sid
from egis.synthesis.training import ProgressCallback, finalize_generator, sample, train_generator
from egis.toolkit.model import LoadedModel


def variation_record(population_path: str) -> dict[str, Any]:
    """Which chips the variation-aware loss spread over: the spec file and its sha256."""
    from egis.toolkit.population import PopulationSpec  # noqa: PLC0415

    return {"population": Path(population_path).name,
            "spec_sha256": PopulationSpec.load(population_path).sha256()}


def sid_kind(config: SynthesisConfig) -> str:
    """The stimulus kind (egis.methods.STIMULUS_REGISTRY) a set of this loss is measured as."""
    from egis.methods import synthesis_kind

    return synthesis_kind(config.to_dict())


def synthesize(model: LoadedModel, out_dir: str | Path, config: SynthesisConfig = SynthesisConfig(), *,
               resume: bool = False, on_step: ProgressCallback | None = None,
               keep_checkpoint: bool = False) -> dict[str, Any]:
    """Train the generator, sample ``config.images`` images, write the SID directory.

    Checkpoints go to :func:`checkpoint_dir_for` ``(out_dir)`` and are removed once the SID
    directory is complete (unless ``keep_checkpoint``). Returns meta.json's content.
    """
    check_output_dir(out_dir)
    began = time.perf_counter()
    checkpoints = checkpoint_dir_for(out_dir)
    result = train_generator(model, config, checkpoint_dir=checkpoints, resume=resume, on_step=on_step)
    generator = finalize_generator(result.pixel_generator, config)
    with deterministic(config.seed, config.threads):
        noise_vectors, images = sample(generator, config.images, config.seed)
    predictions = predict(model, images)
    last = result.history[-1] if result.history else None
    meta = {"kind": sid_kind(config), "seed": config.seed,
            "hyperparameters": config.to_dict(),
            "training": {"iterations": len(result.history), "resumed_from": result.resumed_from,
                         "stopped_early": result.stopped_early, "stop_reason": result.stop_reason,
                         "targets_met_at": result.targets_met_at,
                         "final_loss": last.loss if last else None,
                         "final_h_c": last.h_c if last else None,
                         "final_h_s": last.h_s if last else None,
                         "final_spread": last.spread if last else None,
                         "targets": {"h_s_min": config.hs_target * math.log(model.num_classes),
                                     "h_c_max": config.hc_target * math.log(model.num_classes)}}}
    if config.variation_weight > 0:
        meta["variation"] = variation_record(config.variation)
    timings = {"training_seconds": result.seconds, "seconds_per_iteration": result.seconds_per_iteration,
               "iterations_run": result.iterations_run, "wall_time_s": time.perf_counter() - began}
    written = write_sid(out_dir, model=model, noise_vectors=noise_vectors, images=images,
                        predictions=predictions, meta=meta, history=result.history, generator=generator,
                        timings=timings)
    if not keep_checkpoint:
        shutil.rmtree(checkpoints, ignore_errors=True)
    return written
