"""Shared CIFAR-10 training loop used by models/cifar10_*/train.py.

Seeded and resumable at epoch granularity: the data order and augmentation of epoch e come
from torch generators seeded with (seed, e), so a resumed run sees the same batches as an
uninterrupted one. Checkpoints go to runs/<name>/ckpt.npz + ckpt.json (gitignored, no pickle).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from egis.models import common
from egis.models.cifar10_data import load_cifar10


def parse_args(name: str, default_epochs: int, default_lr: float, argv=None):
    p = argparse.ArgumentParser(description=f"train the {name} reference model on CIFAR-10 (CPU)")
    p.add_argument("--out", type=Path, default=common.REPO_ROOT / "models" / name,
                   help="folder for model.onnx, CARD.md and result.json")
    p.add_argument("--epochs", type=int, default=default_epochs)
    p.add_argument("--resume", action="store_true", help="continue from runs/<name>/ckpt.npz/.json")
    p.add_argument("--init-from", type=Path, default=None, metavar="CKPT",
                   help="start from the weights of a finished run of this recipe (CKPT.npz/.json), "
                        "e.g. to fine-tune a label-smoothed model without smoothing")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=default_lr, help="peak learning rate (one-cycle)")
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--eval-every", type=int, default=2, help="epochs between test evaluations")
    p.add_argument("--print-every", type=int, default=50, help="batches between progress lines")
    p.add_argument("--ckpt", type=Path, default=common.REPO_ROOT / "runs" / name / "ckpt")
    p.add_argument("--time-batches", type=int, default=0,
                   help="only time this many training batches, print s/epoch, and exit")
    return p.parse_args(argv)


def recipe_of(args) -> dict:
    """The hyper-parameters a checkpoint records, so a later stage can describe where it started."""
    return {"epochs": args.epochs, "seed": args.seed, "threads": args.threads, "batch": args.batch,
            "peak_lr": args.lr, "weight_decay": args.wd, "label_smoothing": args.label_smoothing}


def recipe_changes(saved: dict | None, now: dict) -> str:
    """The hyper-parameters (threads aside) in which a checkpoint's recipe differs from this run's."""
    if saved is None:
        return ""
    keys = sorted(k for k in now if k != "threads" and k in saved and saved[k] != now[k])
    return ", ".join(f"{k} {saved[k]} -> {now[k]}" for k in keys)


def load_stage(path: Path, model: nn.Module) -> dict:
    """Load a finished run's weights into `model`; return what result.json says about that stage.

    Why a stage and not --resume: fine-tuning changes the recipe (e.g. no label smoothing), so it
    starts a fresh optimiser and schedule from the finished weights instead of continuing one.
    """
    ck = common.load_checkpoint(path)
    if ck is None:
        raise SystemExit(f"--init-from: no checkpoint at {path}.npz/.json")
    if "recipe" not in ck:
        raise SystemExit(f"--init-from: {path} does not record its recipe (made before --init-from "
                         "existed); add a 'recipe' entry with its hyper-parameters")
    if ck["epoch"] != ck["epochs"]:
        raise SystemExit(f"--init-from: {path} is not a finished run of this recipe "
                         f"(epoch {ck['epoch']} of {ck['epochs']})")
    model.load_state_dict(ck["model"])
    tested = [h["test_acc"] for h in ck["history"] if "test_acc" in h]
    return {"checkpoint": Path(path).name, "epochs": ck["epochs"], "recipe": ck["recipe"],
            "train_wall_s": round(ck["wall_s"], 1), "test_accuracy": tested[-1] if tested else None,
            "history": ck["history"]}


def train(name: str, build_model: Callable[[], nn.Module], args, describe: dict) -> dict:
    common.seed_everything(args.seed, args.threads)
    model = build_model()
    nparams = common.param_count(model)
    mflops = common.count_mflops(model, (3, 32, 32))
    print(f"{name}: {nparams} parameters, {mflops:.2f} MFLOPs/image, threads={args.threads}", flush=True)

    data = load_cifar10()
    x_train = torch.from_numpy(data["x_train"])  # uint8 N,32,32,3
    y_train = torch.from_numpy(data["y_train"])
    x_test = common.to_float_nchw(data["x_test"])
    y_test = torch.from_numpy(data["y_test"])
    n = len(x_train)
    nb = n // args.batch  # drop the last partial batch
    total_steps = args.epochs * nb

    decay, no_decay = [], []
    for pname, prm in model.named_parameters():
        (no_decay if prm.ndim <= 1 else decay).append(prm)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": args.wd},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=args.lr, momentum=0.9, nesterov=True)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)

    recipe = recipe_of(args)
    stage1 = None
    if args.init_from is not None:
        stage1 = load_stage(args.init_from, model)
        print(f"initialised from {args.init_from} ({stage1['epochs']} epochs, label smoothing "
              f"{stage1['recipe']['label_smoothing']})", flush=True)

    start_epoch, history, wall_before = 0, [], 0.0
    if args.resume:
        ck = common.load_checkpoint(args.ckpt)
        if ck is None:
            print(f"no checkpoint at {args.ckpt}; starting "
                  f"{'from the --init-from weights' if stage1 else 'from scratch'}", flush=True)
        else:
            if ck["epochs"] != args.epochs:
                raise SystemExit(f"checkpoint was made for --epochs {ck['epochs']}, not {args.epochs}")
            changed = recipe_changes(ck.get("recipe"), recipe)
            if changed:
                raise SystemExit(f"checkpoint was made with another recipe ({changed}); "
                                 "resume with the same settings")
            stage1 = stage1 or ck.get("init_from")  # a resumed stage 2 keeps its stage-1 record
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["opt"])
            start_epoch, history, wall_before = ck["epoch"], ck["history"], ck["wall_s"]
            torch.set_rng_state(ck["torch_rng"])
            print(f"resumed from {args.ckpt} at epoch {start_epoch}", flush=True)

    if args.time_batches:
        model.train()
        gen = torch.Generator().manual_seed(args.seed)
        t0 = None
        for b in range(args.time_batches + 2):
            if b == 2:
                t0 = time.time()
            idx = torch.randint(0, n, (args.batch,), generator=gen)
            xb = common.augment_crop_flip(common.to_float_nchw(x_train[idx].numpy()), gen)
            loss = loss_fn(model(xb), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        dt = (time.time() - t0) / args.time_batches
        print(f"TIMING {name}: {dt * 1000:.0f} ms/batch -> {dt * nb / 60:.2f} min/epoch "
              f"(threads={args.threads})", flush=True)
        return {}

    prog = common.Progress(total_steps, args.print_every, done_batches=start_epoch * nb)
    t_start = time.time()
    for epoch in range(start_epoch, args.epochs):
        model.train()
        gen = torch.Generator().manual_seed(args.seed * 100003 + epoch)
        perm = torch.randperm(n, generator=gen)
        run_loss, run_correct, run_n = 0.0, 0, 0
        for b in range(nb):
            step = epoch * nb + b
            lr = common.onecycle_lr(step, total_steps, args.lr)
            for g in opt.param_groups:
                g["lr"] = lr
            idx = perm[b * args.batch:(b + 1) * args.batch]
            xb = common.augment_crop_flip(common.to_float_nchw(x_train[idx].numpy()), gen)
            yb = y_train[idx]
            out = model(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            run_loss += loss.item() * len(yb)
            run_correct += (out.argmax(1) == yb).sum().item()
            run_n += len(yb)
            prog.step(epoch, args.epochs, b, nb, step + 1, run_loss / run_n, run_correct / run_n, lr)
        rec = {"epoch": epoch + 1, "train_loss": run_loss / run_n, "train_acc": run_correct / run_n}
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
            rec["test_acc"] = common.evaluate(model, x_test, y_test)
        history.append(rec)
        wall = wall_before + time.time() - t_start
        print(f"END epoch {epoch + 1}: " + json.dumps(rec) + f" wall {wall / 60:.1f} min", flush=True)
        common.save_checkpoint(args.ckpt, {
            "model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch + 1,
            "epochs": args.epochs, "history": history, "wall_s": wall,
            "torch_rng": torch.get_rng_state(), "recipe": recipe, "init_from": stage1})

    wall = wall_before + time.time() - t_start
    model.eval()
    test_acc = common.evaluate(model, x_test, y_test)
    print(f"FINAL {name}: test accuracy {test_acc:.4f} on 10000 CIFAR-10 test images, "
          f"training wall time {wall / 60:.1f} min", flush=True)
    check = common.export_onnx(model, args.out / "model.onnx", (3, 32, 32), name, test_acc,
                               check_x=x_test[:64])
    result = {"name": name, "test_accuracy": test_acc, "test_images": len(y_test),
              "params": nparams, "mflops_per_image": round(mflops, 3),
              "train_wall_s": round(wall, 1), "epochs": args.epochs, "seed": args.seed,
              "threads": args.threads, "batch": args.batch, "peak_lr": args.lr,
              "weight_decay": args.wd, "label_smoothing": args.label_smoothing,
              "history": history, **check, **describe}
    if stage1 is not None:
        result["init_from"] = stage1
        result["total_train_wall_s"] = round(wall + stage1["train_wall_s"], 1)
    (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out / 'result.json'}", flush=True)
    return result
