"""IBM aihwkit's measured device models as a variability plugin (``--plugin aihwkit``).

aihwkit (the IBM Analog Hardware Acceleration Kit) is the field's reference library for
analog in-memory computing; its inference noise models are fitted to measured devices. It
has no spatial correlation, no chip populations and no ONNX import; egis has all three. This
plugin runs aihwkit's own models on every crossbar of an ONNX model, chip by chip.

Models (``noise_model``), all aihwkit 1.1.0 classes:

``reram_wan2022``  ``ReRamWan2022NoiseModel``: ReRAM programming noise fitted to Wan et al.,
    Nature 608, 504 (2022); a 4th-order polynomial of g / g_max gives the spread (uS) at 1 s,
    1 day and 2 days after programming. The fit's conductance range is 40 uS.
``reram_cmo``      ``ReRamCMONoiseModel``: CMO/HfOx ReRAM (IBM Research Zurich): programming
    noise of a program-and-verify loop with a 0.2 % or 2 % acceptance range, conductance
    relaxation and read noise growing with log t; one device per cross-point in [9, 88.2] uS.
``pcm_like``       ``PCMLikeNoiseModel``: PCM (Nandakumar et al., ICECS 2019): programming
    noise, drift G (t / t0)^-nu with conductance-dependent nu, accumulated 1/f read noise;
    25 uS range.

One chip, one crossbar matrix (rows = inputs, cols = outputs):

1. The matrix is cut into tiles as aihwkit's ``TileModuleArray`` cuts a layer: inputs into
   ceil(rows / tile_rows) nearly equal parts, outputs likewise (its ``MappingParameter``
   max_input_size / max_output_size, 512 each). Each tile is programmed on its own, so its
   conductance scale is set by its own largest |w|, as on aihwkit tiles.
2. Per tile, aihwkit's ``BaseNoiseModel.apply_noise`` flow: the converter maps the weights to
   target conductances (single_pair: G+ / G- with one device at g_min; dual_pair: two pairs
   with significance 1 and ``f_msp``; single_device: one device, offset by the smallest
   weight); per conductance slice the model adds programming noise, draws its drift
   coefficients and, when ``t_inference > 0``, applies drift and read noise up to that time;
   the converter maps the conductances back with the same scale.
3. ``drift_compensation=global``: aihwkit's ``GlobalDriftCompensation`` (the default of its
   InferenceRPUConfig) scales the tile by alpha = mean|W_prog| / mean|W_t| (each mean clamped
   at 1e-4, as aihwkit's readout), which a chip implements as one output gain per tile. The
   readout is exact here: aihwkit would read it through the tile's noisy periphery, which
   this plugin does not model (it returns weights; ADC/DAC and IO noise are not weights).
4. Optionally the seed paper's components on top, from ``egis.plugins.generic``:
   w_eff = w_aihwkit (1 + eps_sys + eps_cor), eps_sys one N(0, sigma_sys^2) draw per chip,
   eps_cor an exp(-lam d) field (``placement`` as in generic).

Randomness. aihwkit draws with torch's global generator (``randn_like``), so the plugin takes
one 63-bit integer from the numpy generator it is given (chip i's
``default_rng([spec.seed, i])``), seeds torch's CPU generator with it inside
``torch.random.fork_rng`` (the caller's torch RNG state is restored afterwards), and runs the
torch part on one intra-op thread under a lock (thread-count independent bytes, and no other
thread can draw from the global generator in between). The systematic and correlated
components then draw from the numpy generator. Same spec, same bytes; the torch draws of
different chips are independent streams.

Without aihwkit the plugin is listed as unavailable with the install command and refuses to
load with one line; aihwkit is imported only when a chip is built.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import Any

import numpy as np

from egis.toolkit.plugin_api import ParamSpec, VariabilityPlugin, check_matrices
from .generic import GenericVariability

AIHWKIT_VERSION = "1.1.0"
INSTALL_COMMAND = "EGIS_EXTRAS=aihwkit bash scripts/install.sh (or pip install --no-deps aihwkit==1.1.0)"

NOISE_MODELS = ("reram_wan2022", "reram_cmo", "pcm_like")
CONVERTERS = ("single_pair", "dual_pair", "single_device")
# What each model is measured with, filled in where the caller did not say: the conductance
# range of its fit (Wan et al.: 40 uS; aihwkit's PCM reference: 25 uS; CMO: the device's
# [9, 88.2] uS window) and the converter aihwkit builds it with.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "reram_wan2022": {"converter": "single_pair", "g_max": 40.0, "g_min": 0.0},
    "reram_cmo": {"converter": "single_device", "g_max": 88.199997, "g_min": 9.0},
    "pcm_like": {"converter": "single_pair", "g_max": 25.0, "g_min": 0.0},
}
# Wan et al. measured three times after programming (aihwkit's coefficient table); 0 means
# programming noise only.
WAN2022_TIMES = (0.0, 1.0, 86400.0, 172800.0)
CMO_ACCEPTANCE = (0.2, 2.0)  # percent of the target conductance (aihwkit's coefficient keys)
READOUT_CLIP = 1e-4  # aihwkit GlobalDriftCompensation.readout's clamp

# torch's global generator is process-wide: one chip at a time draws from it.
_TORCH_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def aihwkit_import_error() -> str | None:
    """Why aihwkit's inference models cannot be imported here, or None when they can."""
    try:
        from aihwkit.inference.converter.conductance import (  # noqa: F401, PLC0415
            DualPairConductanceConverter, SingleDeviceConductanceConverter,
            SinglePairConductanceConverter)
        from aihwkit.inference.noise.pcm import PCMLikeNoiseModel  # noqa: F401, PLC0415
        from aihwkit.inference.noise.reram import (  # noqa: F401, PLC0415
            ReRamCMONoiseModel, ReRamWan2022NoiseModel)
    except Exception as exc:  # noqa: BLE001 - any failure (absent, broken torch ABI) means unusable
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{type(exc).__name__}: {first}"
    return None


def split_sizes(size: int, max_size: int) -> list[int]:
    """aihwkit's ``TileModuleArray.get_split_sizes``: ``size`` cut into ceil(size / max_size)
    parts that differ by at most one, larger parts first; one part when ``max_size`` is 0."""
    if max_size <= 0 or size <= max_size:
        return [size]
    parts = -(-size // max_size)
    base, extra = divmod(size, parts)
    return [base + (i < extra) for i in range(parts)]


class AihwkitVariability(VariabilityPlugin):
    """aihwkit's measured ReRAM / PCM inference noise per tile, plus optional die-level
    systematic and spatially correlated variation."""

    name = "aihwkit"

    @classmethod
    def parameters(cls) -> ParamSpec:
        return {
            "noise_model": ("reram_wan2022", "aihwkit model: reram_wan2022, reram_cmo or pcm_like"),
            "t_inference": (1.0, "seconds since programming (drift, read noise); 0 = programming "
                                 "noise only; reram_wan2022 only 0, 1, 86400, 172800"),
            "converter": ("single_pair", "weights -> conductances: single_pair, dual_pair, "
                                         "single_device (reram_cmo: single_device only)"),
            "g_max": (40.0, "highest conductance (uS); default the model's fit: 40 wan2022, "
                            "88.2 cmo, 25 pcm_like"),
            "g_min": (0.0, "lowest conductance (uS), the logical zero; default 0 (9 for reram_cmo)"),
            "f_msp": (3.0, "dual_pair: significance F of the more significant pair (the other: 1)"),
            "prog_noise_scale": (1.0, "factor on programming noise (reram_wan2022: on all its noise)"),
            "read_noise_scale": (1.0, "factor on read / accumulated noise (reram_cmo, pcm_like)"),
            "drift_scale": (1.0, "factor on drift (reram_cmo, pcm_like)"),
            "acceptance_range": (0.2, "reram_cmo: program-and-verify acceptance, % of target: 0.2 or 2"),
            "drift_compensation": ("global", "global: aihwkit's GlobalDriftCompensation per tile; none"),
            "tile_rows": (512, "most inputs per tile (aihwkit max_input_size); 0 = whole layer"),
            "tile_cols": (512, "most outputs per tile (aihwkit max_output_size); 0 = whole layer"),
            "sigma_sys": (0.0, "std of the seed's systematic eps (one draw per chip), relative"),
            "sigma_cor": (0.0, "std of the seed's spatially correlated eps, relative"),
            "lam": (0.001, "decay rate of the correlation exp(-lam d), 1/cells (with sigma_cor)"),
            "placement": ("die", "correlated field: die (one over all crossbars) or independent"),
        }

    @classmethod
    def unavailable_reason(cls) -> str | None:
        error = aihwkit_import_error()
        if error is None:
            return None
        return f"aihwkit {AIHWKIT_VERSION} cannot be imported ({error}); install it with {INSTALL_COMMAND}"

    def _validate(self, values: dict[str, Any]) -> dict[str, Any]:
        model = values["noise_model"]
        self._require(model in NOISE_MODELS,
                      f"noise_model must be one of {', '.join(NOISE_MODELS)} (got {model!r})")
        for key, default in MODEL_DEFAULTS[model].items():
            if key not in self._given:
                values[key] = default
        converter = values["converter"]
        allowed = ("single_device",) if model == "reram_cmo" else ("single_pair", "dual_pair")
        self._require(converter in allowed, f"noise_model={model} takes converter "
                                            f"{' or '.join(allowed)} (got {converter!r})")
        g_min, g_max = values["g_min"], values["g_max"]
        self._require(math.isfinite(g_max) and 0 <= g_min < g_max,
                      f"need 0 <= g_min < g_max, finite (got g_min={g_min}, g_max={g_max})")
        t = values["t_inference"]
        self._require(math.isfinite(t) and t >= 0, f"t_inference must be >= 0 seconds (got {t})")
        if model == "reram_wan2022":
            self._require(t in WAN2022_TIMES, "reram_wan2022 is measured at t_inference = "
                          f"{', '.join(f'{v:g}' for v in WAN2022_TIMES)} s only (got {t:g})")
        for key in ("prog_noise_scale", "read_noise_scale", "drift_scale"):
            self._require(math.isfinite(values[key]) and values[key] >= 0,
                          f"{key} must be >= 0 (got {values[key]})")
        self._require(values["f_msp"] > 0 and math.isfinite(values["f_msp"]),
                      f"f_msp must be > 0 (got {values['f_msp']})")
        self._require(values["acceptance_range"] in CMO_ACCEPTANCE,
                      f"acceptance_range must be 0.2 or 2 (got {values['acceptance_range']})")
        unused = {"reram_wan2022": ("read_noise_scale", "drift_scale", "acceptance_range"),
                  "pcm_like": ("acceptance_range",), "reram_cmo": ()}[model]
        if converter != "dual_pair":
            unused += ("f_msp",)
        for key in unused:
            self._require(key not in self._given or values[key] == self.parameters()[key][0],
                          f"{key} has no effect with noise_model={model}, converter={converter}")
        self._require(values["drift_compensation"] in ("global", "none"),
                      f"drift_compensation must be global or none (got {values['drift_compensation']!r})")
        for key in ("tile_rows", "tile_cols"):
            self._require(values[key] >= 0, f"{key} must be >= 0 (got {values[key]})")
        for key in ("sigma_sys", "sigma_cor"):
            self._require(math.isfinite(values[key]) and values[key] >= 0,
                          f"{key} must be >= 0 (got {values[key]})")
        self._require(math.isfinite(values["lam"]) and values["lam"] > 0,
                      f"lam must be > 0 (got {values['lam']})")
        self._require(values["placement"] in ("die", "independent"),
                      f"placement must be die or independent (got {values['placement']!r})")
        return values

    # ---- aihwkit objects ---------------------------------------------------------------
    def noise_model(self) -> Any:
        """The configured aihwkit noise model (with its converter), built once per instance.

        aihwkit's models hold no random state, so one instance serves every chip."""
        if "model" not in self._caches:
            self._caches["model"] = self._build_model()
        return self._caches["model"]

    def _build_model(self) -> Any:
        from aihwkit.inference.converter.conductance import (  # noqa: PLC0415
            DualPairConductanceConverter, SinglePairConductanceConverter)
        from aihwkit.inference.noise.pcm import PCMLikeNoiseModel  # noqa: PLC0415
        from aihwkit.inference.noise.reram import ReRamCMONoiseModel, ReRamWan2022NoiseModel  # noqa: PLC0415

        p = self._params
        if p["noise_model"] == "reram_cmo":  # builds its own single-device converter
            return ReRamCMONoiseModel(g_max=p["g_max"], g_min=p["g_min"],
                                      prog_noise_scale=p["prog_noise_scale"],
                                      read_noise_scale=p["read_noise_scale"],
                                      drift_scale=p["drift_scale"],
                                      acceptance_range=p["acceptance_range"])
        if p["converter"] == "dual_pair":
            converter = DualPairConductanceConverter(f_lst=[1.0, p["f_msp"]], g_max=p["g_max"], g_min=p["g_min"])
        else:
            converter = SinglePairConductanceConverter(g_max=p["g_max"], g_min=p["g_min"])
        if p["noise_model"] == "reram_wan2022":
            return ReRamWan2022NoiseModel(g_converter=converter, noise_scale=p["prog_noise_scale"])
        return PCMLikeNoiseModel(g_converter=converter, prog_noise_scale=p["prog_noise_scale"],
                                 read_noise_scale=p["read_noise_scale"], drift_scale=p["drift_scale"])

    def seed_components(self) -> GenericVariability:
        """The generic plugin that draws eps_sys and eps_cor (its field caches live on it)."""
        key = ("generic", self.format_version)
        if key not in self._caches:
            self._caches[key] = GenericVariability(
                lam=self._params["lam"], placement=self._params["placement"]).use_format(self.format_version)
        return self._caches[key]

    # ---- one tile ----------------------------------------------------------------------
    def program_tile(self, weights: Any) -> Any:
        """One tile's weights (torch tensor) -> its read-back weights at ``t_inference``.

        aihwkit's ``BaseNoiseModel.apply_noise`` flow (one conversion, noise on every
        conductance slice, back with the same scale), except that ``t_inference = 0`` gives
        the programmed weights, and followed by the global drift compensation."""
        import torch  # noqa: PLC0415

        model, t = self.noise_model(), self._params["t_inference"]
        converter = model.g_converter
        targets, scale = converter.convert_to_conductances(weights)
        one_device = isinstance(targets, torch.Tensor)  # single_device returns one tensor
        programmed, drifted = [], []
        for g_target in [targets] if one_device else targets:
            g_prog = model.apply_programming_noise_to_conductance(g_target)
            programmed.append(g_prog)
            if t > 0:
                nu = model.generate_drift_coefficients(g_target)
                drifted.append(model.apply_drift_noise_to_conductance(g_prog, nu, t))

        def back(conductances: list) -> Any:
            return converter.convert_back_to_weights(conductances[0] if one_device else conductances, scale)

        w_prog = back(programmed)
        if t == 0:
            return w_prog
        w_t = back(drifted)
        if self._params["drift_compensation"] == "global":
            reference = w_prog.abs().double().mean().clamp(min=READOUT_CLIP)
            current = w_t.abs().double().mean().clamp(min=READOUT_CLIP)
            w_t = w_t * (reference / current).to(w_t.dtype)
        return w_t

    def aihwkit_matrix(self, m: np.ndarray) -> np.ndarray:
        """One crossbar matrix through aihwkit, tile by tile (torch's generator already seeded)."""
        import torch  # noqa: PLC0415

        out = np.empty_like(m)
        if m.size == 0:
            return out
        r0 = 0
        for rows in split_sizes(m.shape[0], self._params["tile_rows"]):
            c0 = 0
            for cols in split_sizes(m.shape[1], self._params["tile_cols"]):
                tile = torch.from_numpy(np.ascontiguousarray(m[r0:r0 + rows, c0:c0 + cols]))
                out[r0:r0 + rows, c0:c0 + cols] = self.program_tile(tile).numpy()
                c0 += cols
            r0 += rows
        return out

    # ---- one chip ----------------------------------------------------------------------
    def perturb(self, matrices: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        import torch  # noqa: PLC0415

        mats = check_matrices(matrices)
        seed = int(rng.integers(0, 2**63, dtype=np.int64))  # draw 1: this chip's torch stream
        with _TORCH_LOCK, torch.random.fork_rng(devices=[]), torch.no_grad():
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                torch.default_generator.manual_seed(seed)
                out = [self.aihwkit_matrix(m) for m in mats]
            finally:
                torch.set_num_threads(threads)
        bad = next((i for i, m in enumerate(out) if not np.isfinite(m).all()), None)
        self._require(bad is None, f"noise_model={self._params['noise_model']} gave non-finite "
                                   f"weights in crossbar {bad} (conductances near 0 with g_min="
                                   f"{self._params['g_min']}; raise g_min)")
        s_sys, s_cor = self._params["sigma_sys"], self._params["sigma_cor"]
        # draws 2+: generic's order (eps_sys, then the fields; at format 3 also the fields'
        # nugget, white noise of variance s_cor^2 * nugget per cell)
        if s_sys > 0 or s_cor > 0:
            eps = self.seed_components().relative_errors(out, rng, sigmas=(s_sys, s_cor, 0.0))
            out = [m * (np.float32(1.0) + e) for m, e in zip(out, eps)]
        return [np.asarray(m, dtype=np.float32) for m in out]
