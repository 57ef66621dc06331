"""The two extension interfaces of the core: variability models and hardware adapters.

* :class:`VariabilityPlugin` -- the base class every crossbar-vendor variability model
  implements (entry-point group ``egis.plugins``; see docs/architecture.md).
* :class:`ChipAdapter` -- the protocol of a hardware adapter that runs images on a real chip
  or a vendor's behavioural model (entry-point group ``egis.adapters``).

They live in the core so that the core never imports an implementation: implementations
(``egis.plugins.*``, vendor packages) import this module, never the other way round.

A plugin turns the nominal crossbar matrices of *all* crossbar layers of a model into the
effective matrices of one simulated chip. Everything random comes from the generator passed
to ``perturb``, so chip weights are a pure function of (parameters, generator state, and the
population format version the plugin draws for, ``use_format``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from egis.toolkit.errors import PluginError

ParamSpec = dict[str, tuple[Any, str]]

# Population format versions: what new population specs are written with, and every version
# this egis rebuilds bit for bit. A plugin whose draws change bumps the format and keeps the
# old draw for old specs (see egis.toolkit.population).
POPULATION_FORMAT = 3
POPULATION_FORMATS = (1, 2, 3)


@runtime_checkable
class ChipAdapter(Protocol):
    """A vendor adapter that runs images on real hardware instead of a simulation."""

    def run(self, images: np.ndarray) -> np.ndarray:
        """Images in the model's pixel domain and layout -> logits (n, num_classes)."""
        ...


def _coerce(value: Any, default: Any) -> Any:
    """Convert ``value`` to the type of ``default``; None when it cannot be (bools never
    pass as numbers, so ``sigma=True`` is a type error rather than sigma=1)."""
    if isinstance(default, bool):
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    if isinstance(default, int):
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
        return None
    if isinstance(default, float):
        return float(value) if isinstance(value, (int, float, np.integer, np.floating)) else None
    if isinstance(default, str):
        return value if isinstance(value, str) else None
    return value


class VariabilityPlugin(ABC):
    """One vendor's device-variability model.

    Subclasses set ``name``, override ``parameters()`` and ``perturb()``, and may override
    ``_validate()`` for range checks (raise ``self._error(...)``).
    """

    name: ClassVar[str] = "base"
    #: The population format whose draws ``perturb`` reproduces; set by ``use_format``.
    format_version: int = POPULATION_FORMAT

    @classmethod
    @abstractmethod
    def parameters(cls) -> ParamSpec:
        """{parameter: (default, one-line doc)}; the defaults fix each parameter's type."""

    def __init__(self, **params: Any) -> None:
        spec = self.parameters()
        unknown = sorted(set(params) - set(spec))
        if unknown:
            raise self._error(f"unknown parameter '{unknown[0]}'")
        values: dict[str, Any] = {}
        for key, (default, _doc) in spec.items():
            raw = params.get(key, default)
            value = _coerce(raw, default)
            if value is None:
                raise self._error(f"parameter '{key}' must be of type "
                                  f"{type(default).__name__}, got {raw!r}")
            values[key] = value
        self._given = frozenset(params)  # names the caller set explicitly
        self._params = self._validate(values)
        self._caches: dict[Any, Any] = {}

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this plugin cannot run here, or None when it can.

        A plugin built on an optional dependency (an extra that is not installed, a library
        that fails to import) overrides this with a one-line reason that names the install
        command, so ``egis duts plugins`` can list it as unavailable and ``load_plugin``
        refuses it with that line instead of a traceback. Must not raise.
        """
        return None

    def _validate(self, values: dict[str, Any]) -> dict[str, Any]:
        """Range checks and derived values; returns the complete parameter dict."""
        return values

    @classmethod
    def _error(cls, what: str) -> PluginError:
        """A one-line PluginError that also names the valid parameters."""
        names = ", ".join(cls.parameters())
        return PluginError(f"plugin '{cls.name}': {what}; parameters: {names}")

    def _require(self, ok: bool, what: str) -> None:
        if not ok:
            raise self._error(what)

    def use_format(self, version: int) -> "VariabilityPlugin":
        """Draw chips as population format ``version`` does (a Population calls this with its
        spec's version, so an old spec keeps its bytes). Plugins whose draws never changed
        need not care; a plugin whose draws did branches on ``self.format_version``."""
        if version not in POPULATION_FORMATS:
            raise PluginError(f"population format version {version!r} is not one of {POPULATION_FORMATS}")
        self.format_version = version
        return self

    @property
    def params(self) -> dict[str, Any]:
        """Complete, JSON-able parameters (defaults filled in)."""
        return dict(self._params)

    @abstractmethod
    def perturb(self, matrices: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        """Nominal crossbar matrices (rows=inputs, cols=outputs) of all crossbar layers ->
        one chip's effective matrices (float32, same shapes)."""

    def adapter(self, target: str) -> ChipAdapter:
        """Hardware adapter for ``target``; plugins without hardware access raise.

        Deprecated route, kept for plugins written before adapters had their own entry-point
        group: declare a factory under ``egis.adapters`` instead (egis.toolkit.registry)."""
        raise PluginError(f"plugin {self.name} provides no hardware adapter")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"


def check_matrices(matrices: list[np.ndarray]) -> list[np.ndarray]:
    """Float32 2-D views of the inputs; a bug (not user error) if they are not matrices."""
    out = [np.asarray(m, dtype=np.float32) for m in matrices]
    for m in out:
        if m.ndim != 2:
            raise ValueError(f"crossbar matrices must be 2-D, got shape {m.shape}")
    return out
