"""One notion of a chip set, wherever the chips come from.

In production the labelled chips are physical chips or a vendor's behavioural models of them,
not populations this toolkit simulates. A chip set is any of:

* a population spec (``POP.json``, from ``egis duts make``): chips simulated on one shared
  onnxruntime session (the fast route);
* a folder of chip ONNX files, a glob (``chips/*.onnx``), or one ONNX file;
* a chip-list file (``.txt``, ``.chips`` or ``.list``): one chip per line, an ONNX path
  (relative to the list) or an adapter reference ``adapter:NAME:TARGET``; ``#`` starts a comment;
* an adapter reference ``adapter:NAME:TARGET`` on its own.

Chip ids are stable and readable: the population index, the file stem, the adapter target.
Every chip set has a :meth:`ChipSet.record` (the population's sha256, or each chip file's
sha256 and each adapter reference) and its sha256, which label side files, responses and
bundles carry, so a labels file is never used with another chip set. Chip files are checked
against the model (input/output names, shapes, classes) when the set is opened.
"""

from __future__ import annotations

import glob
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from egis.toolkit.chips import ADAPTER_PREFIXES, CHIP_LIST_SUFFIXES, read_chip_list
from egis.toolkit.errors import DataError, EgisError
from egis.toolkit.model import LoadedModel



class ChipSet(ABC):
    """Chips of one model, addressed by row 0..len-1 and by readable id."""

    model: LoadedModel
    ids: list[str]
    kind: str = "chips"

    def __len__(self) -> int:
        return len(self.ids)

    @abstractmethod
    def responses(self, row: int, pixels: np.ndarray) -> np.ndarray:
        """Logits (n, M) float32 of chip ``row`` on pixel-domain images in model layout."""

    @abstractmethod
    def record(self) -> dict[str, Any]:
        """JSON-able description that identifies the chips (hashes, not paths alone)."""

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.record(), sort_keys=True).encode()).hexdigest()

    @abstractmethod
    def identity(self, row: int) -> str:
        """What chip ``row`` is, independent of which other chips were selected: a chip file's
        sha256, an adapter reference, or the population's sha256 and the index."""

    def identities(self) -> dict[str, str]:
        return {chip_id: self.identity(row) for row, chip_id in enumerate(self.ids)}


class PopulationChipSet(ChipSet):
    """Chips ``indices`` of a simulated population, on one shared simulator session."""

    kind = "population"

    def __init__(self, population: Any, indices: Sequence[int] | None = None,
                 threads: int | None = None) -> None:
        self.population = population
        self.model = population.model
        self.indices = list(range(len(population))) if indices is None else [int(i) for i in indices]
        for index in self.indices:
            population.check_index(index)
        self.ids = [str(i) for i in self.indices]
        self._threads = threads
        self._simulator = None

    def responses(self, row: int, pixels: np.ndarray) -> np.ndarray:
        if self._simulator is None:
            from egis.toolkit.engine import ChipSimulator

            self._simulator = ChipSimulator(self.model, threads=self._threads)
        return self._simulator.logits(self.population.chip_weights(self.indices[row]), pixels)

    def identity(self, row: int) -> str:
        return f"population:{self.population.spec.sha256()}:{self.indices[row]}"

    def record(self) -> dict[str, Any]:
        spec = self.population.spec
        return {"kind": "population", "population_sha256": spec.sha256(), "plugin": spec.plugin,
                "params": spec.params, "seed": spec.seed, "count": spec.count, "chips": self.ids}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ExternalChipSet(ChipSet):
    """Chips the toolkit did not simulate: ONNX chip files and hardware adapters."""

    kind = "external"

    def __init__(self, model: LoadedModel, sources: Sequence[str], label: str, threads: int = 1) -> None:
        from egis.toolkit.chips import expectation

        self.model = model
        self.label = label
        self.sources = list(sources)
        self._expect = expectation(model)
        self._threads = threads
        self.ids = _readable_ids(self.sources)
        self._hashes: list[str | None] = []
        for source, chip_id in zip(self.sources, self.ids):
            if source.startswith(ADAPTER_PREFIXES):
                self._hashes.append(None)
                continue
            path = Path(source)
            if not path.is_file():
                raise DataError(f"chip {chip_id}: file not found: {source}")
            self._open(source, chip_id)     # checks I/O against the model now, names the chip
            self._hashes.append(_file_sha256(path))
        self._cache: tuple[int, Any] | None = None

    def _open(self, source: str, chip_id: str) -> Any:
        from egis.toolkit.chips import AdapterChip, OnnxChip

        try:
            if source.startswith(ADAPTER_PREFIXES):
                return AdapterChip.from_spec(source)
            return OnnxChip(source, self._expect, name=chip_id, threads=self._threads)
        except EgisError as exc:
            raise DataError(f"chip {chip_id}: {exc}") from None

    def chip(self, row: int) -> Any:
        """The chip of ``row`` (one open at a time: sessions of big models are large)."""
        if self._cache is None or self._cache[0] != row:
            self._cache = (row, self._open(self.sources[row], self.ids[row]))
        return self._cache[1]

    def responses(self, row: int, pixels: np.ndarray) -> np.ndarray:
        from egis.toolkit.chips import Stimulus

        inputs = np.ascontiguousarray(self.model.contract.normalize(pixels), dtype=np.float32)
        out = np.asarray(self.chip(row).logits(Stimulus(inputs=inputs, pixels=pixels)), dtype=np.float32)
        if out.shape != (len(pixels), self.model.num_classes):
            raise DataError(f"chip {self.ids[row]} answered {len(pixels)} images with logits of shape "
                            f"{out.shape}; expected {(len(pixels), self.model.num_classes)}")
        return out

    def identity(self, row: int) -> str:
        digest = self._hashes[row]
        return self.sources[row] if digest is None else f"sha256:{digest}"

    def record(self) -> dict[str, Any]:
        chips = []
        for chip_id, source, digest in zip(self.ids, self.sources, self._hashes):
            chips.append({"id": chip_id, "adapter": source} if digest is None
                         else {"id": chip_id, "file": Path(source).name, "sha256": digest})
        return {"kind": "external", "model_sha256": self.model.sha256, "chips": chips}


def _readable_ids(sources: Sequence[str]) -> list[str]:
    """File stems and adapter targets; made unique with their folder or adapter name."""
    def short(source: str) -> str:
        if source.startswith(ADAPTER_PREFIXES):
            return source.split(":", 2)[2] or source
        return Path(source).stem

    def longer(source: str) -> str:
        if source.startswith(ADAPTER_PREFIXES):
            return source.split(":", 1)[1]
        return str(Path(source).with_suffix("")).replace("\\", "/")

    ids = [short(s) for s in sources]
    clashes = {i for i in ids if ids.count(i) > 1}
    ids = [longer(s) if i in clashes else i for s, i in zip(sources, ids)]
    seen: set[str] = set()
    for chip_id, source in zip(ids, sources):
        if chip_id in seen:
            raise DataError(f"chip {source} is listed twice")
        seen.add(chip_id)
    return ids


def is_population_spec(ref: str | Path) -> bool:
    return str(ref).endswith(".json") and Path(ref).is_file()


def open_chip_set(ref: str | Path, model_path: str | Path | None = None, *, model: LoadedModel | None = None,
                  chips: str | None = None, threads: int | None = None) -> ChipSet:
    """The chip set ``ref`` names (see the module docstring); ``chips`` selects rows of it
    (START:STOP or N, as ``--chips`` everywhere). ``model_path``/``model``: the customer model
    (a population spec may name its own)."""
    from egis.toolkit.population import open_population, parse_chip_range

    text = str(ref)
    if is_population_spec(text):
        population = open_population(text, model if model is not None else model_path)
        return PopulationChipSet(population, parse_chip_range(chips, len(population)), threads=threads)
    if model is None:
        if model_path is None:
            raise DataError(f"chip set {text}: give the model it was made for")
        from egis.toolkit.model import load_model

        model = load_model(model_path)
    path = Path(text)
    if text.startswith(ADAPTER_PREFIXES):
        sources = [text]
    elif path.is_dir():
        sources = [str(p) for p in sorted(path.glob("*.onnx"))]
        if not sources:
            raise DataError(f"chip folder {path} holds no .onnx files")
    elif any(ch in text for ch in "*?["):
        sources = sorted(p for p in glob.glob(text) if p.endswith(".onnx"))
        if not sources:
            raise DataError(f"no chip ONNX files match {text}")
    elif path.suffix in CHIP_LIST_SUFFIXES:
        sources = read_chip_list(path)
    elif path.suffix == ".onnx":
        sources = [text]
    elif not path.exists():
        raise DataError(f"chip set not found: {text}")
    else:
        raise DataError(f"{text} is not a chip set (a population .json, a folder or glob of .onnx files, "
                        f"a chip list {'/'.join(CHIP_LIST_SUFFIXES)}, or adapter:NAME:TARGET)")
    rows = parse_chip_range(chips, len(sources))
    return ExternalChipSet(model, [sources[r] for r in rows], label=text, threads=threads or 1)
