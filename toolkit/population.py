"""Populations of simulated chips (DUTs): a small JSON spec from which every chip is rebuilt.

A population never stores weights. Chip i's weights are a pure function of (spec, i): the
plugin draws from ``numpy.random.default_rng([spec.seed, i])`` as the spec's format version
says, so any chip can be rebuilt alone, in any order, in any process, and the same spec always
gives the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from egis.toolkit.errors import PopulationError
from egis.toolkit.io import read_json, sha256_bytes, write_json
from egis.toolkit.model import LoadedModel, nominal_weights
from egis.toolkit.plugin_api import POPULATION_FORMAT, POPULATION_FORMATS

# 1: the original draws. 2: the generic plugin's faster exact draws (plugins.fields, version 2;
# a tighter die layout): the same covariance from fewer random numbers, so other bytes.
# 3: band-limited correlated fields (plugins.fields, version 3): covariance within
# fields.BAND_TOL of the exact one at every lag, 6.5-8.5x faster draws; the dropped modes' lag-0
# variance joins eps_rand. Specs of every version in POPULATION_FORMATS rebuild their own
# bytes; new specs are 3 (``egis duts make --format-version 2`` keeps the exact draws).
FORMAT_VERSION = POPULATION_FORMAT
SPEC_FIELDS = ("format_version", "model_sha256", "plugin", "params", "seed", "count")


def check_format_version(version: Any, source: str) -> int:
    """``version`` if this egis rebuilds that population format, else a one-line
    PopulationError naming the versions it does (one check for files, specs and commands)."""
    if isinstance(version, bool) or version not in POPULATION_FORMATS:
        raise PopulationError(f"{source} has format version {version!r}; this egis rebuilds "
                              f"versions {', '.join(map(str, POPULATION_FORMATS))}")
    return version


@dataclass(frozen=True)
class PopulationSpec:
    """Everything needed to rebuild a population, given the model file it was made for."""

    model_sha256: str
    plugin: str
    params: dict[str, Any]
    seed: int
    count: int
    format_version: int = FORMAT_VERSION
    note: str = field(default="", compare=False)
    # Where the model file was when the spec was made: a hint for commands, never trusted
    # (the sha256 is what binds a population to its model).
    model_path: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sha256(self) -> str:
        """Hash of the fields that determine the chips (not of the file's formatting)."""
        canonical = {key: getattr(self, key) for key in SPEC_FIELDS}
        return sha256_bytes(json.dumps(canonical, sort_keys=True).encode())

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "PopulationSpec":
        try:
            data = read_json(path)
        except FileNotFoundError:
            raise PopulationError(f"population file not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise PopulationError(f"cannot read population file {path}: {exc}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "population") -> "PopulationSpec":
        if not isinstance(data, dict):
            raise PopulationError(f"{source} is not a population spec (expected a JSON object)")
        missing = [key for key in SPEC_FIELDS if key not in data]
        if missing:
            raise PopulationError(f"{source} is not a population spec: missing {', '.join(missing)}")
        version = check_format_version(data["format_version"], source)
        count, seed = data["count"], data["seed"]
        sha = data["model_sha256"]
        if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            raise PopulationError(f"{source}: model_sha256 must be a sha256 hex digest, got {sha!r}")
        if not isinstance(data["plugin"], str) or not data["plugin"]:
            raise PopulationError(f"{source}: plugin must be a plugin name, got {data['plugin']!r}")
        if not isinstance(data["params"], dict) or not all(isinstance(k, str) for k in data["params"]):
            raise PopulationError(f"{source}: params must be an object of parameter -> value, "
                                  f"got {type(data['params']).__name__}")
        for key in ("note", "model_path"):
            if not isinstance(data.get(key, ""), str):
                raise PopulationError(f"{source}: {key} must be a string")
        if isinstance(count, bool) or isinstance(seed, bool):
            raise PopulationError(f"{source}: count and seed must be integers, not booleans")
        if not isinstance(count, int) or count < 1:
            raise PopulationError(f"{source}: count must be a positive integer, got {count!r}")
        if not isinstance(seed, int) or seed < 0:
            raise PopulationError(f"{source}: seed must be a non-negative integer, got {seed!r}")
        return cls(model_sha256=data["model_sha256"], plugin=data["plugin"],
                   params=dict(data["params"]), seed=seed, count=count, format_version=version,
                   note=data.get("note", ""), model_path=data.get("model_path", ""))


def parse_chip_range(text: str | None, count: int) -> list[int]:
    """Chips selected by ``--chips``: 'START:STOP' (a Python slice, either end optional) or
    'N' (the first N chips, i.e. ':N'), over a population of ``count`` chips.

    One spelling for every command that takes chips of a population (label, test, demo)."""
    if text is None:
        return list(range(count))
    if ":" not in text:
        text = ":" + text.strip()
    try:
        start, _, stop = text.partition(":")
        chips = list(range(count))[slice(int(start) if start else None, int(stop) if stop else None)]
    except ValueError:
        raise PopulationError(f"chip range '{text}' is not START:STOP or N") from None
    if not chips:
        raise PopulationError(f"chip range '{text}' selects no chips of {count}")
    return chips


def resolve_model_path(spec: PopulationSpec, population_path: str | Path,
                       model: str | Path | None = None) -> Path:
    """The model file of a population: ``model`` if given, else the spec's path hint
    (relative hints are tried as given, then next to the population file)."""
    if model is not None:
        return Path(model)
    if not spec.model_path:
        raise PopulationError(f"{population_path} names no model file; pass --model MODEL.onnx")
    candidate = Path(spec.model_path)
    if not candidate.is_absolute() and not candidate.exists():
        candidate = Path(population_path).parent / candidate
    return candidate


def open_population(population_path: str | Path, model: str | Path | LoadedModel | None = None) -> Population:
    """Spec file + its model (``model``: a path, an already loaded model with its declared
    input contract, or None for the spec's hint) -> the Population, sha256-checked.

    Every command that reads a population goes through here, so the model lookup and the
    sha256 check behave the same everywhere.
    """
    from egis.toolkit.model import load_model  # noqa: PLC0415

    spec = PopulationSpec.load(population_path)
    if isinstance(model, LoadedModel):
        return Population(spec, model)
    return Population(spec, load_model(resolve_model_path(spec, population_path, model)))


class Population:
    """The chips of one spec on one model; builds any chip's weights on demand."""

    def __init__(self, spec: PopulationSpec, model: LoadedModel) -> None:
        from egis.toolkit.registry import load_plugin

        if spec.model_sha256 != model.sha256:
            raise PopulationError(
                f"population was made for model sha256 {spec.model_sha256[:12]}..., "
                f"but this model is {model.sha256[:12]}...")
        self.spec = spec
        self.model = model
        check_format_version(spec.format_version, "population")
        self.plugin = load_plugin(spec.plugin, spec.params).use_format(spec.format_version)
        weights = nominal_weights(model)
        self._nominal = [np.ascontiguousarray(layer.to_matrix(weights[layer.name]), dtype=np.float32)
                         for layer in model.layers]

    def __len__(self) -> int:
        return self.spec.count

    def check_index(self, index: int) -> None:
        if not 0 <= index < self.spec.count:
            raise PopulationError(f"chip index {index} is outside this population (0..{self.spec.count - 1})")

    def chip_matrices(self, index: int) -> list[np.ndarray]:
        """Effective crossbar matrices (rows=inputs, cols=outputs) of chip ``index``."""
        self.check_index(index)
        rng = np.random.default_rng([self.spec.seed, index])
        matrices = self.plugin.perturb(self._nominal, rng)
        return [np.asarray(m, dtype=np.float32) for m in matrices]

    def chip_weights(self, index: int) -> dict[str, np.ndarray]:
        """Chip ``index``'s weight tensors in the model's own shapes, keyed by initializer name."""
        return {layer.name: np.ascontiguousarray(layer.from_matrix(matrix), dtype=np.float32)
                for layer, matrix in zip(self.model.layers, self.chip_matrices(index))}

    def chip_model(self, index: int) -> onnx.ModelProto:
        """A standalone ONNX model of chip ``index``: the customer's model with its weights."""
        weights = self.chip_weights(index)
        chip = onnx.ModelProto()
        chip.CopyFrom(self.model.proto)
        for init in chip.graph.initializer:
            if init.name in weights:
                init.CopyFrom(numpy_helper.from_array(
                    weights[init.name].astype(onnx.helper.tensor_dtype_to_np_dtype(init.data_type)),
                    init.name))
        entry = chip.metadata_props.add()
        entry.key, entry.value = "egis.chip", json.dumps(
            {"population_sha256": self.spec.sha256(), "index": index,
             "plugin": self.spec.plugin, "model_sha256": self.model.sha256})
        return chip
