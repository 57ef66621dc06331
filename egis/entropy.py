"""The EGIS objective: make a batch of images that the model classifies confidently (low
per-image entropy H_c) and evenly over all classes (high batch entropy H_s).

With p_i = softmax(logits_i) for the B images of a batch and p_bar = mean_i p_i:

    H_c = mean_i H(p_i)          (conditional entropy, 0 when every image is one-hot)
    H_s = H(p_bar)               (entropy of the batch's class distribution, log M at best)
    L   = -exp(H_s - H_c)

H is concave, so Jensen gives H_s >= H_c, and 0 <= H_c, H_s <= log M; hence
exp(H_s - H_c) lies in [1, M]. Its maximum M needs one-hot predictions spread evenly over the
M classes, which is exactly the test set we want. Everything is computed from log-softmax
(and log p_bar by logsumexp), so saturated logits give 0 * log 0 = 0 rather than NaN.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from egis.toolkit.errors import EgisError


class EntropyTerms(NamedTuple):
    """The loss and the two entropies it is made of (natural log, nats)."""

    loss: torch.Tensor   # scalar, -exp(H_s - H_c)
    h_c: torch.Tensor    # scalar, mean per-image entropy
    h_s: torch.Tensor    # scalar, entropy of the batch-mean softmax


def _entropy_from_log(log_p: torch.Tensor) -> torch.Tensor:
    """Entropy along the last axis from log-probabilities; exp(-inf) * -inf counts as 0."""
    p = log_p.exp()
    return -(p * torch.where(p > 0, log_p, torch.zeros_like(log_p))).sum(dim=-1)


def entropy_terms(logits: torch.Tensor) -> EntropyTerms:
    """EGIS loss, H_c and H_s of a (B, M) batch of logits (any real values, no softmax)."""
    if logits.dim() != 2:
        raise ValueError(f"expected (batch, classes) logits, got shape {tuple(logits.shape)}")
    log_p = torch.log_softmax(logits.float(), dim=1)
    h_c = _entropy_from_log(log_p).mean()
    log_p_bar = torch.logsumexp(log_p, dim=0) - math.log(logits.shape[0])
    h_s = _entropy_from_log(log_p_bar)
    return EntropyTerms(loss=-torch.exp(h_s - h_c), h_c=h_c, h_s=h_s)


def egis_loss(logits: torch.Tensor) -> torch.Tensor:
    """Just the loss -exp(H_s - H_c); see :func:`entropy_terms`."""
    return entropy_terms(logits).loss


def check_batch_size(batch: int, num_classes: int) -> None:
    """Refuse batches too small to hold every class a couple of times.

    H_s is estimated from the batch: with B < 2M even a perfect generator cannot show every
    class twice, so the estimate is noisy and the optimum is biased. The seed uses B=256 for
    M=10.
    """
    if batch < 2 * num_classes:
        raise EgisError(f"batch size {batch} is too small for {num_classes} classes; "
                        f"use at least {2 * num_classes} (2 x classes)")


def set_entropies(probabilities: np.ndarray | torch.Tensor, eps: float = 0.0) -> tuple[float, float]:
    """(H_c, H_s) of a whole image set from its (N, M) softmax probabilities (numpy or torch).

    Used for the final report on sampled images, where only probabilities are at hand.
    """
    p = torch.as_tensor(probabilities, dtype=torch.float64)
    p = p / p.sum(dim=1, keepdim=True)
    log_p = torch.log(p.clamp_min(eps)) if eps > 0 else torch.log(p)
    h_c = _entropy_from_log(log_p).mean()
    p_bar = p.mean(dim=0)
    h_s = _entropy_from_log(torch.log(p_bar))
    return float(h_c), float(h_s)
