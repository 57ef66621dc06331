"""Entry-point registries of the core: variability models and hardware adapters.

Two groups, one job each:

* ``egis.plugins`` -- variability models (:class:`VariabilityPlugin` subclasses). A vendor ships
  a distribution whose pyproject.toml declares::

      [project.entry-points."egis.plugins"]
      myvendor = "myvendor_egis:MyVariability"

  and the class becomes available as ``--plugin myvendor``.
* ``egis.adapters`` -- hardware adapters: a callable ``factory(target: str) -> ChipAdapter``.
  ``adapter:NAME:TARGET`` on the command line runs chip TARGET through adapter NAME. The older
  spelling ``plugin:NAME:TARGET`` still works: it looks in ``egis.adapters`` first and then
  falls back to ``load_plugin(NAME).adapter(TARGET)`` of a variability plugin, the route used
  before adapters had a group of their own.

The core looks implementations up by name and never imports them, so nothing in
``egis.toolkit`` depends on ``egis.plugins`` or on a vendor package.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from egis.toolkit.errors import PluginError
from egis.toolkit.plugin_api import ChipAdapter, VariabilityPlugin

PLUGIN_GROUP = "egis.plugins"
ADAPTER_GROUP = "egis.adapters"
ADAPTER_SCHEMES = ("adapter", "plugin")


def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def _load(ep: EntryPoint, what: str) -> Any:
    try:
        return ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken third-party package is the user's environment
        raise PluginError(f"{what} '{ep.name}' could not be loaded: {exc}") from exc


def available_plugins() -> list[str]:
    """Sorted names of the installed variability plugins."""
    return sorted(_entry_points(PLUGIN_GROUP))


def available_adapters() -> list[str]:
    """Sorted names of the installed hardware adapters (group ``egis.adapters``)."""
    return sorted(_entry_points(ADAPTER_GROUP))


def plugin_class(name: str) -> type[VariabilityPlugin]:
    """The class registered as plugin ``name``, without instantiating it (so its parameters
    and availability can be listed even where it cannot run); PluginError on an unknown name."""
    eps = _entry_points(PLUGIN_GROUP)
    if name not in eps:
        raise PluginError(f"unknown plugin '{name}'; available: {', '.join(sorted(eps))}")
    cls = _load(eps[name], "plugin")
    if not (isinstance(cls, type) and issubclass(cls, VariabilityPlugin)):
        raise PluginError(f"plugin '{name}' ({eps[name].value}) is not a VariabilityPlugin")
    return cls


def load_plugin(name: str, params: dict[str, Any] | None = None) -> VariabilityPlugin:
    """Instantiate plugin ``name`` with ``params``; PluginError on an unknown name, a plugin
    that cannot run here (its ``unavailable_reason``), or bad parameters."""
    cls = plugin_class(name)
    reason = cls.unavailable_reason()
    if reason:
        raise PluginError(f"plugin '{name}' is unavailable: {reason}")
    return cls(**(params or {}))


def load_adapter(name: str, target: str) -> ChipAdapter:
    """The hardware adapter ``name`` for chip ``target``: group ``egis.adapters`` first, then
    (deprecated) a variability plugin's ``adapter()``. PluginError if neither provides one."""
    adapters = _entry_points(ADAPTER_GROUP)
    if name in adapters:
        factory = _load(adapters[name], "adapter")
        if not callable(factory):
            raise PluginError(f"adapter '{name}' ({adapters[name].value}) is not callable")
        adapter = factory(target)
    elif name in _entry_points(PLUGIN_GROUP):
        adapter = load_plugin(name, {}).adapter(target)
    else:
        known = sorted(adapters) or ["none installed"]
        raise PluginError(f"unknown adapter '{name}'; available: {', '.join(known)}")
    if not isinstance(adapter, ChipAdapter):
        raise PluginError(f"adapter '{name}' returned {type(adapter).__name__}, which has no run(images)")
    return adapter


def parse_chip_adapter(spec: str) -> tuple[str, str] | None:
    """``adapter:NAME:TARGET`` or ``plugin:NAME:TARGET`` -> (NAME, TARGET); None for anything
    else (a file path). PluginError for a malformed adapter reference."""
    scheme, sep, rest = spec.partition(":")
    if not sep or scheme not in ADAPTER_SCHEMES:
        return None
    name, sep, target = rest.partition(":")
    if not sep or not name:
        raise PluginError(f"chip '{spec}' is not {scheme}:NAME:TARGET")
    return name, target


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


__all__ = ["ADAPTER_GROUP", "PLUGIN_GROUP", "available_adapters", "available_plugins",
           "load_adapter", "load_plugin", "parse_chip_adapter", "parse_settings", "plugin_class"]
