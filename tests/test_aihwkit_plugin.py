"""The ``aihwkit`` plugin: IBM aihwkit's measured noise models on egis crossbars.

Statistics are compared per conductance bin. A test matrix holds 21 weight levels -1.0,
-0.9, ..., 1.0 (max |w| = 1, so level x sits at |x| g_max on one device of a pair), about
9,600 cells per level. For each level the mean and the standard deviation of the weight
error are compared with (a) aihwkit's own ``apply_noise`` on the same weights (so the same
conductances), (b) where the physics is simple enough, the published fit itself, and (c) an
aihwkit ``AnalogLinear`` tile array, programmed and drifted as aihwkit users do. Tolerances
are Z standard errors of the two estimates (se of a mean: s / sqrt(n); of a std: s / sqrt(2n)).

Tests that need aihwkit skip cleanly without it (``pytest.importorskip``); the tests of the
missing-aihwkit path and of parameter validation always run.
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys

import numpy as np
import pytest

from egis.plugins.aihwkit_noise import AihwkitVariability, split_sizes
from egis.toolkit.errors import PluginError

Z = 5.0
LEVELS = np.round(np.linspace(-1.0, 1.0, 21), 10)
SHAPE = (420, 480)  # one aihwkit tile (both sides <= 512)
# Wan et al. 2022 as tabulated in aihwkit 1.1.0 (uS, polynomial in g / g_max, constant term
# first), written out here so the test checks the plugin against the fit, not against itself.
WAN2022 = {1.0: [0.348, 16.030, -43.853, 45.393, -16.815],
           86400.0: [0.701, 22.086, -50.773, 47.095, -16.458],
           172800.0: [0.782, 20.274, -43.507, 37.062, -11.934]}


def level_matrix(shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """Cells cycle through LEVELS, so every level fills ~1/21 of every row and column."""
    idx = np.arange(shape[0] * shape[1]).reshape(shape)
    return LEVELS[idx % len(LEVELS)].astype(np.float32)


def per_level(nominal: np.ndarray, out: np.ndarray) -> dict[float, tuple[float, float, int]]:
    """Weight error per level (keyed by the level's value in LEVELS): (mean, std, count)."""
    err = out.astype(np.float64) - nominal
    step = np.rint(nominal.astype(np.float64) * 10).astype(int)  # level v <-> step 10 v
    stats = {}
    for v in LEVELS:
        cells = step == int(round(v * 10))
        assert cells.sum() > 1000
        stats[float(v)] = (float(err[cells].mean()), float(err[cells].std()), int(cells.sum()))
    return stats


def assert_same_statistics(ours: dict, ref: dict, label: str, z: float = Z) -> list[str]:
    """Per level, means within z combined standard errors and stds within z combined
    relative errors; returns one line per level for the report."""
    lines = []
    for v in LEVELS:
        (m1, s1, n1), (m2, s2, n2) = ours[float(v)], ref[float(v)]
        se_mean = math.sqrt(s1**2 / n1 + s2**2 / n2)
        se_std = math.sqrt(s1**2 / (2 * n1) + s2**2 / (2 * n2))
        lines.append(f"{label} w={v:+.1f}: mean {m1:+.5f} vs {m2:+.5f}, std {s1:.5f} vs {s2:.5f}")
        assert abs(m1 - m2) < z * se_mean + 1e-7, lines[-1]
        assert abs(s1 - s2) < z * se_std + 1e-7, lines[-1]
    return lines


def egis_cli_without_aihwkit(*args: str) -> subprocess.CompletedProcess:
    """The egis CLI in a fresh process in which `import aihwkit` fails, as on a machine
    without the extra."""
    code = ("import sys; sys.modules['aihwkit'] = None; sys.argv = ['egis', *sys.argv[1:]]\n"
            "from egis.cli.main import main; main()")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


# ---- without aihwkit: listed as unavailable, one-line refusal ------------------------------

def test_listed_as_unavailable_with_the_install_command():
    result = egis_cli_without_aihwkit("duts", "plugins")
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if l.startswith("aihwkit"))
    assert "unavailable" in line and "EGIS_EXTRAS=aihwkit bash scripts/install.sh" in line
    assert "  noise_model = 'reram_wan2022'" in result.stdout  # parameters still listed
    assert "generic" in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_duts_make_without_aihwkit_is_one_line_exit_2(tmp_path, tiny_cnn_path):
    out = tmp_path / "pop.json"
    result = egis_cli_without_aihwkit("duts", "make", str(tiny_cnn_path), "-o", str(out), "--plugin", "aihwkit")
    assert result.returncode == 2
    assert result.stderr.startswith("error: plugin 'aihwkit' is unavailable") and result.stderr.count("\n") == 1
    assert "EGIS_EXTRAS=aihwkit bash scripts/install.sh" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


# ---- parameters (no aihwkit needed) --------------------------------------------------------

@pytest.mark.parametrize("model, g_max, g_min, converter", [
    ("reram_wan2022", 40.0, 0.0, "single_pair"), ("reram_cmo", 88.199997, 9.0, "single_device"),
    ("pcm_like", 25.0, 0.0, "single_pair")])
def test_each_model_gets_its_measured_range_and_round_trips(model, g_max, g_min, converter):
    p = AihwkitVariability(noise_model=model)
    assert (p.params["g_max"], p.params["g_min"], p.params["converter"]) == (g_max, g_min, converter)
    assert AihwkitVariability(**p.params).params == p.params  # a spec's complete params reload
    assert AihwkitVariability(noise_model=model, g_max=50.0).params["g_max"] == 50.0


@pytest.mark.parametrize("params, match", [
    ({"noise_model": "rram"}, "noise_model must be one of reram_wan2022, reram_cmo, pcm_like"),
    ({"t_inference": 3600.0}, "reram_wan2022 is measured at t_inference = 0, 1, 86400, 172800 s"),
    ({"noise_model": "pcm_like", "t_inference": -1.0}, "t_inference must be >= 0"),
    ({"noise_model": "reram_cmo", "converter": "single_pair"}, "takes converter single_device"),
    ({"converter": "single_device"}, "takes converter single_pair or dual_pair"),
    ({"g_min": 30.0, "g_max": 20.0}, "need 0 <= g_min < g_max"),
    ({"read_noise_scale": 2.0}, "read_noise_scale has no effect with noise_model=reram_wan2022"),
    ({"f_msp": 2.0}, "f_msp has no effect"),
    ({"noise_model": "reram_cmo", "acceptance_range": 1.0}, "acceptance_range must be 0.2 or 2"),
    ({"drift_compensation": "column"}, "drift_compensation must be global or none"),
    ({"tile_rows": -1}, "tile_rows must be >= 0"),
    ({"sigma_cor": -0.1}, "sigma_cor must be >= 0"),
    ({"placement": "wafer"}, "placement must be die or independent"),
    ({"t_inference": "1 day"}, "must be of type float"),
])
def test_validation_is_one_line(params, match):
    with pytest.raises(PluginError, match=match) as info:
        AihwkitVariability(**params)
    assert "\n" not in str(info.value)


def test_split_sizes_follow_aihwkit_tile_arrays():
    assert split_sizes(700, 512) == [350, 350]
    assert split_sizes(1152, 512) == [384, 384, 384]
    assert split_sizes(1025, 512) == [342, 342, 341]
    assert split_sizes(512, 512) == [512] and split_sizes(27, 512) == [27] and split_sizes(4000, 0) == [4000]


# ---- with aihwkit: statistics against aihwkit's own application ----------------------------

def _aihwkit_reference(model: str, converter: str = "single_pair"):
    """aihwkit's own model objects, built here independently of the plugin."""
    pytest.importorskip("aihwkit")
    from aihwkit.inference.converter.conductance import DualPairConductanceConverter, SinglePairConductanceConverter
    from aihwkit.inference.noise.pcm import PCMLikeNoiseModel
    from aihwkit.inference.noise.reram import ReRamCMONoiseModel, ReRamWan2022NoiseModel

    if model == "reram_cmo":
        return ReRamCMONoiseModel(g_max=88.199997, g_min=9.0, acceptance_range=0.2)
    g_max = 40.0 if model == "reram_wan2022" else 25.0
    conv = (DualPairConductanceConverter(f_lst=[1.0, 3.0], g_max=g_max, g_min=0.0) if converter == "dual_pair"
            else SinglePairConductanceConverter(g_max=g_max, g_min=0.0))
    return ReRamWan2022NoiseModel(g_converter=conv) if model == "reram_wan2022" else PCMLikeNoiseModel(g_converter=conv)


def _aihwkit_apply_noise(reference, nominal: np.ndarray, t: float, seed: int) -> np.ndarray:
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        return reference.apply_noise(torch.from_numpy(nominal.copy()), t).numpy()


@pytest.mark.parametrize("model, t, converter", [
    ("reram_wan2022", 1.0, "single_pair"), ("reram_wan2022", 86400.0, "single_pair"),
    ("reram_wan2022", 172800.0, "single_pair"), ("reram_wan2022", 86400.0, "dual_pair"),
    ("pcm_like", 3600.0, "single_pair"), ("pcm_like", 3.1536e7, "single_pair"),
    ("reram_cmo", 3600.0, "single_device")])
def test_per_level_statistics_equal_aihwkit_apply_noise(model, t, converter):
    reference = _aihwkit_reference(model, converter)
    nominal = level_matrix()
    params = {"noise_model": model, "t_inference": t, "drift_compensation": "none"}
    if model != "reram_cmo":
        params["converter"] = converter
    ours = AihwkitVariability(**params).perturb([nominal], np.random.default_rng([11, 0]))[0]
    ref = _aihwkit_apply_noise(reference, nominal, t, seed=12345)
    lines = assert_same_statistics(per_level(nominal, ours), per_level(nominal, ref), f"{model} t={t:g}")
    print("\n".join(lines))


@pytest.mark.parametrize("t", [1.0, 86400.0, 172800.0])
def test_wan2022_spread_is_the_published_fit(t):
    """Level x > 0: dG = G+ - G-, G+ = g + s(g) n1, G- = max(0, s(0) n2) (G+ never clamps at
    |x| >= 0.3, 3.7+ sigma away), so mean = -s(0)/sqrt(2 pi) and
    var = s(g)^2 + s(0)^2 (1/2 - 1/(2 pi)); at x = 0 both devices are half-normal:
    mean 0, var = 2 s(0)^2 (1/2 - 1/(2 pi)). Weight = dG / 40 uS."""
    pytest.importorskip("aihwkit")
    nominal = level_matrix()
    out = AihwkitVariability(t_inference=t, drift_compensation="none").perturb([nominal], np.random.default_rng(5))[0]
    stats = per_level(nominal, out)
    sigma = lambda x: sum(c * x**i for i, c in enumerate(WAN2022[t]))  # noqa: E731
    half = 0.5 - 1 / (2 * math.pi)
    for v in LEVELS:
        if 0 < abs(v) < 0.3:
            continue
        mean, std, n = stats[float(v)]
        s0, sg = sigma(0.0), sigma(abs(v))
        exp_mean = 0.0 if v == 0 else -math.copysign(s0 / math.sqrt(2 * math.pi), v)
        exp_std = math.sqrt(2 * s0**2 * half) if v == 0 else math.sqrt(sg**2 + s0**2 * half)
        mean_us, std_us = mean * 40.0, std * 40.0
        assert abs(mean_us - exp_mean) < Z * exp_std / math.sqrt(n), (v, mean_us, exp_mean)
        assert abs(std_us - exp_std) < Z * exp_std / math.sqrt(2 * n), (v, std_us, exp_std)
        print(f"wan2022 t={t:g} w={v:+.1f}: mean {mean_us:+.4f} uS (fit {exp_mean:+.4f}), "
              f"std {std_us:.4f} uS (fit {exp_std:.4f})")


def test_pcm_drift_changes_with_time_as_aihwkit_and_compensation_restores_the_scale():
    reference = _aihwkit_reference("pcm_like")
    nominal = level_matrix()
    top = nominal == 1.0
    means = []
    for i, t in enumerate([1.0, 3600.0, 86400.0, 3.1536e7]):
        plugin = AihwkitVariability(noise_model="pcm_like", t_inference=t, drift_compensation="none")
        ours = plugin.perturb([nominal], np.random.default_rng([3, i]))[0]
        ref = _aihwkit_apply_noise(reference, nominal, t, seed=100 + i)
        assert_same_statistics(per_level(nominal, ours), per_level(nominal, ref), f"pcm t={t:g}")
        means.append(float(ours[top].mean()))
        compensated = AihwkitVariability(noise_model="pcm_like", t_inference=t).perturb(
            [nominal], np.random.default_rng([3, i]))[0]
        # alpha = mean|W_prog| / mean|W_t|: the compensated chip keeps the programmed scale
        assert abs(np.abs(compensated).mean() / np.abs(nominal).mean() - 1) < 0.02
    print("pcm mean read-back of w=1 at 1 s, 1 h, 1 day, 1 year:", [round(m, 4) for m in means])
    assert means[0] > means[1] > means[2] > means[3] and means[3] < 0.7 * means[0]


def test_tile_array_matches_aihwkit_analog_linear():
    """An aihwkit AnalogLinear(700 -> 600) is 2 x 2 tiles of 350 x 300, each with its own
    conductance scale and drift compensation. The second input tile holds weights 10x
    smaller; per-tile programming gives it the same relative error as the first, so a plugin
    that mapped the layer as one tile would fail here by a factor of ~10."""
    pytest.importorskip("aihwkit")
    import torch
    from aihwkit.inference.noise.reram import ReRamWan2022NoiseModel
    from aihwkit.inference.converter.conductance import SinglePairConductanceConverter
    from aihwkit.nn import AnalogLinear
    from aihwkit.simulator.configs import TorchInferenceRPUConfig

    rows, cols, t = 700, 600, 86400.0
    nominal = level_matrix((rows, cols))
    nominal[350:] *= np.float32(0.1)
    config = TorchInferenceRPUConfig()
    config.forward.is_perfect = True  # exact readout, as the plugin's compensation
    config.noise_model = ReRamWan2022NoiseModel(g_converter=SinglePairConductanceConverter(g_max=40.0))
    torch.manual_seed(7)
    layer = AnalogLinear(rows, cols, bias=False, rpu_config=config)
    layer.set_weights(torch.from_numpy(nominal.T.copy()))
    layer.eval()
    eye = torch.eye(rows)
    with torch.no_grad():
        assert torch.allclose(layer(eye), torch.from_numpy(nominal), atol=1e-6)
        layer.program_analog_weights()
        layer.drift_analog_weights(t)
        theirs = layer(eye).numpy()
    ours = AihwkitVariability(t_inference=t).perturb([nominal], np.random.default_rng(8))[0]
    for r0, scale in ((0, 1.0), (350, 0.1)):
        for c0 in (0, 300):
            block = (slice(r0, r0 + 350), slice(c0, c0 + 300))
            norm = nominal[block] / np.float32(scale)
            a = per_level(norm, ours[block] / np.float32(scale))
            b = per_level(norm, theirs[block] / np.float32(scale))
            assert_same_statistics(a, b, f"tile rows {r0} cols {c0}")


# ---- determinism and the seed's components ------------------------------------------------

def _chip_sha(spec_dict: dict, model_path: str, index: int) -> str:
    from egis.toolkit.model import load_model
    from egis.toolkit.population import Population, PopulationSpec

    weights = Population(PopulationSpec.from_dict(spec_dict), load_model(model_path)).chip_weights(index)
    return hashlib.sha256(b"".join(weights[k].tobytes() for k in sorted(weights))).hexdigest()


def test_same_spec_same_bytes_in_any_process_and_torch_state_untouched(tiny_cnn_path):
    pytest.importorskip("aihwkit")
    import torch

    from egis.toolkit.model import load_model
    from egis.toolkit.population import PopulationSpec

    model = load_model(tiny_cnn_path)
    params = AihwkitVariability(t_inference=86400.0, sigma_sys=0.05, sigma_cor=0.1).params
    spec = PopulationSpec(model.sha256, "aihwkit", params, seed=4, count=8).to_dict()
    torch.manual_seed(99)
    before = torch.random.get_rng_state()
    first = _chip_sha(spec, str(tiny_cnn_path), 3)
    assert torch.equal(torch.random.get_rng_state(), before)  # fork_rng restored the caller's stream
    assert _chip_sha(spec, str(tiny_cnn_path), 3) == first
    assert _chip_sha(spec, str(tiny_cnn_path), 4) != first
    code = ("import sys, json, torch; torch.set_num_threads(2); torch.manual_seed(1)\n"
            "sys.path.insert(0, sys.argv[1]); from test_aihwkit_plugin import _chip_sha\n"
            "print(_chip_sha(json.loads(sys.argv[2]), sys.argv[3], 3))")
    import json
    from pathlib import Path

    result = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), json.dumps(spec),
                             str(tiny_cnn_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == first


def test_systematic_and_correlated_components_are_the_generic_ones_on_top():
    pytest.importorskip("aihwkit")
    from egis.plugins.generic import GenericVariability

    mats = [level_matrix((48, 40)), level_matrix((40, 10))]
    base = AihwkitVariability(t_inference=86400.0).perturb(mats, np.random.default_rng(21))
    both = AihwkitVariability(t_inference=86400.0, sigma_sys=0.1, sigma_cor=0.2, lam=0.05).perturb(
        mats, np.random.default_rng(21))
    rng = np.random.default_rng(21)
    rng.integers(0, 2**63, dtype=np.int64)  # the plugin's first draw: its torch seed
    eps = GenericVariability(lam=0.05).relative_errors(base, rng, sigmas=(0.1, 0.2, 0.0))
    for b, w, e in zip(base, both, eps):
        np.testing.assert_array_equal(w, (b * (np.float32(1.0) + e)).astype(np.float32))
    assert not np.allclose(eps[0], eps[0].flat[0])  # the correlated field varies over the cells


def test_install_script_installs_aihwkit_without_its_dependencies_in_ci():
    """aihwkit declares torchvision (breaks CPU torch), cmake, scikit-build and mypy: every
    pip command that names it must be --no-deps and binary-only, and CI must ask for it."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    script = (root / "scripts/install.sh").read_text()
    lines = [line for line in script.splitlines() if "pip install" in line and "AIHWKIT" in line]
    assert lines and all("--no-deps" in line and "--only-binary=:all:" in line for line in lines)
    assert 'AIHWKIT=aihwkit==1.1.0' in script and '"${CI:-}" = true' in script
    ci = (root / ".ci/run").read_text()
    default = ci.split("EGIS_EXTRAS=${EGIS_EXTRAS:-", 1)[1].split("}", 1)[0]
    assert "aihwkit" in default.split(",") and "bash scripts/install.sh" in ci
