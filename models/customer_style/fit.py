"""The training loop both customer-style recipes share: minibatches of 128 with horizontal
flips, one-cycle learning rate, test accuracy after every epoch. Only the model, the optimiser,
the peak learning rate, what the network is fed and the label smoothing differ between them."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from egis.models import common

BATCH = 128


def fit(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
        xt: torch.Tensor, yt: torch.Tensor, *, epochs: int, peak_lr: float, seed: int,
        inputs: Callable[[torch.Tensor], torch.Tensor] = lambda batch: batch,
        label_smoothing: float = 0.0) -> float:
    """Train on ``x`` (NHWC, 0..255; ``inputs`` turns a batch into what the network takes) and
    return the last epoch's accuracy on ``xt`` (already in the network's input form)."""
    steps = epochs * (len(x) // BATCH)
    step, began = 0, time.perf_counter()
    acc = 0.0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        for i in range(0, len(x) - BATCH + 1, BATCH):
            idx = order[i:i + BATCH]
            batch = x[idx]
            flip = torch.rand(len(idx)) < 0.5                          # horizontal flips only
            batch[flip] = batch[flip].flip(2)
            for group in opt.param_groups:
                group["lr"] = common.onecycle_lr(step, steps, peak_lr)
            loss = nn.functional.cross_entropy(model(inputs(batch)), y[idx], label_smoothing=label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 100 == 0:
                print(f"epoch {epoch + 1} step {step}/{steps} loss {loss.item():.3f} "
                      f"{time.perf_counter() - began:.0f} s", flush=True)
        model.eval()
        with torch.no_grad():
            acc = float(np.mean([(model(xt[i:i + 500]).argmax(1) == yt[i:i + 500]).float().mean().item()
                                 for i in range(0, len(xt), 500)]))
        print(f"epoch {epoch + 1}: test accuracy {acc:.4f}", flush=True)
    return acc
