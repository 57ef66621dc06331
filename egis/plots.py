"""Shared plotting helpers: line plots and labelled image grids written straight to PNG.

They draw on a bare ``matplotlib.figure.Figure`` with the Agg canvas instead of pyplot, so
they never touch matplotlib's global backend or figure registry (safe in libraries, tests
and threads, no display needed) and never leak figures. Files are written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from egis.toolkit.io import atomic_path

Series = tuple[Sequence[float], Sequence[float]]


def _save(figure: Figure, path: str | os.PathLike, dpi: int) -> None:
    FigureCanvasAgg(figure)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")


def line_plot(path: str | os.PathLike, series: Mapping[str, Series], *,
              hlines: Mapping[str, float] | None = None, title: str = "", xlabel: str = "",
              ylabel: str = "", logx: bool = False, logy: bool = False,
              size: tuple[float, float] = (6.0, 4.0), dpi: int = 100) -> None:
    """One axes with a line per named (x, y) series and dashed horizontal reference lines."""
    figure = Figure(figsize=size)
    axes = figure.add_subplot()
    for name, (x, y) in series.items():
        axes.plot(np.asarray(x), np.asarray(y), label=name, linewidth=1.2)
    for name, value in (hlines or {}).items():
        axes.axhline(value, linestyle="--", color="gray", linewidth=1.0, label=name)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if logx:
        axes.set_xscale("log")
    if logy:
        axes.set_yscale("log")
    axes.grid(alpha=0.3)
    if series or hlines:
        axes.legend(fontsize="small")
    _save(figure, path, dpi)


def to_display(images: np.ndarray, layout: str = "NCHW", vmin: float | None = None,
               vmax: float | None = None) -> np.ndarray:
    """(N, C, H, W) or (N, H, W, C) images of any range -> (N, H, W, C) float in [0, 1].

    ``vmin``/``vmax`` default to the data's min/max (pass the pixel domain to keep contrast
    comparable across grids). Channel counts other than 1 and 3 show the first channel.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[..., None] if layout == "NHWC" else x[:, None]
    if layout == "NCHW":
        x = x.transpose(0, 2, 3, 1)
    if x.shape[-1] not in (1, 3):
        x = x[..., :1]
    lo = float(np.min(x)) if vmin is None else vmin
    hi = float(np.max(x)) if vmax is None else vmax
    return np.clip((x - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)


def mosaic(images: np.ndarray, columns: int, gap: int = 1) -> np.ndarray:
    """(N, H, W, C) in [0, 1] -> one (rows*(H+gap)-gap, columns*(W+gap)-gap, C) image, white gaps."""
    count, height, width, channels = images.shape
    rows = max(1, math.ceil(count / columns))
    canvas = np.ones((rows * (height + gap) - gap, columns * (width + gap) - gap, channels))
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[r * (height + gap):r * (height + gap) + height, c * (width + gap):c * (width + gap) + width] = image
    return canvas


def image_grid(path: str | os.PathLike, images: np.ndarray, labels: Sequence[str] | None = None, *,
               layout: str = "NCHW", vmin: float | None = None, vmax: float | None = None,
               columns: int | None = None, title: str = "", cell_inches: float = 0.9,
               dpi: int = 100) -> None:
    """A grid of images, each with an optional label above it (e.g. the predicted class).

    Drawn as ONE mosaic image with text labels: one axes per image costs ~0.1 s each in
    matplotlib, which made a 64-image grid take seconds.
    """
    shown = to_display(images, layout, vmin, vmax)
    count, height, width, _ = shown.shape if len(shown) else (0, 1, 1, 1)
    columns = columns or max(1, math.ceil(math.sqrt(max(count, 1))))
    rows = max(1, math.ceil(count / columns))
    gap = max(1, height // 3) if labels is not None else 1
    figure = Figure(figsize=(columns * cell_inches, rows * cell_inches + (0.4 if title else 0.1)))
    axes = figure.add_axes((0.0, 0.0, 1.0, 0.93 if title else 1.0))
    axes.set_axis_off()
    if count:
        canvas = mosaic(shown, columns, gap)
        if canvas.shape[-1] == 1:
            axes.imshow(canvas[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            axes.imshow(canvas, interpolation="nearest")
        for i, label in enumerate(labels if labels is not None else []):
            r, c = divmod(i, columns)
            axes.text(c * (width + gap) + width / 2 - 0.5, r * (height + gap) - 0.5, str(label),
                      ha="center", va="bottom", fontsize=6, color="black",
                      bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8})
        axes.set_ylim(canvas.shape[0] - 0.5, -gap - 0.5)
    if title:
        figure.suptitle(title, fontsize=9)
    _save(figure, path, dpi)
