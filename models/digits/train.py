"""Small CNN on scikit-learn's 8x8 digits; the default model for demos and tests.

Pixels are data/16 in 0..1, shaped NCHW (N, 1, 8, 8); normalisation is inside the graph.
Split: fixed stratified 80/20 with random_state=0 (see `split()`).

    python -m egis.models.digits.train --out models/digits [--epochs E] [--resume]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from egis.models import common
from egis.toolkit.data import DIGITS_SPLIT_SEED, digits_split

NAME = "digits"
SPLIT_SEED = DIGITS_SPLIT_SEED
DEFAULT_EPOCHS = 60


def split():
    """(x_train, y_train, x_test, y_test) of the digits data: egis.toolkit.data.digits_split."""
    return digits_split()


class DigitsCNN(nn.Module):
    def __init__(self, mean: float = 0.3, std: float = 0.4):
        super().__init__()
        self.net = nn.Sequential(
            common.Normalize((mean,), (std,)),
            nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),                                                   # 4x4
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),                                                   # 2x2
            nn.Flatten(), nn.Linear(256, 64), nn.ReLU(inplace=True), nn.Dropout(0.2),
            nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)


def main(argv=None):
    p = argparse.ArgumentParser(description="train the digits reference model (CPU, seconds)")
    p.add_argument("--out", type=Path, default=common.REPO_ROOT / "models" / NAME)
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--ckpt", type=Path, default=common.REPO_ROOT / "runs" / NAME / "ckpt")
    args = p.parse_args(argv)

    common.seed_everything(args.seed, args.threads)
    xtr, ytr, xte, yte = split()
    mean, std = float(xtr.mean()), float(xtr.std())
    model = DigitsCNN(round(mean, 4), round(std, 4))
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    xte_t, yte_t = torch.from_numpy(xte), torch.from_numpy(yte)
    nb = (len(xtr) + args.batch - 1) // args.batch
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * nb)
    loss_fn = nn.CrossEntropyLoss()

    start, history, wall_before = 0, [], 0.0
    if args.resume and (ck := common.load_checkpoint(args.ckpt)) is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        start, history, wall_before = ck["epoch"], ck["history"], ck["wall_s"]
        print(f"resumed from {args.ckpt} at epoch {start}", flush=True)

    prog = common.Progress(args.epochs * nb, every=10, done_batches=start * nb)
    t0 = time.time()
    for epoch in range(start, args.epochs):
        model.train()
        gen = torch.Generator().manual_seed(args.seed * 100003 + epoch)
        perm = torch.randperm(len(xtr_t), generator=gen)
        tot_loss, tot_ok, tot_n = 0.0, 0, 0
        for b in range(nb):
            idx = perm[b * args.batch:(b + 1) * args.batch]
            out = model(xtr_t[idx])
            loss = loss_fn(out, ytr_t[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += loss.item() * len(idx)
            tot_ok += (out.argmax(1) == ytr_t[idx]).sum().item()
            tot_n += len(idx)
            if (epoch + 1) % 10 == 0 or epoch == 0:
                prog.step(epoch, args.epochs, b, nb, epoch * nb + b + 1, tot_loss / tot_n,
                          tot_ok / tot_n, sched.get_last_lr()[0])
        history.append({"epoch": epoch + 1, "train_loss": tot_loss / tot_n, "train_acc": tot_ok / tot_n})
        common.save_checkpoint(args.ckpt, {"model": model.state_dict(), "opt": opt.state_dict(),
                                           "sched": sched.state_dict(), "epoch": epoch + 1,
                                           "history": history, "wall_s": wall_before + time.time() - t0})
    wall = wall_before + time.time() - t0
    test_acc = common.evaluate(model, xte_t, yte_t)
    history[-1]["test_acc"] = test_acc
    print(f"FINAL {NAME}: test accuracy {test_acc:.4f} on {len(yte)} held-out digits, "
          f"training wall time {wall:.1f} s", flush=True)
    check = common.export_onnx(model, args.out / "model.onnx", (1, 8, 8), NAME, test_acc,
                               extra_meta={"egis.split": "sklearn load_digits, stratified 80/20, random_state=0"},
                               check_x=xte_t[:64])
    result = {"name": NAME, "test_accuracy": test_acc, "test_images": len(yte),
              "params": common.param_count(model),
              "mflops_per_image": round(common.count_mflops(model, (1, 8, 8)), 4),
              "train_wall_s": round(wall, 1), "epochs": args.epochs, "seed": args.seed,
              "threads": args.threads, "batch": args.batch, "peak_lr": args.lr,
              "weight_decay": 1e-4, "label_smoothing": 0.0, "normalisation": [mean, std],
              "history": history, **check,
              "architecture": "3x conv3x3 (16-32-64, BN+ReLU, 2 max-pools) + dense 256-64-10, dropout 0.2"}
    (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
