"""The variability models shipped with egis-toolkit (``generic``, ``tiled``) and the field
sampler they share. A vendor's own plugin implements ``egis.toolkit.plugin_api``'s
interfaces and registers through the entry points described in ``egis.toolkit.registry``.

The names below are re-exported from the core for plugin authors' convenience; their home is
``egis.toolkit.plugin_api`` and ``egis.toolkit.registry``.
"""

from __future__ import annotations

from egis.toolkit.plugin_api import ChipAdapter, ParamSpec, VariabilityPlugin, check_matrices
from egis.toolkit.registry import available_adapters, available_plugins, load_adapter, load_plugin, parse_settings

__all__ = ["ChipAdapter", "ParamSpec", "VariabilityPlugin", "available_adapters", "available_plugins",
           "check_matrices", "load_adapter", "load_plugin", "parse_settings"]
