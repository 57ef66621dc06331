"""Write models/<name>/CARD.md from the result.json its recipe wrote.

    python -m egis.models.make_card digits cifar10_vgg16 cifar10_mobilenet
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MODELS = Path(__file__).resolve().parent

# Input contract, data and recipe text of both CIFAR-10 cards (one shared recipe module).
CIFAR10_CARD = {
    "input": "`input`: float32 NCHW `(batch, 3, 32, 32)`, RGB pixels in 0..1. Per-channel "
             "normalisation (mean 0.4914/0.4822/0.4465, std 0.2470/0.2435/0.2616) is inside the graph.",
    "data": "CIFAR-10 from `../shared/datasets/cifar10/cifar10-jpeg.zip` (JPEG re-encoding of the "
            "original; 50,000 train / 10,000 test), decoded once by `models/cifar10_data.py` into a "
            "cache outside the repo (`~/.cache/egis/cifar10_uint8.npz`).",
    "recipe": "SGD momentum 0.9 Nesterov, weight decay {weight_decay} (conv/dense weights only), "
              "one-cycle LR (linear warm-up over 15% of steps from peak/10 to peak {peak_lr}, cosine to "
              "peak/1000), label smoothing {label_smoothing}, batch {batch} (last partial batch dropped), "
              "{epochs} epochs, random crop (zero pad 4) + horizontal flip. Seed {seed}: epoch e's "
              "order and augmentation come from generators seeded with `seed*100003+e`, so `--resume` "
              "continues with the same batches. CPU only, torch threads {threads}.",
}

INFO = {
    "digits": {
        "title": "digits: small CNN on scikit-learn's 8x8 digits",
        "input": "`input`: float32 NCHW `(batch, 1, 8, 8)`, pixels = `load_digits().data / 16` in 0..1 "
                 "(row-major 8x8 image, channel 1). Normalisation `(x - mean) / std` with the "
                 "training-split mean/std (scalar, rounded to 4 decimals) is inside the graph.",
        "data": "scikit-learn `load_digits` (1,797 images). Fixed stratified 80/20 split, "
                "`train_test_split(test_size=0.2, stratify=y, random_state=0)`: 1,437 train / 360 test. "
                "`egis.models.digits.train.split()` reproduces it.",
        "recipe": "AdamW (weight decay 1e-4), OneCycle LR peak {peak_lr}, batch {batch}, {epochs} epochs, "
                  "cross-entropy, no augmentation, seed {seed}, torch threads {threads}.",
        "cmd": "python -m egis.models.digits.train --out models/digits --threads {threads}",
    },
    "cifar10_vgg16": {
        "title": "cifar10_vgg16: VGG16 topology at reduced width, CIFAR-10",
        **CIFAR10_CARD,
        "cmd": "python -m egis.models.cifar10_vgg16.train --out models/cifar10_vgg16 --epochs {epochs} --threads {threads}",
    },
    "cifar10_mobilenet": {
        "title": "cifar10_mobilenet: MobileNet v1 topology at reduced width, CIFAR-10",
        **CIFAR10_CARD,
        "cmd": "python -m egis.models.cifar10_mobilenet.train --out models/cifar10_mobilenet --epochs {epochs} --threads {threads}",
    },
}


def two_stage_text(name: str, r: dict, stage1: dict) -> dict[str, str]:
    """Recipe and reproduce text for a model fine-tuned from a finished stage-1 run (--init-from)."""
    s1 = stage1["recipe"]
    first = INFO[name]["recipe"].format(**s1)
    recipe = (f"Stage 1: {first}\n\nStage 2, fine-tuning from stage 1's last epoch "
              f"(`--init-from`, stage-1 test accuracy {100 * stage1['test_accuracy']:.2f}%): the same "
              f"optimiser, weight decay and augmentation with a fresh one-cycle schedule, peak LR "
              f"{r['peak_lr']}, label smoothing {r['label_smoothing']}, {r['epochs']} epochs, "
              f"torch threads {r['threads']}.")
    module = f"python -m egis.models.{name}.train"
    common = "--seed {seed} --batch {batch} --wd {weight_decay} --threads {threads}"
    cmd = (f"{module} --out runs/{name}/stage1-model --ckpt runs/{name}/stage1 --epochs {s1['epochs']} "
           f"--lr {s1['peak_lr']} --label-smoothing {s1['label_smoothing']} {common.format(**s1)}\n"
           f"{module} --out models/{name} --init-from runs/{name}/stage1 --epochs {r['epochs']} "
           f"--lr {r['peak_lr']} --label-smoothing {r['label_smoothing']} {common.format(**r)}")
    return {"recipe": recipe, "cmd": cmd}


def render(name: str, notes: str = "") -> str:
    r = json.loads((MODELS / name / "result.json").read_text())
    info = {k: v.format(**r) for k, v in INFO[name].items()}
    stage1 = r.get("init_from")
    if stage1 is not None:  # two-stage recipe: describe stage 1 with its own hyper-parameters
        info.update(two_stage_text(name, r, stage1))
    wall = r.get("total_train_wall_s", r["train_wall_s"])
    wall_txt = f"{wall:.0f} s" if wall < 120 else f"{wall / 60:.1f} min"
    # (epoch counted from the start of stage 1, record); stage 2's epochs follow stage 1's
    first = stage1["epochs"] if stage1 else 0
    epochs = ([(h["epoch"], h) for h in stage1["history"]] if stage1 else []) + \
        [(first + h["epoch"], h) for h in r["history"]]
    hist = [(e, h) for e, h in epochs if "test_acc" in h]
    curve = ", ".join(f"ep{e} {100 * h['test_acc']:.1f}%" + (" (stage 2 starts)" if e == first + 1 and stage1 else "")
                      for e, h in hist)
    lines = [
        f"# {info['title']}",
        "",
        f"File: `models/{name}/model.onnx` (registry name `{name}`; "
        f"`egis.models.registry.reference_model_path(\"{name}\")`).",
        "",
        "| | |",
        "|---|---|",
        f"| test accuracy | **{100 * r['test_accuracy']:.2f}%** on {r['test_images']:,} held-out test images |",
        f"| parameters | {r['params']:,} (trainable, before BN folding) |",
        f"| MFLOPs / image | {r['mflops_per_image']:.3f} (2 x MACs of Conv and Gemm layers) |",
        f"| training wall time | {wall_txt} on 2 shared CPU cores (torch threads {r['threads']}) |",
        f"| ONNX round trip | onnxruntime max abs diff {r['ort_max_abs_diff']:.1e}, onnx2torch {r['onnx2torch_max_abs_diff']:.1e} vs torch |",
        "",
        "## Architecture",
        "",
        r["architecture"] + ".",
        "",
        "## Input / output contract",
        "",
        info["input"],
        "",
        "`logits`: float32 `(batch, 10)`, unnormalised class scores; the batch dimension is dynamic. "
        "Exported with `torch.onnx.export(dynamo=False, opset_version=13)`; eval-mode BatchNorm is "
        "folded into the convolutions. ONNX `metadata_props`: `egis.layout=NCHW`, "
        "`egis.pixel_range=0,1`, `egis.model_name`, `egis.test_accuracy`.",
        "",
        "## Data",
        "",
        info["data"],
        "",
        "## Training recipe",
        "",
        info["recipe"],
        "",
    ]
    if len(hist) > 1:
        lines += [f"Test accuracy during training: {curve}. (The test set was only monitored, "
                  "never used to pick a checkpoint; the shipped model is the last epoch.)", ""]
    lines += ["## Reproduce", "", "```", info["cmd"], "```", "",
              "Checkpoints go to `--ckpt` (default `runs/" + name + "/ckpt`) as `.npz` + `.json` (gitignored, no pickle) "
              "after every epoch; add `--resume` (with the same command) to continue an interrupted run. Training on CPU is seeded but not "
              "guaranteed bit-identical across machines/thread counts.", ""]
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    return "\n".join(lines)


def population_section(name: str) -> str:
    """'Shipped chip populations', generated from populations/ (stats.json, the specs and the
    labelling side files), so the card always describes the files that ship."""
    folder = MODELS / name / "populations"
    if not (folder / "stats.json").exists():
        return ""
    stats = json.loads((folder / "stats.json").read_text())
    presets = [p for p in ("typical", "extreme") if p in stats]
    specs = {p: json.loads((folder / p / "labelled.json").read_text()) for p in presets}
    speed = {p: json.loads((folder / p / "labelled_accuracy.json").read_text()) for p in presets}
    first = presets[0]
    count, images, sigma = specs[first]["count"], stats[first]["images"], stats[first]["sigma_tot"]
    from egis.toolkit.registry import load_plugin  # noqa: PLC0415 - defaults the spec leaves out

    lam = load_plugin(specs[first]["plugin"], specs[first]["params"]).params["lam"]
    sample = "" if name == "digits" else f" --images {images}"
    lines = ["## Shipped chip populations", "",
             f"`models/{name}/populations/{{{','.join(presets)}}}/`, made by "
             f"`python -m egis.models.populations {name} --sigma {sigma:g} --count {count}{sample}` "
             f"(plugin `generic`, sigma_tot {sigma:g}, lambda {lam:g}, crossbars on one die; typical = "
             "25% systematic / 25% correlated / 50% random variance, extreme = 50% / 0% / 50%). "
             f"{count} labelled chips (seed 1) and {count} evaluation chips (seed 2) per setting, "
             f"each chip's accuracy measured on {images} test images.", "",
             "| variability | chips | mean | std | min | max | A50 | A60 | A70 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in presets:
        for chip_set in ("labelled", "evaluation"):
            s = stats[p][chip_set]
            lines.append(f"| {p}, {chip_set} | {specs[p]['count']} | {s['mean']:.4f} | {s['std']:.4f} | "
                         f"{s['min']:.4f} | {s['max']:.4f} | {s['A50']:.4f} | {s['A60']:.4f} | {s['A70']:.4f} |")
    lines += ["", "Histograms: " + ", ".join(f"`populations/accuracy_{p}.png`" for p in presets) +
              "; numbers in `populations/stats.json`. Files the fab receives: `labelled_A50.csv` / "
              "`_A60` / `_A70` (`dut,pass`); the customer's evaluation copies with accuracies: "
              "`*_accuracy.csv`.", ""]
    for p in presets:
        a50 = stats[p]["labelled"]["A50"]
        error = 100 * (a50 * (1 - a50) / images) ** 0.5
        spread = 100 * stats[p]["labelled"]["std"]
        gap = 100 * (stats[p]["labelled"]["A50"] - stats[p]["labelled"]["A70"])
        lines.append(f"**Sampling error, {p}.** A chip at the A50 cutoff (p = {a50:.3f}) measured on "
                     f"{images} images has a binomial standard error of {error:.1f} points, against a "
                     f"chip-accuracy spread (std) of {spread:.1f} points and an A50-A70 gap of "
                     f"{gap:.1f} points.")
        lines.append("")
    rates = []
    for p in presets:
        side = speed[p]
        extra = side.get("stimulus_images")
        how = (f" (the same pass also ran {extra} evaluation stimuli per chip)" if extra else "")
        rates.append(f"{p} {side['chips_per_s']} chips/s, {side['seconds']:.0f} s for "
                     f"{specs[p]['count']} chips{how}")
    lines += ["**Labelling speed** (labelled chips, as measured by `egis.models.populations`): " +
              "; ".join(rates) + ".", ""]
    return "\n".join(lines)


def card_text(name: str) -> str:
    """The whole CARD.md of a model: result.json + NOTES.md + the shipped populations."""
    notes_file = MODELS / name / "NOTES.md"
    text = render(name, notes_file.read_text() if notes_file.exists() else "")
    populations = population_section(name)
    return text.rstrip("\n") + "\n\n" + populations if populations else text


def main(argv=None):
    for name in (argv or sys.argv[1:]):
        (MODELS / name / "CARD.md").write_text(card_text(name))
        print(f"wrote models/{name}/CARD.md")


if __name__ == "__main__":
    main()
