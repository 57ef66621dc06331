"""Settings and records of one synthesis run (torch-free, so the CLI can validate options
before torch is imported)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
import math

from egis.toolkit.errors import EgisError

if TYPE_CHECKING:
    from egis.generator import PixelGenerator

DEFAULT_ITERATIONS = 5000
DEFAULT_BATCH = 256
DEFAULT_LR = 3e-4
DEFAULT_IMAGES = 2048
DEFAULT_PATIENCE = 50
DEFAULT_HC_WARMUP = 300
DEFAULT_PLATEAU = 500
DEFAULT_VARIATION_WEIGHT = 1.0   # --variation-weight's default (the CLI's literal; tests check they agree)
DEFAULT_VARIATION_CHIPS = 4
DEFAULT_VARIATION_BATCH = 64
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
    # variation-aware loss (egis.synthesis.variation; method egis-va): weight of the chips'
    # top-class spread, the population spec its chips come from, how many, on how many images
    variation_weight: float = 0.0
    variation: str | None = None
    variation_chips: int = DEFAULT_VARIATION_CHIPS
    variation_batch: int = DEFAULT_VARIATION_BATCH
    # image prior (egis.synthesis.prior): weight of the images' total variation in the loss
    tv_weight: float = 0.0

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
        if not (self.variation_weight >= 0 and math.isfinite(self.variation_weight)):
            raise SynthesisError(f"--variation-weight must be 0 or more, got {self.variation_weight}")
        if self.variation_weight > 0 and not self.variation:
            raise SynthesisError("--variation-weight needs --variation POPULATION.json (the chips it spreads over)")
        if self.variation_chips < 2:
            raise SynthesisError(f"--variation-chips must be at least 2 (a spread needs two chips), "
                                 f"got {self.variation_chips}")
        if self.variation_weight > 0 and not 1 <= self.variation_batch <= self.batch:
            raise SynthesisError(f"--variation-batch must be between 1 and --batch ({self.batch}), "
                                 f"got {self.variation_batch}")
        if not (self.tv_weight >= 0 and math.isfinite(self.tv_weight)):
            raise SynthesisError(f"--tv-weight must be 0 or more, got {self.tv_weight}")
        if self.seed < 0:  # numpy's SeedSequence (all noise streams) rejects negative seeds
            raise SynthesisError(f"--seed must be 0 or more, got {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def training_key(self) -> dict[str, Any]:
        """The settings a checkpoint must share to be resumed (not iterations/images)."""
        keys = ["batch", "lr", "seed", "hc_warmup"]
        if self.variation_weight > 0:   # only then: checkpoints of the seed's loss still resume
            keys += ["variation_weight", "variation", "variation_chips", "variation_batch"]
        if self.tv_weight > 0:
            keys += ["tv_weight"]
        return {k: v for k, v in self.to_dict().items() if k in keys}


@dataclass
class StepRecord:
    iteration: int       # 1-based: the state after this many updates
    loss: float
    h_c: float
    h_s: float
    spread: float = 0.0  # the chips' top-class spread (variation-aware loss only)


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


