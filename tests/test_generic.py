"""GenericVariability: the seed paper's eps_sys + eps_cor + eps_rand model (seeded statistics).

With all-ones nominal weights the effective matrix is 1 + eps, so eps is observed directly.
Estimators use the known zero mean; their standard errors follow from Gaussian moments:
Var(mean(x^2)) = 2 s^4 / n and Var(mean(x y)) = (s_x^2 s_y^2 + c^2) / n.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from egis.plugins.generic import GenericVariability
from egis.toolkit.errors import PluginError

Z = 5.0
SHAPES = [(16, 24), (16, 24), (10, 7)]


def _eps(plugin: GenericVariability, n: int, seed: int = 0) -> list[np.ndarray]:
    """(n, rows, cols) eps per layer over n chips (chip i uses default_rng([seed, i]))."""
    ones = [np.ones(s, dtype=np.float32) for s in SHAPES]
    chips = [plugin.perturb(ones, np.random.default_rng([seed, i])) for i in range(n)]
    return [np.stack([c[k] for c in chips]).astype(np.float64) - 1 for k in range(len(SHAPES))]


@pytest.fixture(scope="module")
def typical():
    plugin = GenericVariability(preset="typical", placement="independent")
    return plugin, _eps(plugin, 2500)


def _check_moment(x: np.ndarray, y: np.ndarray, expected: float, sx2: float, sy2: float):
    n = len(x)
    se = math.sqrt((sx2 * sy2 + expected**2) / n)
    est = float(np.mean(x * y))
    assert abs(est - expected) < Z * se, (est, expected, se)


def test_component_variances_typical(typical):
    plugin, eps = typical
    s_sys, s_cor, s_rand = plugin.sigmas
    tot = plugin.params["sigma_tot"] ** 2
    assert s_sys**2 + s_cor**2 + s_rand**2 == pytest.approx(tot)
    lam = plugin.params["lam"]
    a = eps[0][:, 0, 0]
    _check_moment(a, a, tot, tot, tot)                                  # total variance
    _check_moment(a, eps[1][:, 0, 0], s_sys**2, tot, tot)              # other layer, same shape
    _check_moment(a, eps[2][:, 0, 0], s_sys**2, tot, tot)              # other layer and shape
    _check_moment(a, eps[0][:, 0, 1], s_sys**2 + s_cor**2 * math.exp(-lam), tot, tot)
    _check_moment(a, eps[0][:, 3, 4], s_sys**2 + s_cor**2 * math.exp(-5 * lam), tot, tot)
    # Neighbour differences isolate the random part (the correlated part nearly cancels).
    diff = eps[0][:, 0, 0] - eps[0][:, 0, 1]
    v = 2 * s_rand**2 + 2 * s_cor**2 * (1 - math.exp(-lam))
    _check_moment(diff, diff, v, v, v)


def test_systematic_part_identical_across_cells_and_layers():
    plugin = GenericVariability(sys_share=1.0, cor_share=0.0)
    rng = np.random.default_rng(5)
    w = [rng.uniform(0.5, 2.0, s).astype(np.float32) for s in SHAPES]
    factors = []
    for i in range(400):
        out = plugin.perturb(w, np.random.default_rng([1, i]))
        ratio = np.concatenate([(o / m).ravel() for o, m in zip(out, w)])
        assert np.ptp(ratio) < 1e-6 * max(1.0, abs(ratio[0]))
        factors.append(float(ratio[0]) - 1)
    f = np.array(factors)
    s2 = plugin.params["sigma_tot"] ** 2
    assert abs(np.mean(f**2) - s2) < Z * s2 * math.sqrt(2 / len(f))


def test_systematic_shared_in_typical_preset_too():
    """In one chip, the layer-wide mean of eps differs from eps_sys only by averaged noise;
    two layers' means therefore agree far better than two chips' do."""
    plugin = GenericVariability(preset="typical", lam=0.5)  # short correlation: means converge
    big = [np.ones((60, 60), np.float32)] * 2
    gaps, spread = [], []
    for i in range(40):
        out = plugin.perturb(big, np.random.default_rng([2, i]))
        m0, m1 = float(out[0].mean()) - 1, float(out[1].mean()) - 1
        gaps.append(m0 - m1)
        spread.append(m0)
    assert np.std(gaps) < 0.25 * np.std(spread)


def test_correlated_only_matches_field_correlation():
    lam = 0.15
    plugin = GenericVariability(sys_share=0.0, cor_share=1.0, lam=lam, sigma_tot=0.2,
                                placement="independent")
    ones = [np.ones((20, 20), np.float32)] * 2  # same shape: one FFT gives both layers
    out = np.stack([np.stack(plugin.perturb(ones, np.random.default_rng([3, i])))
                    for i in range(600)]).astype(np.float64) - 1
    s2 = 0.04
    for lag in (0, 1, 5):
        rho = s2 * math.exp(-lam * lag)
        _check_moment(out[:, 0, 4, 4], out[:, 0, 4, 4 + lag], rho, s2, s2)
    _check_moment(out[:, 0, 4, 4], out[:, 1, 4, 4], 0.0, s2, s2)  # layers independent


def test_extreme_preset_sets_shares_and_skips_correlated_part():
    plugin = GenericVariability(preset="extreme")
    assert plugin.params["sys_share"] == 0.5 and plugin.params["cor_share"] == 0.0
    s_sys, s_cor, s_rand = plugin.sigmas
    assert s_cor == 0 and s_sys == pytest.approx(s_rand)


def test_same_seed_same_bytes_and_pure_function_of_rng():
    rng = np.random.default_rng(9)
    w = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    a = GenericVariability().perturb(w, np.random.default_rng([42, 3]))
    p = GenericVariability()
    p.perturb(w, np.random.default_rng(0))  # warm caches; must not change later draws
    b = p.perturb(w, np.random.default_rng([42, 3]))
    c = p.perturb(w, np.random.default_rng([42, 4]))
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    assert all(x.dtype == np.float32 and x.shape == m.shape for x, m in zip(a, w))


def test_params_complete_and_json_able():
    p = GenericVariability(sigma_tot=1).params
    assert set(p) == set(GenericVariability.parameters())
    assert p["sigma_tot"] == 1.0 and isinstance(p["sigma_tot"], float)
    json.dumps(p)


@pytest.mark.parametrize("params, match", [
    ({"sigma": 0.3}, "unknown parameter 'sigma'.*parameters: sigma_tot, sys_share"),
    ({"sigma_tot": "big"}, "sigma_tot' must be of type float"),
    ({"sigma_tot": True}, "must be of type float"),
    ({"sigma_tot": -0.1}, "sigma_tot must be >= 0"),
    ({"sys_share": 1.5}, r"sys_share must be in \[0, 1\]"),
    ({"sys_share": 0.7, "cor_share": 0.5}, "must be <= 1"),
    ({"lam": 0}, "lam must be > 0"),
    ({"preset": "worst"}, "preset must be one of"),
    ({"preset": "extreme", "cor_share": 0.25}, "preset=extreme sets cor_share"),
])
def test_validation_errors_are_one_line_plugin_errors(params, match):
    with pytest.raises(PluginError, match=match) as info:
        GenericVariability(**params)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_die_placement_correlates_crossbars_by_their_distance_on_the_die(version):
    """placement=die: one field over the die; within a crossbar the paper's covariance, and
    between crossbars exp(-lam d) with d their cells' distance on the die (both formats)."""
    lam = 0.15
    plugin = GenericVariability(sys_share=0.0, cor_share=1.0, lam=lam, sigma_tot=0.2).use_format(version)
    assert plugin.params["placement"] == "die"
    shapes = ((20, 20), (20, 20), (6, 9))
    origins, die = plugin.die_layout(shapes)
    assert origins[0] == (0, 0) and die[0] >= 20 and die[1] >= 20
    for a in range(3):   # crossbars never overlap
        for b in range(a + 1, 3):
            (ra, ca), (rb, cb) = origins[a], origins[b]
            overlap_r = ra < rb + shapes[b][0] and rb < ra + shapes[a][0]
            overlap_c = ca < cb + shapes[b][1] and cb < ca + shapes[a][1]
            assert not (overlap_r and overlap_c)
    ones = [np.ones(shape, np.float32) for shape in shapes]
    out = [plugin.perturb(ones, np.random.default_rng([4, i])) for i in range(600)]
    layer = [np.stack([o[k] for o in out]).astype(np.float64) - 1 for k in range(3)]
    s2 = 0.04
    _check_moment(layer[0][:, 4, 4], layer[0][:, 4, 6], s2 * math.exp(-lam * 2), s2, s2)
    for (ka, ra, ca), (kb, rb, cb) in [((0, 17, 4), (1, 1, 5)), ((0, 4, 19), (2, 2, 3)),
                                       ((1, 3, 3), (2, 0, 0))]:
        d = math.hypot(origins[ka][0] + ra - origins[kb][0] - rb,
                       origins[ka][1] + ca - origins[kb][1] - cb)
        _check_moment(layer[ka][:, ra, ca], layer[kb][:, rb, cb], s2 * math.exp(-lam * d), s2, s2)


def test_placement_is_validated():
    with pytest.raises(PluginError, match="placement"):
        GenericVariability(placement="diagonal")


VGG16_CROSSBARS = ((27, 16), (144, 16), (144, 32), (288, 32), (288, 64), (576, 64), (576, 64),
                   (576, 128), (1152, 128), (1152, 128), (1152, 128), (1152, 128), (1152, 128),
                   (128, 128), (128, 128), (128, 10))


def _torus_cells(die, reach):
    diag = math.hypot(die[0] - 1, die[1] - 1)
    return (die[0] + diag + reach) * (die[1] + diag + reach)


def test_compact_pack_places_every_crossbar_without_overlap_on_a_smaller_torus():
    from egis.plugins.generic import compact_pack, shelf_pack

    reach = 1000.0
    origins, die = compact_pack(VGG16_CROSSBARS, reach)
    occupied = np.zeros(die, dtype=np.int32)
    for (r, c), (rows, cols) in zip(origins, VGG16_CROSSBARS):
        assert r >= 0 and c >= 0 and r + rows <= die[0] and c + cols <= die[1]
        occupied[r:r + rows, c:c + cols] += 1
    assert occupied.max() == 1 and occupied.sum() == sum(a * b for a, b in VGG16_CROSSBARS)
    old = shelf_pack(VGG16_CROSSBARS)[1]
    assert _torus_cells(die, reach) < 0.65 * _torus_cells(old, reach)
    assert compact_pack(VGG16_CROSSBARS, reach) == (origins, die)    # deterministic


def test_format_version_picks_the_die_layout():
    from egis.plugins.generic import compact_pack, shelf_pack

    plugin = GenericVariability()
    assert plugin.format_version == 3
    assert plugin.die_layout(VGG16_CROSSBARS) == compact_pack(VGG16_CROSSBARS, 1 / plugin.params["lam"])
    assert plugin.use_format(2).die_layout(VGG16_CROSSBARS) == plugin.use_format(3).die_layout(VGG16_CROSSBARS)
    assert plugin.use_format(1).die_layout(VGG16_CROSSBARS) == shelf_pack(VGG16_CROSSBARS)
    with pytest.raises(PluginError, match="format version"):
        plugin.use_format(7)


@pytest.mark.parametrize("placement", ["die", "independent"])
def test_format3_folds_the_band_limited_fields_nugget_into_eps_rand(placement):
    """Format 3 draws eps = s_sys n0 + s_cor F + sqrt(s_rand^2 + s_cor^2 nugget) R, F the
    band-limited field without its nugget, in the documented order: rebuilt here from the same
    generator, number for number."""
    shapes = [(120, 90), (60, 40)]
    plugin = GenericVariability(preset="typical", lam=0.001, placement=placement)
    assert plugin.format_version == 3
    ones = [np.ones(s, dtype=np.float32) for s in shapes]
    eps = plugin.relative_errors(ones, np.random.default_rng([7, 1]))
    s_sys, s_cor, s_rand = plugin.sigmas
    rng = np.random.default_rng([7, 1])
    n0 = rng.standard_normal()
    if placement == "die":
        origins, die = plugin.die_layout(tuple(shapes))
        sampler = plugin.sampler(die)
        field = sampler.sample(rng, 1, nugget=False)[0]
        parts = [field[r:r + a, c:c + b] for (r, c), (a, b) in zip(origins, shapes)]
        nuggets = [sampler.nugget] * 2
    else:
        samplers = [plugin.sampler(s) for s in shapes]
        parts = [smp.sample(rng, 1, nugget=False)[0] for smp in samplers]
        nuggets = [smp.nugget for smp in samplers]
    assert max(nuggets) > 0     # (60, 40) alone is small enough for the dense, exact sampler
    for e, part, nug, shape in zip(eps, parts, nuggets, shapes):
        sigma = math.sqrt(s_rand**2 + s_cor**2 * nug)
        expected = (np.float32(s_sys * n0) + np.float32(s_cor) * part
                    + np.float32(sigma) * rng.standard_normal(shape, dtype=np.float32))
        np.testing.assert_allclose(e, expected, rtol=0, atol=1e-6)
