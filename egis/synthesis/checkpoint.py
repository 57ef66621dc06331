"""Synthesis checkpoints: generator and Adam state through ``egis.toolkit.torch_state`` (one
checkpoint codec for the project: arrays to NPZ, structure to JSON, never a pickle), plus the
run's history and the settings a resumed run must share."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from egis.generator import PixelGenerator
from egis.synthesis.config import CHECKPOINT_NAME, StepRecord, SynthesisConfig, SynthesisError
from egis.toolkit.torch_state import CheckpointError, load_state, save_state


def save_checkpoint(directory: Path, generator: PixelGenerator, optimizer: torch.optim.Optimizer,
                    history: list[StepRecord], streak: int, model_sha256: str,
                    config: SynthesisConfig) -> None:
    """Write CHECKPOINT_NAME.npz + .json in ``directory`` (atomic each, JSON last)."""
    save_state(Path(directory) / CHECKPOINT_NAME, {
        "generator": generator.state_dict(), "optimizer": optimizer.state_dict(),
        "streak": streak, "model_sha256": model_sha256, "training": config.training_key(),
        "history": [list(dataclasses.astuple(r)) for r in history]})


def load_checkpoint(directory: Path, generator: PixelGenerator, optimizer: torch.optim.Optimizer,
                    model_sha256: str, config: SynthesisConfig) -> tuple[list[StepRecord], int]:
    """Restore generator and optimizer in place; return (history, streak)."""
    try:
        state = load_state(Path(directory) / CHECKPOINT_NAME)
    except CheckpointError:
        state = {}
    if state is None:
        raise SynthesisError(f"--resume: no checkpoint in {directory}")
    keys = ("generator", "optimizer", "streak", "model_sha256", "training", "history")
    if not all(key in state for key in keys):
        raise SynthesisError(f"--resume: checkpoint in {directory} is incomplete or damaged; "
                             "delete it and start again")
    if state["model_sha256"] != model_sha256:
        raise SynthesisError(f"--resume: checkpoint in {directory} was made for another model")
    if state["training"] != config.training_key():
        raise SynthesisError(f"--resume: checkpoint in {directory} used {state['training']}, "
                             f"not {config.training_key()}")
    generator.load_state_dict(state["generator"])
    optimizer.load_state_dict(state["optimizer"])
    history = [StepRecord(int(row[0]), *(float(v) for v in row[1:])) for row in state["history"]]
    return history, int(state["streak"])
