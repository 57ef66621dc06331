"""The frozen model as a torch module, the seeded noise streams and deterministic torch.

Only the generator learns: the model is converted by ``egis.toolkit.torch_bridge.to_torch``
into an eval-mode module with ``requires_grad=False`` everywhere, so neither its weights nor
its BatchNorm statistics can change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import onnx
import torch
from torch import nn

from egis.generator import NOISE_DIM, Generator, Normalizer, PixelGenerator
from egis.synthesis.predictions import ends_in_softmax
from egis.toolkit.errors import ModelError
from egis.toolkit.model import LoadedModel
from egis.toolkit.torch_bridge import to_torch


@contextlib.contextmanager
def deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seed torch, fix the thread count and force deterministic kernels; restore afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


def noise(seed: int, stream: int, index: int, count: int) -> torch.Tensor:
    """Standard normal noise (count, 100) that is a pure function of (seed, stream, index)."""
    state = np.random.SeedSequence([seed, stream, index]).generate_state(2, dtype=np.uint64)
    rng = torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
    return torch.randn(count, NOISE_DIM, generator=rng)




class FrozenClassifier(nn.Module):
    """Pixel-domain images in model layout -> (B, M) logits of the frozen model.

    Models whose graph already ends in Softmax give probabilities: their log is a valid logit
    vector (softmax of log p is p), so the loss sees the same distribution either way.
    """

    def __init__(self, model: LoadedModel, proto: onnx.ModelProto | None = None) -> None:
        """``proto``: the same graph with other weights (a simulated chip); default the model's."""
        super().__init__()
        contract = model.contract
        self.normalizer = Normalizer(contract.mean, contract.std, contract.channels, contract.layout)
        self.net = to_torch(model.proto if proto is None else proto)
        self.probabilities = ends_in_softmax(model)
        self.num_classes = model.num_classes
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenClassifier:
        """Stay in eval mode whatever the caller asks: BatchNorm statistics must not move."""
        return super().train(False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.net(self.normalizer(pixels))
        out = out.reshape(out.shape[0], -1)
        if self.probabilities:
            out = torch.log(out.clamp_min(1e-30))
        return out


def build_classifier(model: LoadedModel, probe_batch: int = 2) -> FrozenClassifier:
    """Convert and freeze the model; check it runs on a batch and gives M outputs."""
    classifier = FrozenClassifier(model)
    probe = torch.full((probe_batch, *model.contract.image_shape), model.contract.pixel_min)
    try:
        with torch.no_grad():
            out = classifier(probe)
    except Exception as exc:  # noqa: BLE001 - a graph with a fixed batch fails here
        raise ModelError(f"the converted model does not run on a batch of {probe_batch} images "
                         f"({type(exc).__name__}); synthesis needs a free batch dimension") from exc
    if out.shape != (probe_batch, model.num_classes):
        raise ModelError(f"the model gives {tuple(out.shape[1:])} outputs per image, "
                         f"expected {model.num_classes} class scores")
    return classifier


def build_generator(model: LoadedModel, seed: int) -> PixelGenerator:
    """The seeded, untrained generator that writes chip inputs for this model."""
    c = model.contract
    torch.manual_seed(seed)
    return PixelGenerator(Generator(c.channels, c.height, c.width), c.pixel_min, c.pixel_max, c.layout)



@contextlib.contextmanager
def warnings_quiet() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
