"""VGG16 topology at reduced width for CIFAR-10, trained on CPU.

13 conv3x3 (BN + ReLU) in the 2-2-3-3-3 pattern with 5 max-pools, then 3 dense layers.
Input: NCHW float32 pixels in 0..1; per-channel normalisation is the model's first layer.

    python -m egis.models.cifar10_vgg16.train --out models/cifar10_vgg16 [--epochs E] [--resume]

The shipped model is two stages (30 epochs with label smoothing 0.1, then 5 without,
``--init-from``); CARD.md has both commands. Label smoothing alone caps the model's
confidence below what synthesis's H_c target asks (NOTES.md).
"""

from __future__ import annotations

from torch import nn

from egis.models import common
from egis.models.cifar_recipe import parse_args, train

NAME = "cifar10_vgg16"
WIDTHS = [16, 16, "M", 32, 32, "M", 64, 64, 64, "M", 128, 128, 128, "M", 128, 128, 128, "M"]
DENSE = 128
DEFAULT_EPOCHS = 30
DEFAULT_LR = 0.1


class VGG16(nn.Module):
    def __init__(self, cfg=WIDTHS, dense=DENSE, num_classes=10, dropout=0.3):
        super().__init__()
        layers: list[nn.Module] = [common.Normalize(common.CIFAR10_MEAN, common.CIFAR10_STD)]
        c = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v),
                           nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c, dense), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(dense, dense), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(dense, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def main(argv=None):
    args = parse_args(NAME, DEFAULT_EPOCHS, DEFAULT_LR, argv)
    c_last = [w for w in WIDTHS if w != "M"][-1]
    describe = {"architecture": f"VGG16 topology, conv widths {[w for w in WIDTHS if w != 'M']}, "
                                f"5 max-pools, 3 dense layers {c_last}->{DENSE}->{DENSE}->10 with dropout 0.3"}
    train(NAME, VGG16, args, describe)


if __name__ == "__main__":
    main()
