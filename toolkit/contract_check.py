"""Check a declared input contract against the customer's own data before it leaves.

The commonest handoff mistake is a wrong contract (normalisation outside the graph left
out, the wrong layout, 0..255 pixels declared as 0..1): every chip is then labelled near
chance and the whole test is garbage, silently. The customer has data; the nominal model's
accuracy on it under the declared contract, next to the obvious alternatives, tells.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from egis.toolkit.errors import DataError, EgisError
from egis.toolkit.model import InputContract, LoadedModel

CLEARLY_BETTER = 0.10     # an alternative this much more accurate means the declaration is wrong
NEAR_CHANCE = 2.0         # declared accuracy below this many times 1/M is "near chance"


@dataclass(frozen=True)
class ContractCheck:
    declared: float
    alternatives: dict[str, float]     # description -> accuracy
    chance: float

    @property
    def best_alternative(self) -> tuple[str, float] | None:
        if not self.alternatives:
            return None
        name = max(self.alternatives, key=self.alternatives.get)
        return name, self.alternatives[name]

    def problem(self) -> str | None:
        """Why this contract should not be handed over, or None."""
        best = self.best_alternative
        if best is not None and best[1] >= self.declared + CLEARLY_BETTER:
            return (f"the declared input contract gives {100 * self.declared:.1f}% on your data, but "
                    f"{best[0]} gives {100 * best[1]:.1f}%: check --layout/--pixel-range/--mean/--std")
        if self.declared < NEAR_CHANCE * self.chance:
            return (f"the declared input contract gives {100 * self.declared:.1f}% on your data, near chance "
                    f"({100 * self.chance:.1f}%): check --layout/--pixel-range/--mean/--std")
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"declared_accuracy": self.declared, "alternatives": self.alternatives, "chance": self.chance}


def _alternatives(contract: InputContract) -> dict[str, InputContract]:
    out: dict[str, InputContract] = {}
    if contract.mean is not None or contract.std is not None:
        out["no normalisation (mean/std left out)"] = dataclasses.replace(contract, mean=None, std=None)
    else:
        for name, mean, std in (("ImageNet mean/std", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
                                ("CIFAR-10 mean/std", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))):
            if contract.channels == 3 and contract.pixel_max <= 1.0:
                out[f"{name} outside the graph"] = dataclasses.replace(contract, mean=mean, std=std)
    scale = 255.0 if contract.pixel_max <= 1.0 else 1 / 255.0
    out[f"pixels in {contract.pixel_min * scale:g}..{contract.pixel_max * scale:g}"] = dataclasses.replace(
        contract, pixel_min=contract.pixel_min * scale, pixel_max=contract.pixel_max * scale,
        mean=None if contract.mean is None else tuple(m * scale for m in contract.mean),
        std=None if contract.std is None else tuple(s * scale for s in contract.std))
    d1, d2, d3 = contract.image_shape          # the model's input dims after the batch
    other = "NHWC" if contract.layout == "NCHW" else "NCHW"
    c, h, w = (d3, d1, d2) if other == "NHWC" else (d1, d2, d3)
    if c in (1, 3, 4):
        keep = contract.mean is not None and len(contract.mean) == c
        out[f"layout {other}"] = dataclasses.replace(
            contract, layout=other, channels=c, height=h, width=w,
            mean=contract.mean if keep else None, std=contract.std if keep else None)
    return out


def nominal_accuracy(model: LoadedModel, data: Path, class_map: str | None, subdir: str | None,
                     limit: int = 2000) -> float:
    """Top-1 accuracy of the nominal model on (up to ``limit``) images of the customer's data,
    decoded under ``model.contract``."""
    from egis.toolkit.data import load_labelled_images
    from egis.toolkit.engine import ChipSimulator

    dataset = load_labelled_images(data, model.contract, model.num_classes, class_map, subdir)
    # a fixed random subset: data sets are often sorted by class, and the first images would
    # hold one or two classes only
    pick = np.sort(np.random.default_rng(0).choice(len(dataset.labels), min(limit, len(dataset.labels)),
                                                   replace=False))
    pixels, labels = dataset.pixels[pick], dataset.labels[pick]
    simulator = ChipSimulator(model, threads=None)
    logits = simulator.logits(simulator.nominal_weights(), pixels)
    return float(np.mean(logits.argmax(axis=1) == labels))


def _data_statistics(model: LoadedModel, data: Path, class_map: str | None, subdir: str | None) -> InputContract | None:
    """The contract that standardises with the data's own per-channel mean and std: what a
    model trained on normalised inputs most likely expects when none is declared."""
    from egis.toolkit.data import load_labelled_images

    contract = model.contract
    if contract.mean is not None:
        return None
    pixels = load_labelled_images(data, contract, model.num_classes, class_map, subdir).pixels
    axes = (0, 2, 3) if contract.layout == "NCHW" else (0, 1, 2)
    mean = tuple(float(v) for v in pixels.mean(axis=axes))
    std = tuple(max(float(v), 1e-6) for v in pixels.std(axis=axes))
    return dataclasses.replace(contract, mean=mean, std=std)


def check_contract(model: LoadedModel, data: Path, class_map: str | None = None,
                   subdir: str | None = None) -> ContractCheck:
    declared = nominal_accuracy(model, data, class_map, subdir)
    candidates = _alternatives(model.contract)
    standardised = _data_statistics(model, data, class_map, subdir)
    if standardised is not None:
        candidates["your data's own mean/std outside the graph"] = standardised
    alternatives = {}
    for name, contract in candidates.items():
        try:
            alternatives[name] = nominal_accuracy(dataclasses.replace(model, contract=contract), data,
                                                  class_map, subdir)
        except (EgisError, ValueError):   # an alternative the data or model cannot take
            continue
    if not np.isfinite(declared):
        raise DataError("the customer data gave no accuracy")
    return ContractCheck(declared, alternatives, 1.0 / model.num_classes)
