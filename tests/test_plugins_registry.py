"""Plugin discovery through entry points, CLI settings parsing, and the base-class contract."""

from __future__ import annotations

import numpy as np
import pytest

import egis.plugins as plugins
from egis.plugins import ChipAdapter, VariabilityPlugin, available_plugins, load_plugin, parse_settings
from egis.plugins.generic import GenericVariability
from egis.plugins.tiled import TiledVariability
from egis.toolkit.errors import PluginError


def test_builtin_plugins_are_discovered():
    assert {"generic", "tiled"} <= set(available_plugins())
    assert available_plugins() == sorted(available_plugins())


def test_load_plugin_builds_validated_instances():
    p = load_plugin("generic", {"sigma_tot": 0.2, "preset": "typical"})
    assert isinstance(p, GenericVariability) and p.params["sigma_tot"] == 0.2
    assert isinstance(load_plugin("tiled", {}), TiledVariability)
    assert load_plugin("generic", None).params == GenericVariability().params


def test_unknown_plugin_message_lists_available():
    with pytest.raises(PluginError) as info:
        load_plugin("gneric", {})
    assert str(info.value) == "unknown plugin 'gneric'; available: aihwkit, generic, tiled"


def test_bad_params_through_load_plugin():
    with pytest.raises(PluginError, match="unknown parameter 'sigma'"):
        load_plugin("generic", {"sigma": 1})


def test_parse_settings_types():
    got = parse_settings(["sigma_tot=0.3", "preset=typical", "levels=16", "flag=true",
                          "p=1e-3", "name='a b'", "neg=-2"])
    assert got == {"sigma_tot": 0.3, "preset": "typical", "levels": 16, "flag": True,
                   "p": 0.001, "name": "a b", "neg": -2}
    assert isinstance(got["levels"], int) and isinstance(got["flag"], bool)
    assert parse_settings(None) == {} and parse_settings([]) == {}


@pytest.mark.parametrize("bad", [["sigma_tot"], ["=3"], ["a b=1"], ["x=1", "x=2"]])
def test_parse_settings_rejects_malformed(bad):
    with pytest.raises(PluginError):
        parse_settings(bad)


def test_settings_round_trip_into_plugin():
    p = load_plugin("tiled", parse_settings(["levels=32", "sigma_die=0", "g_max=50"]))
    assert p.params["levels"] == 32 and p.params["sigma_die"] == 0.0 and p.params["g_max"] == 50.0


def test_default_adapter_raises_plugin_error():
    with pytest.raises(PluginError, match="plugin generic provides no hardware adapter"):
        GenericVariability().adapter("board0")


def test_chip_adapter_protocol_and_custom_plugin():
    class Board:
        def run(self, images: np.ndarray) -> np.ndarray:
            return np.zeros((len(images), 10), np.float32)

    class Scale(VariabilityPlugin):
        name = "scale"

        @classmethod
        def parameters(cls):
            return {"factor": (1.0, "multiply every weight")}

        def perturb(self, matrices, rng):
            return [np.asarray(m, np.float32) * self.params["factor"] for m in matrices]

        def adapter(self, target):
            return Board()

    assert isinstance(Board(), ChipAdapter)
    plugin = Scale(factor=2)
    assert isinstance(plugin.adapter("x"), ChipAdapter)
    out = plugin.perturb([np.ones((2, 3))], np.random.default_rng(0))
    assert out[0].dtype == np.float32 and (out[0] == 2).all()
    with pytest.raises(TypeError):
        VariabilityPlugin()  # abstract


def test_public_names():
    assert set(plugins.__all__) >= {"available_plugins", "load_plugin", "parse_settings",
                                    "VariabilityPlugin", "ChipAdapter"}
