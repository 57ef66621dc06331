"""The signature guard: a chip the detector cannot judge is failed, never passed.

A gradient-boosting detector answers for any input, including signatures nothing like the
ones it was trained on: an all-NaN chip or a dead chip (all weights zero) got P(pass) 0.925
from the demo's own bundle. A production test must refuse to pass such chips, so every
bundle carries, next to its detector, a description of what the labelled chips produced,
fitted at compaction time:

* the range of every signature value (each stimulus image's logit of each class) over the
  labelled chips: a value outside ``[low - margin * span, high + margin * span]`` is unknown;
* the activity of every image's answer, log of the standard deviation of its M logits: a dead
  or stuck chip (weights all zero, a column driver off) answers near its biases, an *inlier*
  of every value's range and of the score below, but with almost no spread across classes.
  An activity more than ``ACTIVITY_MARGIN`` (natural log) below the labelled minimum or
  above the labelled maximum is unknown;
* an out-of-distribution score that also sees the *structure* of a signature (a dead chip
  answers every image alike, each value within range): the values are standardised robustly,
  ``z = (x - median) / scale`` (scale = 1.4826 * MAD, floored at 5% of the span), and
  projected on the labelled chips' principal components (up to ``MAX_COMPONENTS``, 99.9% of
  the variance). The score is the larger of the largest projection in units of its
  component's spread (a dead chip is a chip gain of 0, far out along the first component,
  where the systematic variation lies) and the norm of what the components do not explain in
  units of its RMS over the labelled chips. Limit: ``score_factor`` times the largest
  labelled score.

:meth:`SignatureGuard.check` returns the reason a signature cannot be judged, or None.
Non-finite values are always a reason. Pure numpy, so the tester path stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_MARGIN = 1.0          # of each value's labelled span, on both sides
DEFAULT_SCORE_FACTOR = 1.5    # times the largest labelled-chip score
MAD_TO_STD = 1.4826           # MAD of a normal distribution -> its standard deviation
ACTIVITY_MARGIN = float(np.log(4.0))   # a quarter of the least active labelled chip's spread
MAX_COMPONENTS = 16
EXPLAINED = 0.999
GUARD_VERSION = 1


def nonfinite_reason(signature: np.ndarray) -> str | None:
    """'non-finite response (...)' when any value is NaN or infinite, else None."""
    values = np.asarray(signature, dtype=np.float64).reshape(-1)
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    kinds = [name for name, hit in (("NaN", np.isnan(values).any()), ("inf", np.isinf(values).any())) if hit]
    return f"non-finite response ({int(bad.sum())} of {values.size} logits are {'/'.join(kinds)})"


def activity(signatures: np.ndarray, m: int) -> np.ndarray:
    """(D, K) log of each image's logit standard deviation over the M classes."""
    x = np.asarray(signatures, dtype=np.float64)
    per_image = x.reshape(len(x), -1, m)
    return np.log(np.maximum(per_image.std(axis=2), 1e-12))


@dataclass(frozen=True)
class SignatureGuard:
    """What the labelled chips' signatures looked like; see the module docstring."""

    low: np.ndarray
    high: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    limit: float
    components: np.ndarray         # (r, K*M) orthonormal rows, in standardised units
    component_scale: np.ndarray    # (r,) spread of the labelled chips along each
    residual_scale: float          # RMS norm of the unexplained part over the labelled chips
    activity_low: np.ndarray       # (K,) labelled minimum of log std over classes
    activity_high: np.ndarray      # (K,) labelled maximum
    m: int                         # classes per image
    margin: float = DEFAULT_MARGIN

    @classmethod
    def fit(cls, signatures: np.ndarray, m: int, margin: float = DEFAULT_MARGIN,
            score_factor: float = DEFAULT_SCORE_FACTOR) -> SignatureGuard:
        """Fit on the labelled chips' signatures (D, K*M)."""
        x = np.asarray(signatures, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2 or not np.isfinite(x).all():
            raise ValueError("the guard needs finite signatures of at least two labelled chips")
        low, high = x.min(axis=0), x.max(axis=0)
        center = np.median(x, axis=0)
        span = np.maximum(high - low, 1e-6)
        scale = np.maximum(MAD_TO_STD * np.median(np.abs(x - center), axis=0), 0.05 * span)
        z = (x - center) / scale
        mean = z.mean(axis=0)
        _, singular, vt = np.linalg.svd(z - mean, full_matrices=False)
        energy = np.cumsum(singular ** 2) / max(float(np.sum(singular ** 2)), 1e-30)
        r = int(min(MAX_COMPONENTS, len(x) - 1, np.searchsorted(energy, EXPLAINED) + 1))
        components = vt[:r]
        projected = z @ components.T
        component_scale = np.maximum(projected.std(axis=0), 1e-6)
        residual = np.linalg.norm(z - projected @ components, axis=1)
        residual_scale = max(float(np.sqrt(np.mean(residual ** 2))), 1e-6)
        act = activity(x, m)
        fields = dict(low=low, high=high, center=center, scale=scale, components=components,
                      component_scale=component_scale, residual_scale=residual_scale,
                      activity_low=act.min(axis=0), activity_high=act.max(axis=0), margin=margin, m=m)
        guard = cls(limit=0.0, **fields)
        limit = score_factor * float(max(guard.score(row) for row in x))
        return cls(limit=limit, **fields)

    def score(self, signature: np.ndarray) -> float:
        z = (np.asarray(signature, dtype=np.float64).reshape(-1) - self.center) / self.scale
        projected = self.components @ z
        spread = float(np.max(np.abs(projected / self.component_scale))) if len(projected) else 0.0
        unexplained = float(np.linalg.norm(z - projected @ self.components)) / self.residual_scale
        return max(spread, unexplained)

    def check(self, signature: np.ndarray) -> str | None:
        """Why this signature (K*M,) cannot be judged, or None when it looks like a chip."""
        reason = nonfinite_reason(signature)
        if reason is not None:
            return reason
        x = np.asarray(signature, dtype=np.float64).reshape(-1)
        if x.shape != self.low.shape:
            return f"signature of length {x.size}, the bundle expects {self.low.size}"
        act = activity(x[None, :], self.m)[0]
        dull = act < self.activity_low - ACTIVITY_MARGIN
        wild = act > self.activity_high + ACTIVITY_MARGIN
        if dull.any() or wild.any():
            k = int(np.flatnonzero(dull | wild)[0])
            return (f"unknown chip: image {k} answers with a logit spread of {np.exp(act[k]):.3g}, "
                    f"outside the labelled chips' {np.exp(self.activity_low[k]):.3g}..{np.exp(self.activity_high[k]):.3g}"
                    f" ({'dead or stuck' if dull[k] else 'saturated'}?)")
        span = np.maximum(self.high - self.low, 1e-6)
        below, above = x < self.low - self.margin * span, x > self.high + self.margin * span
        outside = below | above
        if outside.any():
            j = int(np.flatnonzero(outside)[0])
            where = f"image {j // self.m}, class {j % self.m}"
            return (f"unknown chip: {int(outside.sum())} of {x.size} logits outside the labelled chips' "
                    f"range (first: {where}, {x[j]:.4g} vs {self.low[j]:.4g}..{self.high[j]:.4g})")
        score = self.score(x)
        if score > self.limit:
            return f"unknown chip: out-of-distribution score {score:.3g} > limit {self.limit:.3g}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"version": GUARD_VERSION, "margin": self.margin, "limit": self.limit, "m": self.m,
                "low": self.low.tolist(), "high": self.high.tolist(),
                "center": self.center.tolist(), "scale": self.scale.tolist(),
                "components": self.components.tolist(), "component_scale": self.component_scale.tolist(),
                "residual_scale": self.residual_scale,
                "activity_low": self.activity_low.tolist(), "activity_high": self.activity_high.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], length: int) -> SignatureGuard:
        """Rebuild from a manifest's ``guard``; ValueError naming the field when malformed."""
        if not isinstance(data, dict) or data.get("version") != GUARD_VERSION:
            raise ValueError(f"'guard' must be an object with version {GUARD_VERSION}")
        arrays = {}
        for key in ("low", "high", "center", "scale"):
            value = data.get(key)
            if not (isinstance(value, list) and len(value) == length
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
                raise ValueError(f"'guard.{key}' must be a list of {length} numbers")
            arrays[key] = np.asarray(value, dtype=np.float64)
        comps = data.get("components")
        if not (isinstance(comps, list) and all(isinstance(row, list) and len(row) == length for row in comps)):
            raise ValueError(f"'guard.components' must be a list of rows of {length} numbers")
        try:
            components = np.asarray(comps, dtype=np.float64).reshape(len(comps), length)
            component_scale = np.asarray(data.get("component_scale"), dtype=np.float64).reshape(len(comps))
        except (TypeError, ValueError):
            raise ValueError("'guard.components' / 'guard.component_scale' are malformed") from None
        if not (np.isfinite(components).all() and (component_scale > 0).all()):
            raise ValueError("'guard.component_scale' must be positive numbers")
        for key in ("margin", "limit", "residual_scale"):
            if not isinstance(data.get(key), (int, float)) or isinstance(data.get(key), bool) or data[key] < 0:
                raise ValueError(f"'guard.{key}' must be a non-negative number")
        if (arrays["scale"] <= 0).any() or (arrays["low"] > arrays["high"]).any():
            raise ValueError("'guard' has a non-positive scale or a range with low > high")
        if data["residual_scale"] <= 0:
            raise ValueError("'guard.residual_scale' must be positive")
        m = data.get("m", 0)
        if not isinstance(m, int) or isinstance(m, bool) or m < 1 or length % m:
            raise ValueError(f"'guard.m' must be a positive integer dividing {length}")
        for key in ("activity_low", "activity_high"):
            value = data.get(key)
            if not (isinstance(value, list) and len(value) == length // m
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
                raise ValueError(f"'guard.{key}' must be a list of {length // m} numbers")
            arrays[key] = np.asarray(value, dtype=np.float64)
        return cls(low=arrays["low"], high=arrays["high"], center=arrays["center"], scale=arrays["scale"],
                   limit=float(data["limit"]), components=components, component_scale=component_scale,
                   residual_scale=float(data["residual_scale"]), activity_low=arrays["activity_low"],
                   activity_high=arrays["activity_high"], margin=float(data["margin"]), m=m)
