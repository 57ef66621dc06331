"""The seed paper's variability model: eps = eps_sys + eps_cor + eps_rand per crossbar cell.

sigma_tot^2 = sigma_sys^2 + sigma_cor^2 + sigma_rand^2, split by ``sys_share`` and
``cor_share`` (fractions of the variance). Effective weight = w * (1 + eps).

- eps_sys: ONE N(0, sigma_sys^2) draw per chip, shared by every cell of every layer.
- eps_cor: a stationary Gaussian field with covariance sigma_cor^2 exp(-lam d), d the
  Euclidean distance in cells (plugins.fields, exact). Within every crossbar (one logical
  rows x cols grid per layer) the covariance is exactly the paper's. Between crossbars it
  depends on ``placement``:
  * ``die`` (default): every crossbar sits on one die plane (shelf packing in model order,
    see ``die_layout``), and ONE field over the die serves them all, so crossbars that sit
    close together are correlated, as on silicon. At the seed's lam = 0.001 the exact
    (cut-off) embedding needs a torus of about (2/lam)^2 cells whatever the grid size, so one
    die field per chip is also several times cheaper than one field per layer.
  * ``independent``: an independent field per layer (cheaper only for a single layer).
  The die layout depends on the population format: version 1 packs shelves in model order
  (``shelf_pack``); version 2 packs the crossbars tallest first on shelves whose width is
  chosen to make the field's embedding torus smallest (``compact_pack``), and draws the field
  with plugins.fields' version-2 draws (same covariance, fewer random numbers).
- eps_rand: iid N(0, sigma_rand^2) per cell. Format 3 draws band-limited fields
  (plugins.fields draw version 3: covariance within fields.BAND_TOL of exp(-lam d) at every
  lag, lag 0 exact) and adds their nugget here: eps_rand ~ N(0, sigma_rand^2 + sigma_cor^2 *
  nugget), so every cell's total variance is still sigma_tot^2.

Draw order (fixed, so chip weights are a pure function of the generator state):
1. eps_sys (one standard normal);
2. if sigma_cor > 0: correlated fields, grouped by grid shape in order of first appearance,
   one ``FieldSampler.sample(rng, count)`` call per shape (formats 1-2: two fields per FFT;
   format 3: one band-limited field at a time, without its nugget);
3. if sigma_rand > 0 (format 3: or a field's nugget > 0): one standard-normal (rows, cols)
   float32 array per layer, in order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from egis.toolkit.plugin_api import ParamSpec, VariabilityPlugin, check_matrices
from .fields import CUBIC_TAIL, FieldSampler

PRESETS: dict[str, tuple[float, float]] = {"typical": (0.25, 0.25), "extreme": (0.5, 0.0)}


class GenericVariability(VariabilityPlugin):
    """Systematic + spatially correlated + random multiplicative variation (the paper's)."""

    name = "generic"

    @classmethod
    def parameters(cls) -> ParamSpec:
        return {
            "sigma_tot": (0.3, "total standard deviation of eps (relative weight error)"),
            "sys_share": (0.25, "fraction of sigma_tot^2 that is systematic (per chip)"),
            "cor_share": (0.25, "fraction of sigma_tot^2 that is spatially correlated"),
            "lam": (0.001, "decay rate lambda of the correlation exp(-lambda d), 1/cells"),
            "preset": ("custom", "typical (0.25/0.25), extreme (0.5/0.0) or custom shares"),
            "placement": ("die", "die: all crossbars on one die plane sharing one field; "
                                 "independent: one independent field per crossbar"),
        }

    def _validate(self, values: dict[str, Any]) -> dict[str, Any]:
        preset = values["preset"]
        self._require(preset in (*PRESETS, "custom"),
                      f"preset must be one of typical, extreme, custom (got {preset!r})")
        if preset in PRESETS:
            shares = PRESETS[preset]
            for key, share in zip(("sys_share", "cor_share"), shares):
                given = values[key]
                self._require(key not in self._given or math.isclose(given, share),
                              f"preset={preset} sets {key}={share}, but {key}={given} was given")
                values[key] = share
        self._require(math.isfinite(values["sigma_tot"]) and values["sigma_tot"] >= 0,
                      f"sigma_tot must be >= 0 (got {values['sigma_tot']})")
        for key in ("sys_share", "cor_share"):
            self._require(0.0 <= values[key] <= 1.0, f"{key} must be in [0, 1] (got {values[key]})")
        self._require(values["sys_share"] + values["cor_share"] <= 1.0 + 1e-12,
                      "sys_share + cor_share must be <= 1")
        self._require(values["placement"] in ("die", "independent"),
                      f"placement must be die or independent (got {values['placement']!r})")
        self._require(math.isfinite(values["lam"]) and values["lam"] > 0,
                      f"lam must be > 0 (got {values['lam']})")
        return values

    @property
    def sigmas(self) -> tuple[float, float, float]:
        """(sigma_sys, sigma_cor, sigma_rand)."""
        p = self._params
        rand_share = max(0.0, 1.0 - p["sys_share"] - p["cor_share"])
        return tuple(p["sigma_tot"] * math.sqrt(s)
                     for s in (p["sys_share"], p["cor_share"], rand_share))

    def sampler(self, shape: tuple[int, int]) -> FieldSampler:
        """Field sampler for one grid shape, cached on the instance (setup is the costly part)."""
        key = ("field", tuple(shape), self.format_version)
        if key not in self._caches:
            self._caches[key] = FieldSampler(shape, self._params["lam"], version=self.format_version)
        return self._caches[key]

    def die_layout(self, shapes: tuple[tuple[int, int], ...]) -> tuple[list[tuple[int, int]], tuple[int, int]]:
        """Origins of the crossbars on the die and the die's shape (cached per model)."""
        key = ("die", shapes, self.format_version)
        if key not in self._caches:
            self._caches[key] = (shelf_pack(shapes) if self.format_version == 1
                                 else compact_pack(shapes, CUBIC_TAIL / self._params["lam"]))
        return self._caches[key]

    def perturb(self, matrices: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        mats = check_matrices(matrices)
        eps = self.relative_errors(mats, rng)
        return [(m * (np.float32(1.0) + e)).astype(np.float32) for m, e in zip(mats, eps)]

    def relative_errors(self, mats: list[np.ndarray], rng: np.random.Generator,
                        sigmas: tuple[float, float, float] | None = None) -> list[np.ndarray]:
        """eps of every cell of one chip (float32, the matrices' shapes), in the documented
        draw order.

        ``sigmas`` overrides (sigma_sys, sigma_cor, sigma_rand): a plugin that models the
        random part itself (egis.plugins.aihwkit_noise) reuses the seed's systematic and
        correlated components, with their placement and field caches, by passing
        (s_sys, s_cor, 0.0), which draws nothing for the random part up to format 2; at
        format 3 the band-limited field's nugget (white noise of variance s_cor^2 * nugget)
        is still drawn there, since it belongs to the correlated component.
        """
        s_sys, s_cor, s_rand = self.sigmas if sigmas is None else sigmas
        eps_sys = s_sys * rng.standard_normal()  # ONE draw per chip, shared by all cells
        eps = [np.full(m.shape, eps_sys, dtype=np.float32) for m in mats]
        # Format 3's band-limited fields leave out their nugget (the dropped modes' lag-0
        # variance); it is white noise, so it joins eps_rand's variance, cell by cell. Samplers
        # of draw versions 1-2 have no nugget (0) and ignore ``nugget=``.
        nuggets = [0.0] * len(mats)
        if s_cor > 0 and self._params["placement"] == "die":
            shapes = tuple(m.shape for m in mats)
            origins, die = self.die_layout(shapes)
            sampler = self.sampler(die)
            field = sampler.sample(rng, 1, nugget=False)[0]
            for i, ((r, c), (rows, cols)) in enumerate(zip(origins, shapes)):
                eps[i] += np.float32(s_cor) * field[r:r + rows, c:c + cols]
                nuggets[i] = sampler.nugget
        elif s_cor > 0:
            for shape, idx in _group_by_shape(mats).items():
                sampler = self.sampler(shape)
                fields = sampler.sample(rng, len(idx), nugget=False)
                for k, i in enumerate(idx):
                    eps[i] += np.float32(s_cor) * fields[k]
                    nuggets[i] = sampler.nugget
        for i, m in enumerate(mats):
            sigma = math.sqrt(s_rand * s_rand + s_cor * s_cor * nuggets[i])
            if sigma > 0:
                eps[i] += np.float32(sigma) * rng.standard_normal(m.shape, dtype=np.float32)
        return eps


def shelf_pack(shapes: tuple[tuple[int, int], ...]) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Place crossbars (rows, cols) on a die: left to right on shelves, in model order.

    A shelf is as wide as the widest crossbar or sqrt(total cells), whichever is larger, so
    the die stays roughly square (which keeps its embedding torus small). Returns each
    crossbar's (row, col) origin and the die's (rows, cols).
    """
    total = sum(r * c for r, c in shapes)
    width = max([c for _, c in shapes] + [int(math.ceil(math.sqrt(max(total, 1))))])
    origins, top, x, shelf_height = [], 0, 0, 0
    for rows, cols in shapes:
        if x + cols > width:
            top, x, shelf_height = top + shelf_height, 0, 0
        origins.append((top, x))
        x += cols
        shelf_height = max(shelf_height, rows)
    return origins, (max(top + shelf_height, 1), width)


def compact_pack(shapes: tuple[tuple[int, int], ...], reach: float,
                 candidates: int = 96) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Place crossbars on a die so that the correlated field's embedding torus is small.

    The exact cut-off embedding of a (P, Q) die needs a torus of about (P + D + reach) x
    (Q + D + reach) cells, D the die diagonal (plugins.fields), so it is the die's extent, not
    its area, that costs. First-fit decreasing height: crossbars sorted tallest first (model
    order among equals) go onto the first shelf with room, else onto a new shelf; the shelf
    width is the one among ``candidates`` widths (from the widest crossbar to all side by side)
    whose die has the smallest such torus. Returns each crossbar's (row, col) origin, in model
    order, and the die's (rows, cols)."""
    if not shapes:
        return [], (1, 1)
    order = sorted(range(len(shapes)), key=lambda i: (-shapes[i][0], i))
    widest = max(max(c for _, c in shapes), 1)
    total = max(sum(c for _, c in shapes), widest)
    widths = np.unique(np.round(np.geomspace(widest, total, candidates)).astype(int))
    best: tuple[float, list[tuple[int, int]], tuple[int, int]] | None = None
    for width in widths:
        origins, die = _first_fit_shelves(shapes, order, int(width))
        diag = math.hypot(die[0] - 1, die[1] - 1)
        cost = (die[0] + diag + reach) * (die[1] + diag + reach)
        if best is None or cost < best[0]:
            best = (cost, origins, die)
    return best[1], best[2]


def _first_fit_shelves(shapes: tuple[tuple[int, int], ...], order: list[int],
                       width: int) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Shelves of ``width`` filled first-fit in ``order`` (tallest first)."""
    shelves: list[list[int]] = []          # [top, height, used width]
    origins: list[tuple[int, int]] = [(0, 0)] * len(shapes)
    for i in order:
        rows, cols = shapes[i]
        for shelf in shelves:
            if shelf[2] + cols <= width and rows <= shelf[1]:
                origins[i] = (shelf[0], shelf[2])
                shelf[2] += cols
                break
        else:
            top = shelves[-1][0] + shelves[-1][1] if shelves else 0
            shelves.append([top, rows, cols])
            origins[i] = (top, 0)
    height = shelves[-1][0] + shelves[-1][1]
    return origins, (max(height, 1), max(max(s[2] for s in shelves), 1))


def _group_by_shape(mats: list[np.ndarray]) -> dict[tuple[int, int], list[int]]:
    """Layer indices per grid shape, shapes in order of first appearance (dicts keep order)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, m in enumerate(mats):
        if m.size:
            groups.setdefault(m.shape, []).append(i)
    return groups
