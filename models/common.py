"""Shared helpers for the reference-model recipes: seeding, checkpoints, progress lines,
CIFAR batching/augmentation, ONNX export with round-trip checks, and MFLOPs counting."""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


# ----------------------------------------------------------------------------- seeding
def seed_everything(seed: int, threads: int = 2) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


# ----------------------------------------------------------------------------- model parts
class Normalize(nn.Module):
    """(x - mean) / std for NCHW input in 0..1; exported as Sub/Div at the graph input."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_mflops(model: nn.Module, input_shape) -> float:
    """MFLOPs per image = 2 * MACs of all Conv2d and Linear layers (bias/BN/ReLU/pool ignored)."""
    macs = [0]

    def conv_hook(m, _inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs[0] += out.numel() // out.shape[0] * k

    def lin_hook(m, _inp, out):
        macs[0] += m.in_features * m.out_features * (out.numel() // out.shape[0] // m.out_features)

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *input_shape))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return 2 * macs[0] / 1e6


# ----------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, state: dict) -> None:
    """Training state as PATH.npz + PATH.json (toolkit.torch_state): no pickle anywhere."""
    from egis.toolkit.torch_state import save_state

    save_state(path, state)


def load_checkpoint(path: Path) -> dict | None:
    """The state written by save_checkpoint, or None when there is no checkpoint yet."""
    from egis.toolkit.torch_state import load_state

    return load_state(path)


# ----------------------------------------------------------------------------- progress
class Progress:
    """Training-log lines for the recipes, on the toolkit's one line reporter
    (egis.toolkit.progress.LineProgress): running loss/acc/lr, ms/step and ETA."""

    def __init__(self, total_batches: int, every: int = 50, done_batches: int = 0):
        from egis.toolkit.progress import LineProgress

        self._lines = LineProgress(total_batches, every, done_batches)

    def step(self, epoch: int, epochs: int, batch: int, nbatches: int, global_done: int,
             loss: float, acc: float, lr: float) -> None:
        if (batch + 1) % self._lines.every and batch + 1 != nbatches:
            return
        self._lines.step(global_done, f"epoch {epoch + 1}/{epochs} batch {batch + 1}/{nbatches} "
                         f"loss {loss:.4f} acc {acc:.4f} lr {lr:.4f}", force=True)


# ----------------------------------------------------------------------------- CIFAR batches
def to_float_nchw(x_uint8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x_uint8).permute(0, 3, 1, 2).float().div_(255.0)


def augment_crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding `pad` plus horizontal flip, per image, seeded by `gen`."""
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h))  # n,h
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w))  # n,w
    cols = torch.where(flip.view(n, 1), cols.flip(1), cols)
    idx_n = torch.arange(n).view(n, 1, 1)
    out = padded.permute(0, 2, 3, 1)[idx_n, rows.view(n, h, 1), cols.view(n, 1, w)]  # n,h,w,c
    return out.permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


# ----------------------------------------------------------------------------- lr schedule
def onecycle_lr(step: int, total: int, peak: float, warm_frac: float = 0.15,
                start_div: float = 10.0, final_div: float = 1000.0) -> float:
    """Linear warm-up from peak/start_div to peak, then cosine to peak/final_div."""
    warm = max(1, int(total * warm_frac))
    if step < warm:
        return peak / start_div + (peak - peak / start_div) * step / warm
    t = (step - warm) / max(1, total - warm)
    lo = peak / final_div
    return lo + 0.5 * (peak - lo) * (1 + math.cos(math.pi * min(t, 1.0)))


# ----------------------------------------------------------------------------- export
def export_onnx(model: nn.Module, path: Path, input_shape, name: str, test_accuracy: float,
                extra_meta: dict | None = None, check_x: torch.Tensor | None = None) -> dict:
    """Export with dynamic batch (opset 13, dynamo=False), store metadata, verify round trips.

    Returns dict with max abs diffs for onnxruntime and onnx2torch vs torch.
    """
    import onnx
    import onnxruntime as ort

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    dummy = torch.zeros(2, *input_shape)
    tmp = path.with_name(path.name + ".tmp.onnx")
    torch.onnx.export(model, (dummy,), str(tmp), dynamo=False, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True)
    m = onnx.load(str(tmp))
    meta = {"egis.layout": "NCHW", "egis.pixel_range": "0,1", "egis.model_name": name,
            "egis.test_accuracy": f"{test_accuracy:.4f}"}
    meta.update(extra_meta or {})
    del m.metadata_props[:]
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, str(v)
    m.producer_name = "egis-toolkit models/"
    onnx.checker.check_model(m)
    onnx.save(m, str(tmp))

    # round trip checks
    gen = torch.Generator().manual_seed(123)
    x = check_x if check_x is not None else torch.rand(7, *input_shape, generator=gen)
    with torch.no_grad():
        ref = model(x).numpy()
    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    ort_out = sess.run(["logits"], {"input": x.numpy()})[0]
    d_ort = float(np.abs(ort_out - ref).max())

    import sys
    sys.path.insert(0, str(REPO_ROOT))
    from egis.toolkit.torch_bridge import to_torch

    tm = to_torch(onnx.load(str(tmp)))
    with torch.no_grad():
        o2t = tm(x).numpy()
    d_o2t = float(np.abs(o2t - ref).max())
    if ort_out.shape != (len(x), 10):
        raise AssertionError(f"bad output shape {ort_out.shape}")
    if d_ort >= 1e-4 or d_o2t >= 1e-4:
        raise AssertionError(f"round trip mismatch: onnxruntime {d_ort:.2e}, onnx2torch {d_o2t:.2e}")
    os.replace(tmp, path)
    print(f"exported {path}: max|ort-torch|={d_ort:.2e} max|onnx2torch-torch|={d_o2t:.2e}", flush=True)
    return {"ort_max_abs_diff": d_ort, "onnx2torch_max_abs_diff": d_o2t}
