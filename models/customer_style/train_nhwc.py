"""A customer-style CIFAR-10 classifier: the kind of ONNX file tf2onnx writes for a Keras CNN.

Not tuned for EGIS in any way: NHWC input of raw 0..255 pixels (scaled inside the graph),
a Transpose to channels-first, three conv blocks, and dense layers as MatMul + Add (not
Gemm), trained briefly with Adam (one-cycle, peak 2e-3), no label smoothing, exported with the
legacy exporter at opset 13. The trained file is written to --out (not shipped: rebuild it
with this command; it is the model of the fidelity experiment in docs/results.md).

    python -m egis.models.customer_style.train_nhwc --epochs 6 --out runs/customer/nhwc.onnx
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


class KerasStyleCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(3, 32), block(32, 64), block(64, 96))     # 4x4x96
        self.w1 = nn.Parameter(torch.randn(4 * 4 * 96, 128) * (2.0 / (4 * 4 * 96)) ** 0.5)
        self.b1 = nn.Parameter(torch.zeros(128))
        self.w2 = nn.Parameter(torch.randn(128, 10) * (1.0 / 128) ** 0.5)
        self.b2 = nn.Parameter(torch.zeros(10))

    def forward(self, x_nhwc: torch.Tensor) -> torch.Tensor:
        x = x_nhwc.permute(0, 3, 1, 2) * (1.0 / 255.0)
        x = self.features(x)
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)            # Keras flattens NHWC
        x = torch.relu(torch.matmul(x, self.w1) + self.b1)
        return torch.matmul(x, self.w2) + self.b2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("runs/customer/nhwc.onnx"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    common.seed_everything(args.seed, args.threads)
    data = load_cifar10()
    x = torch.from_numpy(data["x_train"]).float()                  # NHWC, 0..255
    y = torch.from_numpy(data["y_train"]).long()
    xt = torch.from_numpy(data["x_test"]).float()
    yt = torch.from_numpy(data["y_test"]).long()
    model = KerasStyleCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    began = time.perf_counter()
    acc = fit(model, opt, x, y, xt, yt, epochs=args.epochs, peak_lr=2e-3, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (torch.zeros(2, 32, 32, 3),), str(args.out), dynamo=False, opset_version=13,
                      input_names=["input_1"], output_names=["dense_1"],
                      dynamic_axes={"input_1": {0: "batch"}, "dense_1": {0: "batch"}})
    (args.out.with_suffix(".json")).write_text(json.dumps(
        {"test_accuracy": acc, "epochs": args.epochs, "seconds": round(time.perf_counter() - began, 1)}))
    print(f"{args.out}: test accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
