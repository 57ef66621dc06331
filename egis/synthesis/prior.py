"""An image prior for synthesis (``egis synthesize --tv-weight``): total variation.

Why: the seed's loss alone makes high-frequency, noise-like images (docs/results.md, "What a
stimulus set tells about the chips"). Data-free synthesis elsewhere (DeepInversion and its
kin) adds a smoothness prior so that images look more like the natural ones a classifier was
trained on; the hope here is that such images exercise the chips the way the customer's data
does. The term is the mean absolute difference between neighbouring pixels along both spatial
axes, in the model's layout, in units of the model's pixel range: a weight means the same on
a model of 0..1 pixels and one of raw 0..255 pixels. At weight 0 it is not computed and the
seed's loss runs unchanged.
"""

from __future__ import annotations

import torch


def total_variation(images: torch.Tensor, layout: str, pixel_range: float = 1.0) -> torch.Tensor:
    """Mean |x[i+1, j] - x[i, j]| plus mean |x[i, j+1] - x[i, j]| over a (B, C, H, W) or
    (B, H, W, C) batch (``layout`` "NCHW" or "NHWC"), divided by ``pixel_range`` (the model's
    pixel max minus min)."""
    if not pixel_range > 0:
        raise ValueError(f"pixel_range must be positive, got {pixel_range}")
    if layout == "NHWC":
        images = images.permute(0, 3, 1, 2)
    elif layout != "NCHW":
        raise ValueError(f"unknown layout {layout!r}")
    return ((images[..., 1:, :] - images[..., :-1, :]).abs().mean()
            + (images[..., :, 1:] - images[..., :, :-1]).abs().mean()) / pixel_range
