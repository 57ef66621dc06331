"""MobileNet v1 topology at reduced width for CIFAR-10, trained on CPU.

Conv3x3 stem (stride 1 for 32x32 inputs), then 13 depthwise-separable blocks
(depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN + ReLU) with CIFAR strides (stride 2 in
blocks 2, 4, 6 and 12: 32 -> 16 -> 8 -> 4 -> 2), global average pool, one dense layer.
Input: NCHW float32 pixels in 0..1; per-channel normalisation is the model's first layer.

    python -m egis.models.cifar10_mobilenet.train --out models/cifar10_mobilenet [--epochs E] [--resume]

The shipped model is two stages (20 epochs with label smoothing 0.1, then 4 without,
``--init-from``); CARD.md has both commands. Label smoothing alone caps the model's
confidence below what synthesis's H_c target asks (NOTES.md).
"""

from __future__ import annotations

from torch import nn

from egis.models import common
from egis.models.cifar_recipe import parse_args, train

NAME = "cifar10_mobilenet"
# (out_channels at width 1.0, stride) for the 13 depthwise-separable blocks
BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]
STEM = 32
ALPHA = 0.5
DEFAULT_EPOCHS = 20
DEFAULT_LR = 0.1


def _cbr(cin, cout, k, stride, groups=1):
    return [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class MobileNetV1(nn.Module):
    def __init__(self, alpha=ALPHA, num_classes=10):
        super().__init__()
        c = int(STEM * alpha)
        layers: list[nn.Module] = [common.Normalize(common.CIFAR10_MEAN, common.CIFAR10_STD)]
        layers += _cbr(3, c, 3, 1)
        for cout, stride in BLOCKS:
            cout = int(cout * alpha)
            layers += _cbr(c, c, 3, stride, groups=c)  # depthwise
            layers += _cbr(c, cout, 1, 1)              # pointwise
            c = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


def main(argv=None):
    args = parse_args(NAME, DEFAULT_EPOCHS, DEFAULT_LR, argv)
    describe = {"architecture": f"MobileNet v1 topology, width multiplier {ALPHA}, stem {int(STEM * ALPHA)}, "
                                f"13 depthwise-separable blocks, CIFAR strides, GAP + dense 10"}
    train(NAME, MobileNetV1, args, describe)


if __name__ == "__main__":
    main()
