"""Synthetic chip responses with a planted signal, for tests of selection and detectors.

A few images respond to each chip's severity (its accuracy loss) and the rest carry only
noise: a selection that finds those few images separates the chips, one that does not cannot.
"""

from __future__ import annotations

import numpy as np


def planted_responses(rng: np.random.Generator, d: int, n: int, m: int,
                      informative: int) -> tuple[np.ndarray, np.ndarray, set[int]]:
    """Logits (d chips, n images, m classes) float32, each chip's severity in [0, 1), and the
    informative images."""
    base = rng.normal(0, 3, (n, m)).astype(np.float32)
    sens = np.full(n, 0.02, np.float32)
    hot = rng.choice(n, informative, replace=False)
    sens[hot] = 2.0
    direction = rng.normal(0, 1, (n, m)).astype(np.float32)
    severity = rng.random(d).astype(np.float32)
    logits = (base[None] + severity[:, None, None] * sens[None, :, None] * direction[None]
              + rng.normal(0, 0.3, (d, n, m)).astype(np.float32)).astype(np.float32)
    return logits, severity, set(int(h) for h in hot)


def planted(d: int = 240, n: int = 150, m: int = 4, informative: int = 6, seed: int = 0):
    """Logits where only ``informative`` images reveal whether a chip passes, the pass/fail
    labels (severity below 0.5 passes) and the informative images."""
    logits, severity, hot = planted_responses(np.random.default_rng(seed), d, n, m, informative)
    return logits, (severity < 0.5).astype(np.int64), hot
