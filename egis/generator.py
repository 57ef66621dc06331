"""The EGIS generator (seed paper, Table I), adapted to any image size, and its mapping into
the model's pixel domain and layout.

Seed network for 32x32 images (z in R^100 as (B, 100, 1, 1)):

    layer 1: ConvTranspose 100->256, kernel 2            -> 2x2     + BatchNorm + ReLU
    layer 2: ConvTranspose 256->128, k4 s2 p1            -> 4x4     + BatchNorm + ReLU
    layer 3: ConvTranspose 128->64,  k4 s2 p1            -> 8x8     + BatchNorm + ReLU
    layer 4: ConvTranspose 64->32,   k4 s2 p1            -> 16x16   + BatchNorm + ReLU
    layer 5: ConvTranspose 32->C,    k4 s2 p1            -> 32x32   + tanh

Size rule for other images (H, W): use the smallest number s >= 1 of stride-2 up-sampling
stages with 2 * 2**s >= max(H, W). Layers 2..5 are always present (the seed's capacity);
the first min(s, 4) of them up-sample (kernel 4, stride 2, padding 1) and the rest keep the
size (kernel 3, stride 1, padding 1). When s > 4, extra 32->32 up-sampling layers (with
BatchNorm + ReLU) go before layer 5. The square 2*2**s output is then center-cropped to
(H, W) - cropping rather than resizing keeps every output pixel a direct, sharp generator
output and is exact for the usual sizes (8, 16, 32, 64: no crop; 28 -> crop 2 each side).
Examples: 8x8 -> s=2 (2-4-8-8-8), 28x28 -> s=4 (32, crop), 32x16 -> s=4 (32x32, crop width).

:class:`PixelGenerator` wraps the network with tanh -> [pixel_min, pixel_max], the crop and
the NCHW -> NHWC permute, so its output is exactly a valid chip input in the pixel domain;
it is also what gets exported as generator.onnx.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

NOISE_DIM = 100
SEED_CHANNELS = (256, 128, 64, 32)


def upsampling_stages(height: int, width: int) -> int:
    """Smallest s >= 1 with 2 * 2**s >= max(height, width) (see module docstring)."""
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    stages = 1
    while 2 * 2 ** stages < max(height, width):
        stages += 1
    return stages


def _block(cin: int, cout: int, upsample: bool, last: bool) -> list[nn.Module]:
    """One ConvTranspose layer (+ BatchNorm + ReLU unless it is the output layer)."""
    if upsample:
        conv = nn.ConvTranspose2d(cin, cout, kernel_size=4, stride=2, padding=1, bias=last)
    else:
        conv = nn.ConvTranspose2d(cin, cout, kernel_size=3, stride=1, padding=1, bias=last)
    return [conv] if last else [conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class Generator(nn.Module):
    """Noise (B, 100) or (B, 100, 1, 1) -> images in [-1, 1], NCHW, already cropped to (H, W).

    ``init="torch"`` (default) keeps PyTorch's default initialisation, see :func:`dcgan_init`.
    Hidden ConvTranspose layers have no bias because the BatchNorm after them has one (the
    seed's DCGAN-style choice); the output layer has a bias.
    """

    def __init__(self, channels: int, height: int, width: int, init: str = "torch") -> None:
        super().__init__()
        self.channels, self.height, self.width = channels, height, width
        self.stages = upsampling_stages(height, width)
        self.size = 2 * 2 ** self.stages
        widths = list(SEED_CHANNELS) + [SEED_CHANNELS[-1]] * max(0, self.stages - 4)
        layers: list[nn.Module] = [nn.ConvTranspose2d(NOISE_DIM, widths[0], kernel_size=2, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
        ups = [i < self.stages for i in range(len(widths))]   # layers 2.. in order
        for i in range(1, len(widths)):
            layers += _block(widths[i - 1], widths[i], upsample=ups[i - 1], last=False)
        layers += _block(widths[-1], channels, upsample=ups[len(widths) - 1], last=True)
        layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        if init == "dcgan":
            self.apply(dcgan_init)
        elif init != "torch":
            raise ValueError(f"unknown init {init!r}; use 'dcgan' or 'torch'")

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        if noise.dim() == 2:
            noise = noise.reshape(noise.shape[0], NOISE_DIM, 1, 1)
        images = self.net(noise)
        return center_crop(images, self.height, self.width)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: ConvTranspose weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02).

    Not the default. torch's default for ConvTranspose2d computes fan-in from the *output*
    channels, so the output layer starts large and tanh nearly saturated (high-contrast,
    noise-like images). That looks worse but works better here: on the digits model (B=256,
    400 iterations) torch's init met the targets by iteration 76 with all 10 classes, while
    DCGAN's init never reached H_s >= 0.95 log M and dropped 2 classes (bench_synthesis.py).
    The diverse start keeps every class in play. Kept as ``init="dcgan"`` for experiments.
    """
    if isinstance(module, nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def center_crop(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Center crop of an NCHW batch (top/left get the smaller margin when odd)."""
    top = (images.shape[2] - height) // 2
    left = (images.shape[3] - width) // 2
    return images[:, :, top:top + height, left:left + width]


class PixelGenerator(nn.Module):
    """Generator followed by tanh -> pixel domain and layout: a chip input, ready to save.

    pixel = pixel_min + (t + 1) / 2 * (pixel_max - pixel_min), so every output lies in
    [pixel_min, pixel_max] by construction (tanh is bounded), with no clipping that would
    stop gradients.
    """

    def __init__(self, generator: Generator, pixel_min: float, pixel_max: float,
                 layout: str = "NCHW") -> None:
        super().__init__()
        if layout not in ("NCHW", "NHWC"):
            raise ValueError(f"unknown layout {layout!r}")
        self.generator = generator
        self.pixel_min, self.pixel_max = float(pixel_min), float(pixel_max)
        self.layout = layout

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        t = self.generator(noise)
        pixels = self.pixel_min + (t + 1.0) * (0.5 * (self.pixel_max - self.pixel_min))
        if self.layout == "NHWC":
            pixels = pixels.permute(0, 2, 3, 1)
        return pixels


class Normalizer(nn.Module):
    """Torch twin of ``InputContract.normalize``: (pixels - mean) / std per channel.

    Applied between the generator and the frozen model during training, so gradients see the
    same tensor the model sees at test time. Identity when the contract has no mean/std
    (normalisation inside the graph).
    """

    def __init__(self, mean: Sequence[float] | None, std: Sequence[float] | None, channels: int,
                 layout: str) -> None:
        super().__init__()
        shape = (1, channels, 1, 1) if layout == "NCHW" else (1, 1, 1, channels)
        mean_t = torch.zeros(channels) if mean is None else _per_channel(mean, channels)
        std_t = torch.ones(channels) if std is None else _per_channel(std, channels)
        self.register_buffer("mean", mean_t.reshape(shape))
        self.register_buffer("std", std_t.reshape(shape))
        self.identity = mean is None and std is None

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return pixels
        return (pixels - self.mean) / self.std


def _per_channel(values: Sequence[float], channels: int) -> torch.Tensor:
    tensor = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    if tensor.numel() == 1:
        tensor = tensor.expand(channels).clone()
    if tensor.numel() != channels:
        raise ValueError(f"{tensor.numel()} normalisation values for {channels} channels")
    return tensor


def recalibrate_batchnorm(generator: nn.Module, batches: int, batch_size: int,
                          seed: int) -> None:
    """Replace BatchNorm running statistics by the exact average over fresh noise batches.

    Training uses batch statistics; sampling and generator.onnx use running statistics.
    The exponential running average lags behind the last weights, so we recompute it with
    momentum=None (cumulative average) over ``batches`` batches of noise, without gradients.
    Deterministic given ``seed``.
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = generator.training
    generator.train()
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _ in range(batches):
            generator(torch.randn(batch_size, NOISE_DIM, generator=rng))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    generator.train(was_training)
