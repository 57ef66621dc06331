"""Crossbar-vendor variability models, discovered through the ``egis.plugins`` entry points.

A vendor ships a distribution that declares, in its pyproject.toml::

    [project.entry-points."egis.plugins"]
    myvendor = "myvendor_egis:MyVariability"

and the class (a :class:`VariabilityPlugin`) becomes available as ``--plugin myvendor``.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from toolkit.errors import PluginError

from .base import ChipAdapter, VariabilityPlugin

__all__ = ["ChipAdapter", "VariabilityPlugin", "available_plugins", "load_plugin",
           "parse_settings"]

GROUP = "egis.plugins"


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available_plugins() -> list[str]:
    """Sorted names of the installed plugins."""
    return sorted(_entry_points())


def load_plugin(name: str, params: dict[str, Any] | None = None) -> VariabilityPlugin:
    """Instantiate plugin ``name`` with ``params``; PluginError on an unknown name or bad
    parameters."""
    eps = _entry_points()
    if name not in eps:
        raise PluginError(f"unknown plugin '{name}'; available: {', '.join(sorted(eps))}")
    try:
        cls = eps[name].load()
    except Exception as exc:  # a broken third-party package is the user's environment
        raise PluginError(f"plugin '{name}' could not be loaded: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, VariabilityPlugin)):
        raise PluginError(f"plugin '{name}' ({eps[name].value}) is not a VariabilityPlugin")
    return cls(**(params or {}))


def _parse_value(text: str) -> Any:
    """'true'/'false' -> bool, integers -> int, other numbers -> float, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_settings(settings: list[str] | tuple[str, ...] | None) -> dict[str, Any]:
    """CLI ``--set k=v`` strings -> parameter dict, e.g. ["sigma_tot=0.3", "preset=typical"]."""
    out: dict[str, Any] = {}
    for item in settings or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise PluginError(f"bad setting '{item}': expected key=value, e.g. sigma_tot=0.3")
        if key in out:
            raise PluginError(f"setting '{key}' given twice")
        out[key] = _parse_value(value.strip())
    return out
