"""A more physical, tile-based RRAM model (proves the plugin interface is vendor neutral).

Mapping
  Each layer's (rows, cols) matrix is cut into tiles of ``tile_rows x tile_cols`` cells (the
  physical crossbar size; edge tiles are partial). Tiles of all layers are numbered in
  layer order, row-major within a layer, and placed row-major on a die grid that is
  ``die_cols`` tiles wide: tile t sits at die position (t // die_cols, t % die_cols).

Programming (per layer)
  scale = max|w| / (g_max - g_min). A weight w is stored on a differential pair:
  G+ = g_min + w/scale, G- = g_min for w >= 0 (swapped for w < 0), so w = scale (G+ - G-).
  Target conductances are quantised to ``levels`` evenly spaced values in [g_min, g_max]
  (``levels=0``: analogue, no quantisation).

Non-idealities, per chip
  1. device variation, independent per device: lognormal G * exp(s xi - s^2/2) (mean
     preserving) or gaussian G * max(0, 1 + s xi), s = ``sigma_device``;
  2. die-level variation, one factor (1 + sigma_die * F[tile]) per tile, F a unit-variance
     exponential-covariance field over the die grid (``lam_die`` per tile pitch), sampled
     by plugins.fields: exactly up to population format 2; at format 3 band-limited
     (covariance within fields.BAND_TOL, nugget included) where the die grid is large
     enough for an FFT embedding, exactly where it is not;
  3. stuck-at faults applied last: a device is stuck ON (reads g_max) with probability
     ``p_stuck_on`` and stuck OFF (reads g_min) with probability ``p_stuck_off``.

Draw order (fixed): die field (if sigma_die > 0); then per layer: device normals
(2, rows, cols) float32 (if sigma_device > 0), fault uniforms (2, rows, cols) float32 (if any
fault rate > 0). Index 0 is G+, index 1 is G-.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from egis.toolkit.plugin_api import ParamSpec, VariabilityPlugin, check_matrices
from .fields import FieldSampler


@dataclass
class ProgrammedLayer:
    """One layer as read back from the chip: conductances of both devices of each pair."""

    g_plus: np.ndarray   # (rows, cols) float64
    g_minus: np.ndarray  # (rows, cols) float64
    scale: float         # weight units per conductance unit
    tiles: np.ndarray    # (rows, cols) global tile index of each cell

    def weights(self) -> np.ndarray:
        return (self.scale * (self.g_plus - self.g_minus)).astype(np.float32)


class TiledVariability(VariabilityPlugin):
    """Fixed-size tiles on a die, differential pairs, quantised levels, faults, die field."""

    name = "tiled"

    @classmethod
    def parameters(cls) -> ParamSpec:
        return {
            "tile_rows": (128, "rows (inputs) of one physical crossbar tile"),
            "tile_cols": (128, "columns (outputs) of one physical crossbar tile"),
            "die_cols": (8, "tiles per row of the die grid (tiles placed row-major)"),
            "g_min": (1.0, "lowest programmable conductance (uS); OFF state"),
            "g_max": (100.0, "highest programmable conductance (uS); ON state"),
            "levels": (16, "programmable conductance levels in [g_min, g_max]; 0 = analogue"),
            "sigma_device": (0.05, "relative std of each device's conductance"),
            "device_model": ("lognormal", "device variation: lognormal or gaussian"),
            "p_stuck_on": (1e-3, "probability a device is stuck at g_max"),
            "p_stuck_off": (1e-3, "probability a device is stuck at g_min"),
            "sigma_die": (0.05, "std of the per-tile die-level conductance factor"),
            "lam_die": (0.5, "decay rate of the die field's correlation, per tile pitch"),
        }

    def _validate(self, values: dict[str, Any]) -> dict[str, Any]:
        for key in ("tile_rows", "tile_cols", "die_cols"):
            self._require(values[key] >= 1, f"{key} must be >= 1 (got {values[key]})")
        self._require(0 <= values["g_min"] < values["g_max"] and math.isfinite(values["g_max"]),
                      f"need 0 <= g_min < g_max (got {values['g_min']}, {values['g_max']})")
        self._require(values["levels"] == 0 or values["levels"] >= 2,
                      f"levels must be 0 (analogue) or >= 2 (got {values['levels']})")
        self._require(values["device_model"] in ("lognormal", "gaussian"),
                      f"device_model must be lognormal or gaussian "
                      f"(got {values['device_model']!r})")
        for key in ("sigma_device", "sigma_die"):
            self._require(math.isfinite(values[key]) and values[key] >= 0,
                          f"{key} must be >= 0 (got {values[key]})")
        for key in ("p_stuck_on", "p_stuck_off"):
            self._require(0 <= values[key] <= 1, f"{key} must be in [0, 1] (got {values[key]})")
        self._require(values["p_stuck_on"] + values["p_stuck_off"] <= 1,
                      "p_stuck_on + p_stuck_off must be <= 1")
        self._require(math.isfinite(values["lam_die"]) and values["lam_die"] > 0,
                      f"lam_die must be > 0 (got {values['lam_die']})")
        return values

    # ---- layout ------------------------------------------------------------------------
    def tile_layout(self, shapes: list[tuple[int, int]]) -> tuple[list[np.ndarray], int]:
        """Global tile index of every cell of every layer, and the number of tiles."""
        tr, tc = self._params["tile_rows"], self._params["tile_cols"]
        maps, start = [], 0
        for rows, cols in shapes:
            n_tc = -(-cols // tc)
            r, c = np.arange(rows) // tr, np.arange(cols) // tc
            maps.append(start + r[:, None] * n_tc + c[None, :])
            start += -(-rows // tr) * n_tc
        return maps, start

    def die_shape(self, n_tiles: int) -> tuple[int, int]:
        """Die grid (rows, cols) in tiles."""
        cols = self._params["die_cols"]
        return max(1, -(-n_tiles // cols)), cols

    def die_factors(self, n_tiles: int, rng: np.random.Generator) -> np.ndarray:
        """Per-tile conductance factor 1 + sigma_die * F (no draw when sigma_die == 0)."""
        sigma = self._params["sigma_die"]
        if sigma == 0 or n_tiles == 0:
            return np.ones(n_tiles)
        shape = self.die_shape(n_tiles)
        key = ("die", shape, self.format_version)
        if key not in self._caches:
            self._caches[key] = FieldSampler(shape, self._params["lam_die"], version=self.format_version)
        field = self._caches[key].sample(rng, 1)[0].astype(np.float64).ravel()[:n_tiles]
        return np.maximum(0.0, 1.0 + sigma * field)

    # ---- programming -------------------------------------------------------------------
    def targets(self, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Ideal (quantised) G+, G- and the layer scale for one nominal matrix."""
        p = self._params
        span = p["g_max"] - p["g_min"]
        wmax = float(np.abs(m).max()) if m.size else 0.0
        scale = wmax / span if wmax > 0 else 0.0
        mag = np.abs(m.astype(np.float64)) / scale if scale > 0 else np.zeros(m.shape)
        if p["levels"]:
            step = span / (p["levels"] - 1)
            mag = np.round(mag / step) * step
        mag = np.minimum(mag, span)
        g_plus = p["g_min"] + np.where(m >= 0, mag, 0.0)
        g_minus = p["g_min"] + np.where(m < 0, mag, 0.0)
        return g_plus, g_minus, scale

    def _vary(self, g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        s = self._params["sigma_device"]
        if s == 0:
            return g
        xi = rng.standard_normal(g.shape, dtype=np.float32).astype(np.float64)
        if self._params["device_model"] == "lognormal":
            return g * np.exp(s * xi - 0.5 * s * s)
        return g * np.maximum(0.0, 1.0 + s * xi)

    def _faults(self, g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = self._params
        if p["p_stuck_on"] + p["p_stuck_off"] == 0:
            return g
        u = rng.random(g.shape, dtype=np.float32)
        g = np.where(u < p["p_stuck_on"], p["g_max"], g)
        return np.where((u >= p["p_stuck_on"]) & (u < p["p_stuck_on"] + p["p_stuck_off"]),
                        p["g_min"], g)

    def program(
        self, matrices: list[np.ndarray], rng: np.random.Generator
    ) -> list[ProgrammedLayer]:
        """One chip's read-back conductances for every layer (the physics behind perturb)."""
        mats = check_matrices(matrices)
        tiles, n_tiles = self.tile_layout([m.shape for m in mats])
        die = self.die_factors(n_tiles, rng)
        out = []
        for m, tile in zip(mats, tiles):
            g_plus, g_minus, scale = self.targets(m)
            pair = np.stack([g_plus, g_minus])
            pair = self._vary(pair, rng) * die[tile]
            pair = self._faults(pair, rng)
            out.append(ProgrammedLayer(pair[0], pair[1], scale, tile))
        return out

    def perturb(self, matrices: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        return [layer.weights() for layer in self.program(matrices, rng)]
