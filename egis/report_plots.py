"""Figures of the evaluation report: chip-accuracy histogram and the Fig. 5 grouped bars."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from egis.toolkit.io import atomic_path  # noqa: E402


def _save(figure, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)


def accuracy_histogram(path: str | os.PathLike, accuracies: Mapping[str, np.ndarray],
                       cutoffs: Mapping[str, float], title: str) -> None:
    """Chip accuracies (one series per population) with the cutoffs marked as lines."""
    figure, axis = plt.subplots(figsize=(7, 3.6))
    everything = np.concatenate(list(accuracies.values()))
    bins = np.linspace(everything.min(), everything.max(), 41)
    for name, values in accuracies.items():
        axis.hist(values, bins=bins, alpha=0.55, label=f"{name} ({len(values)} chips)")
    for index, (name, value) in enumerate(cutoffs.items()):
        axis.axvline(value, color=f"C{index + 3}", linestyle="--", linewidth=1.2, label=f"{name} = {value:.4f}")
    axis.set_xlabel("chip accuracy")
    axis.set_ylabel("chips")
    axis.set_yscale("log")
    axis.set_title(title)
    axis.legend(fontsize=8)
    _save(figure, path)


def grouped_bars(path: str | os.PathLike, groups: Sequence[str], series: Mapping[str, Sequence[float]],
                 errors: Mapping[str, Sequence[float]] | None, title: str, ylabel: str = "% of chips") -> None:
    """Bars of several metrics (series) for each group (e.g. K and cutoff), with error bars."""
    figure, axis = plt.subplots(figsize=(max(6, 0.7 * len(groups) * len(series) / 2), 3.8))
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for index, (name, values) in enumerate(series.items()):
        yerr = None if errors is None else errors.get(name)
        axis.bar(x + (index - (len(series) - 1) / 2) * width, values, width, yerr=yerr, capsize=2, label=name)
    axis.set_xticks(x, groups, rotation=30, ha="right", fontsize=8)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=8, ncol=len(series))
    axis.grid(axis="y", alpha=0.3)
    _save(figure, path)
