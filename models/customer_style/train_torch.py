"""Customer-style CIFAR-10 classifiers of the kinds a PyTorch shop hands over.

Neither is tuned for EGIS. Both are a small conv net with BatchNorm (folded into the convs by
the exporter) and ``nn.Linear`` heads (Gemm), trained briefly with SGD + momentum and flips:

* ``--style smoothed``: trained with label smoothing 0.1 (the torchvision recipes' default),
  so its softmax never gets confident (H_c cannot reach EGIS's target); normalisation inside
  the graph, pixels 0..1, dynamic batch, opset 17.
* ``--style normout``: normalisation OUTSIDE the graph, as a torchvision ``Normalize`` in the
  customer's data loader: the ONNX input is ``(x/255 - mean)/std`` and the customer must
  declare ``--mean 0.4914,0.4822,0.4465 --std 0.2470,0.2435,0.2616``; exported the old way,
  opset 11 with a fixed batch of 1.

The trained file is written to --out with a side file of its accuracy (not shipped: rebuild
it with this command; these are models of the fidelity experiment in docs/results.md).

    python -m egis.models.customer_style.train_torch --style smoothed --out runs/customer/smoothed.onnx
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from egis.models import common
from egis.models.cifar10_data import load_cifar10
from egis.models.customer_style.fit import fit

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
STYLES = ("smoothed", "normout")


class TorchStyleCNN(nn.Module):
    """conv-BN-ReLU x2 + pool, three times; global average pool; two Linear layers."""

    def __init__(self, normalize_inside: bool) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                    nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                    nn.MaxPool2d(2)]

        self.normalize_inside = normalize_inside
        self.register_buffer("mean", torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(CIFAR_STD).view(1, 3, 1, 1))
        self.features = nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128))   # 4x4x128
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(128, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize_inside:
            x = (x - self.mean) / self.std
        x = torch.flatten(self.pool(self.features(x)), 1)
        return self.fc2(torch.relu(self.fc1(x)))


def model_input(pixels_nhwc: torch.Tensor, style: str) -> torch.Tensor:
    """What the customer's loader feeds the network: NCHW 0..1, normalised for ``normout``."""
    x = pixels_nhwc.permute(0, 3, 1, 2) * (1.0 / 255.0)
    if style == "normout":
        x = (x - torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return x


def export(model: TorchStyleCNN, style: str, out: Path) -> None:
    model.eval()
    if style == "smoothed":
        torch.onnx.export(model, (torch.zeros(2, 3, 32, 32),), str(out), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    else:  # the old way: fixed batch of 1, opset 11
        torch.onnx.export(model, (torch.zeros(1, 3, 32, 32),), str(out), dynamo=False, opset_version=11,
                          input_names=["input.1"], output_names=["output"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", choices=STYLES, required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    common.seed_everything(args.seed, args.threads)
    data = load_cifar10()
    x = torch.from_numpy(data["x_train"]).float()                  # NHWC, 0..255
    y = torch.from_numpy(data["y_train"]).long()
    xt = model_input(torch.from_numpy(data["x_test"]).float(), args.style)
    yt = torch.from_numpy(data["y_test"]).long()
    model = TorchStyleCNN(normalize_inside=args.style == "smoothed")
    smoothing = 0.1 if args.style == "smoothed" else 0.0
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    began = time.perf_counter()
    acc = fit(model, opt, x, y, xt, yt, epochs=args.epochs, peak_lr=0.1, seed=args.seed,
              inputs=lambda batch: model_input(batch, args.style), label_smoothing=smoothing)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    export(model, args.style, args.out)
    (args.out.with_suffix(".json")).write_text(json.dumps(
        {"style": args.style, "test_accuracy": acc, "epochs": args.epochs, "label_smoothing": smoothing,
         "seconds": round(time.perf_counter() - began, 1)}))
    print(f"{args.out}: test accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
