"""The variation-aware term of synthesis (method ``egis-va``): images the fab's chips disagree on.

Why: the seed's loss pushes every image deep into a confident region of the nominal model
(H_c -> 0). On a model nobody tuned for EGIS those images sit far from the decision
boundaries, where the deviations of a chip barely move the prediction, so the chips' responses
carry little about their accuracy (measured on the customer-style NHWC model, docs/results.md).
The fab knows its own variability model, and a handful of chips drawn from it fits in the
torch graph: this term rewards images whose top-class probability differs across those chips.

With p_c(x) the softmax of chip c on image x and y(x) the nominal model's top class, the
spread of an image is the standard deviation over the chips of p_c(x)[y(x)]; the term is its
mean over the images of a sub-batch. It is 0 when every chip agrees and at most 0.5. The
variation-aware loss is the seed's loss minus ``weight * M * spread`` (``M`` classes, so the
two parts have the same range: the seed's -exp(H_s - H_c) lies in [-M, -1]); at weight 0 it
is exactly the seed's loss.

The chips are simulated chips of a population spec the fab chooses (``egis duts make``; any
plugin), drawn once per run by the spec's own deterministic draw, never the customer's data.
Use chips that are not in the evaluation: a population with its own seed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from egis.synthesis.config import SynthesisError
from egis.synthesis.frozen import FrozenClassifier
from egis.toolkit.errors import EgisError
from egis.toolkit.model import LoadedModel


def chip_classifiers(model: LoadedModel, population_path: str | Path, count: int) -> list[FrozenClassifier]:
    """Frozen torch copies of the first ``count`` chips of the population at ``population_path``."""
    from egis.toolkit.population import open_population  # noqa: PLC0415

    try:
        population = open_population(population_path, model)
    except (EgisError, OSError) as exc:
        raise SynthesisError(f"--variation {population_path}: {exc}") from exc
    if len(population) < count:
        raise SynthesisError(f"--variation {population_path} holds {len(population)} chips; "
                             f"--variation-chips asks for {count}")
    return [FrozenClassifier(model, proto=population.chip_model(i)) for i in range(count)]


def top_class_spread(nominal_logits: torch.Tensor, chip_logits: list[torch.Tensor]) -> torch.Tensor:
    """Mean over images of the std over chips of each chip's probability of the nominal top class."""
    if not chip_logits:
        raise ValueError("the spread needs at least one chip")
    top = nominal_logits.detach().argmax(dim=1, keepdim=True)
    probs = torch.stack([torch.softmax(c.float(), dim=1).gather(1, top).squeeze(1) for c in chip_logits])
    return probs.std(dim=0, unbiased=False).mean()
