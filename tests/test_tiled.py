"""TiledVariability: tiles on a die, differential pairs, quantisation, faults, die field."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from egis.plugins.tiled import TiledVariability
from egis.toolkit.errors import PluginError

Z = 5.0
IDEAL = dict(sigma_device=0.0, sigma_die=0.0, p_stuck_on=0.0, p_stuck_off=0.0)


def _weights(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def test_analogue_ideal_chip_reproduces_weights():
    w = _weights([(50, 40), (7, 3)])
    out = TiledVariability(levels=0, **IDEAL).perturb(w, np.random.default_rng(0))
    for o, m in zip(out, w):
        assert o.dtype == np.float32 and o.shape == m.shape
        np.testing.assert_allclose(o, m, rtol=1e-5, atol=1e-6 * np.abs(m).max())


@pytest.mark.parametrize("levels", [4, 32, 256])
def test_quantisation_error_bounded_by_half_a_level(levels):
    w = _weights([(64, 48)])[0]
    out = TiledVariability(levels=levels, **IDEAL).perturb([w], np.random.default_rng(0))[0]
    half_step = np.abs(w).max() / (levels - 1) / 2
    err = np.abs(out - w)
    assert err.max() <= half_step * (1 + 1e-5)
    assert err.max() > 0.5 * half_step  # quantisation really happens
    assert len(np.unique(out)) <= 2 * levels - 1


def test_fault_rates_observed_within_binomial_tolerance():
    p_on, p_off = 0.02, 0.03
    rng = np.random.default_rng(1)
    w = (rng.uniform(0.1, 0.9, (200, 300)) * rng.choice([-1, 1], (200, 300))).astype(np.float32)
    w[0, 0] = 1.0  # the only cell whose nominal target is g_max
    plugin = TiledVariability(levels=0, sigma_device=0.0, sigma_die=0.0,
                              p_stuck_on=p_on, p_stuck_off=p_off)
    layer = plugin.program([w], np.random.default_rng(2))[0]
    g_min, g_max = plugin.params["g_min"], plugin.params["g_max"]
    g = np.stack([layer.g_plus, layer.g_minus])
    nominal = np.stack(plugin.targets(w)[:2])
    can_on = nominal < g_max                    # a stuck-ON device is visible here
    can_off = nominal > g_min                   # a stuck-OFF device is visible here
    on = (g == g_max) & can_on
    off = (g == g_min) & can_off
    for hits, mask, p in ((on, can_on, p_on), (off, can_off, p_off)):
        n = int(mask.sum())
        rate = hits.sum() / n
        assert abs(rate - p) < Z * math.sqrt(p * (1 - p) / n), (rate, p, n)
    untouched = ~(g == g_max) & ~(g == g_min)
    np.testing.assert_allclose(g[untouched], nominal[untouched])


def test_tile_layout_row_major_over_layers():
    plugin = TiledVariability(tile_rows=8, tile_cols=8, die_cols=5)
    maps, n = plugin.tile_layout([(20, 30), (9, 5)])
    assert n == 3 * 4 + 2 * 1
    assert maps[0][0, 0] == 0 and maps[0][0, 8] == 1 and maps[0][8, 0] == 4
    assert maps[0][19, 29] == 11 and maps[1][0, 0] == 12 and maps[1][8, 4] == 13
    assert plugin.die_shape(n) == (3, 5)


def test_die_variation_constant_within_tiles_and_changes_across_boundaries():
    plugin = TiledVariability(tile_rows=8, tile_cols=8, die_cols=4, levels=0, sigma_device=0.0,
                              sigma_die=0.2, p_stuck_on=0.0, p_stuck_off=0.0)
    w = [m + np.sign(m) * 0.1 for m in _weights([(20, 30), (9, 5)])]  # no zeros
    out = plugin.perturb(w, np.random.default_rng(3))
    maps, n = plugin.tile_layout([m.shape for m in w])
    per_tile = {}
    for o, m, tiles in zip(out, w, maps):
        ratio = o.astype(np.float64) / m
        for t in np.unique(tiles):
            r = ratio[tiles == t]
            assert np.ptp(r) < 1e-5, t  # one die factor per tile
            per_tile[int(t)] = float(r[0])
    assert len(per_tile) == n
    assert len({round(v, 6) for v in per_tile.values()}) == n  # every tile its own factor
    assert np.std(list(per_tile.values())) > 0.02


def test_device_variation_statistics():
    s = 0.1
    plugin = TiledVariability(levels=0, sigma_device=s, sigma_die=0.0, p_stuck_on=0.0,
                              p_stuck_off=0.0, device_model="gaussian")
    w = np.full((100, 100), 0.5, np.float32)
    w[0, 0] = 1.0
    layer = plugin.program([w], np.random.default_rng(4))[0]
    nominal = plugin.targets(w)[0]
    rel = (layer.g_plus / nominal - 1).ravel()
    n = rel.size
    assert abs(rel.mean()) < Z * s / math.sqrt(n)
    assert abs(np.mean(rel**2) - s * s) < Z * s * s * math.sqrt(2 / n)


def test_defaults_perturb_moderately_and_deterministically():
    w = _weights([(300, 200), (27, 16)])
    plugin = TiledVariability()
    a = plugin.perturb(w, np.random.default_rng([7, 0]))
    b = TiledVariability().perturb(w, np.random.default_rng([7, 0]))
    c = plugin.perturb(w, np.random.default_rng([7, 1]))
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    rel = np.abs(a[0] - w[0]).mean() / np.abs(w[0]).max()
    assert 1e-3 < rel < 0.2
    json.dumps(plugin.params)
    assert set(plugin.params) == set(TiledVariability.parameters())


@pytest.mark.parametrize("params, match", [
    ({"tile_rows": 0}, "tile_rows must be >= 1"),
    ({"levels": 1}, "levels must be 0"),
    ({"levels": 2.5}, "levels' must be of type int"),
    ({"g_min": 5.0, "g_max": 2.0}, "g_min < g_max"),
    ({"p_stuck_on": 0.7, "p_stuck_off": 0.7}, "must be <= 1"),
    ({"device_model": "weibull"}, "device_model must be"),
    ({"lam_die": -1.0}, "lam_die must be > 0"),
    ({"tiles": 3}, "unknown parameter 'tiles'.*parameters: tile_rows"),
])
def test_validation(params, match):
    with pytest.raises(PluginError, match=match):
        TiledVariability(**params)
