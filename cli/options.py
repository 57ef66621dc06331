"""Options shared by every command that loads the customer's model, with the same names.

The input contract (layout, pixel range, normalisation) is part of the model handoff: a
third-party ONNX file often keeps its mean/std outside the graph, and a wrong contract
silently labels every chip near chance. Every command that loads a model takes
``--layout``, ``--pixel-range``, ``--mean`` and ``--std`` (overriding what the model's
metadata says), and accepts a handoff folder (egis handoff) in place of MODEL.onnx.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer


def layout_option() -> Any:
    return typer.Option(None, "--layout", metavar="NCHW|NHWC", help="Input layout (overrides the model's metadata).")


def pixel_range_option() -> Any:
    return typer.Option(None, "--pixel-range", metavar="MIN,MAX",
                        help="Pixel domain of the images, e.g. 0,1 or 0,255 (overrides metadata).")


def mean_option() -> Any:
    return typer.Option(None, "--mean", metavar="M[,M,M]",
                        help="Per-channel mean subtracted before the model, when normalisation is "
                             "outside the graph (overrides metadata).")


def std_option() -> Any:
    return typer.Option(None, "--std", metavar="S[,S,S]",
                        help="Per-channel std divided by before the model (with --mean).")


def load_customer_model(model: Path, layout: Optional[str] = None, pixel_range: Optional[str] = None,
                        mean: Optional[str] = None, std: Optional[str] = None, require_torch: bool = False) -> Any:
    """MODEL.onnx or a handoff folder -> LoadedModel with the declared contract."""
    from egis.toolkit.handoff import is_handoff, open_handoff
    from egis.toolkit.model import load_model

    if is_handoff(model):
        model = open_handoff(model).model_path
    return load_model(model, layout=layout, pixel_range=pixel_range, mean=mean, std=std,
                      require_torch=require_torch)
