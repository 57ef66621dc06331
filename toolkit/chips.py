"""Chips the tester can judge: anything that turns the K stimulus images into logits (K, M).

* :class:`OnnxChip` -- an ONNX model of one chip: a simulated chip from ``egis duts export``
  or a behavioural model of a real one. Its input/output names and shapes are checked
  against the bundle's manifest before it is used.
* :class:`AdapterChip` -- a vendor's hardware adapter, ``adapter:NAME:TARGET`` (or the older
  ``plugin:NAME:TARGET``) on the command line: ``egis.toolkit.registry.load_adapter``; it
  takes pixels.
* :class:`PopulationChips` -- chips of a population spec, simulated on ONE shared
  onnxruntime session with the weights as inputs (toolkit.engine).

Only the ONNX-file path is imported eagerly; plugins and the population machinery are
imported on first use, so ``egis test BUNDLE chip.onnx`` stays light (onnx, onnxruntime,
numpy).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from egis.toolkit.errors import BundleError
from egis.toolkit.runtime import session_options


@dataclass(frozen=True)
class Stimulus:
    """The K test images: ``inputs`` as fed to a chip's input, ``pixels`` in the pixel domain."""

    inputs: np.ndarray
    pixels: np.ndarray


class Chip(Protocol):
    name: str

    def logits(self, stimulus: Stimulus) -> np.ndarray:
        """Logits (K, M) of this chip on the K stimulus images, in stimulus order."""
        ...


def check_external_data(path: Path, name: str) -> None:
    """Refuse a chip file whose external weight data is missing or lies outside its folder."""
    import onnx

    from egis.toolkit.onnx_files import external_data_problem

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError:
        raise BundleError(f"chip file not found: {name}") from None
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError and friends
        raise BundleError(f"chip {name} is not an ONNX model ({type(exc).__name__})") from None
    problem = external_data_problem(proto, path.parent)
    if problem:
        raise BundleError(f"chip {name}: {problem}; refused")


def _dim_text(dims: Sequence[Any]) -> str:
    return "(" + ", ".join(str(d) if isinstance(d, int) else "?" for d in dims) + ")"


class OnnxChip:
    """One chip given as an ONNX file (or bytes); one onnxruntime session per chip."""

    def __init__(self, source: str | os.PathLike | bytes, manifest: dict[str, Any], name: str | None = None,
                 threads: int = 1) -> None:
        import onnxruntime as ort

        self.name = name or (str(source) if not isinstance(source, bytes) else "chip")
        model = manifest["model"]
        self._input = str(model["input_name"])
        self._output = str(model["output_name"])
        self._m = int(manifest["m"])
        if not isinstance(source, bytes):
            # by path, so onnxruntime finds weights kept in external data files next to it
            check_external_data(Path(source), self.name)
            source = str(source)
        try:
            self._session = ort.InferenceSession(source, session_options(threads),
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several private types
            raise BundleError(f"chip {self.name} is not a runnable ONNX model: "
                              f"{str(exc).splitlines()[0][:200]}") from None
        self._check_identity(str(model["sha256"]))
        self._batch = self._check_io(manifest)

    def _check_identity(self, model_sha256: str) -> None:
        """A chip exported by egis records the model it was made from; it must be the bundle's."""
        meta = self._session.get_modelmeta().custom_metadata_map.get("egis.chip")
        if not meta:
            return
        try:
            made_from = json.loads(meta).get("model_sha256")
        except (ValueError, AttributeError):
            raise BundleError(f"chip {self.name} has a damaged egis.chip metadata entry") from None
        if made_from and made_from != model_sha256:
            raise BundleError(f"chip {self.name} was made from model {made_from[:12]}..., not the model "
                              f"this bundle was made for ({model_sha256[:12]}...)")

    def _check_io(self, manifest: dict[str, Any]) -> int | None:
        """Names/shapes vs the manifest; returns the chip's fixed batch size (None: free)."""
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        if self._input not in inputs:
            raise BundleError(f"chip {self.name} has no input '{self._input}' (it has "
                              f"{', '.join(inputs) or 'none'}); the bundle was made for another model")
        if self._output not in outputs:
            raise BundleError(f"chip {self.name} has no output '{self._output}' (it has "
                              f"{', '.join(outputs)}); the bundle was made for another model")
        expected = list(manifest["stimulus"]["inputs_shape"])[1:]
        dims = list(inputs[self._input].shape)
        if inputs[self._input].type != "tensor(float)":
            raise BundleError(f"chip {self.name} input '{self._input}' is {inputs[self._input].type}, "
                              "expected tensor(float)")
        if len(dims) != len(expected) + 1 or any(
                isinstance(d, int) and d != e for d, e in zip(dims[1:], expected)):
            raise BundleError(f"chip {self.name} input '{self._input}' has shape {_dim_text(dims)}; "
                              f"the bundle's images are {_dim_text(['n', *expected])}")
        out_dims = list(outputs[self._output].shape)
        if out_dims and isinstance(out_dims[-1], int) and out_dims[-1] != self._m:
            raise BundleError(f"chip {self.name} output '{self._output}' has {out_dims[-1]} classes; "
                              f"the bundle expects {self._m}")
        return dims[0] if isinstance(dims[0], int) and dims[0] > 0 else None

    def logits(self, stimulus: Stimulus) -> np.ndarray:
        """Logits (n, M); a chip with a fixed batch gets the images in chunks of that size, the
        last one padded with copies of its final image (their answers are dropped)."""
        x = stimulus.inputs
        step = self._batch or max(1, len(x))
        parts = []
        for i in range(0, len(x), step):
            chunk = x[i:i + step]
            short = step - len(chunk) if self._batch else 0
            if short:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], short, axis=0)])
            out = np.asarray(self._session.run([self._output], {self._input: chunk})[0])
            parts.append(out.reshape(len(chunk), -1)[:len(chunk) - short])
        return np.concatenate(parts).reshape(len(x), -1)


class AdapterChip:
    """A vendor hardware adapter (``ChipAdapter.run(pixels) -> logits``) behind the Chip API."""

    def __init__(self, adapter: Any, name: str) -> None:
        self.adapter = adapter
        self.name = name

    @classmethod
    def from_spec(cls, spec: str) -> "AdapterChip":
        """``adapter:NAME:TARGET`` / ``plugin:NAME:TARGET`` -> adapter NAME for chip TARGET."""
        from egis.toolkit.errors import PluginError
        from egis.toolkit.registry import load_adapter, parse_chip_adapter

        try:
            parsed = parse_chip_adapter(spec)
            if parsed is None:
                raise BundleError(f"chip '{spec}' is not adapter:NAME:TARGET")
            return cls(load_adapter(*parsed), spec)
        except PluginError as exc:
            raise BundleError(str(exc)) from None

    def logits(self, stimulus: Stimulus) -> np.ndarray:
        out = np.asarray(self.adapter.run(stimulus.pixels), dtype=np.float32)
        count = len(stimulus.pixels)
        if out.size % count:  # flat (K*M,) answers are fine; anything else is the adapter's fault
            raise BundleError(f"chip {self.name} returned {out.size} logits for {count} images")
        return out.reshape(count, -1)


class PopulationChip:
    """Chip ``index`` of a population, run on the shared simulator session of its owner."""

    def __init__(self, owner: "PopulationChips", index: int) -> None:
        self.owner = owner
        self.index = index
        self.name = f"{owner.label}#{index}"

    def logits(self, stimulus: Stimulus) -> np.ndarray:
        return self.owner.logits(self.index, stimulus)


class PopulationChips:
    """Chips ``indices`` of a population spec, simulated with one ChipSimulator session."""

    def __init__(self, population_path: str | os.PathLike, model_path: str | os.PathLike | None,
                 manifest: dict[str, Any], indices: Sequence[int] | None = None,
                 threads: int | None = None) -> None:
        from egis.toolkit.engine import ChipSimulator
        from egis.toolkit.population import open_population, resolve_model_path

        self.population = open_population(population_path, model_path)
        model = self.population.model
        if model.sha256 != manifest["model"]["sha256"]:
            model_path = resolve_model_path(self.population.spec, population_path, model_path)
            raise BundleError(f"model {model_path} (sha256 {model.sha256[:12]}...) is not the model "
                              f"this bundle was made for ({manifest['model']['sha256'][:12]}...)")
        self.simulator = ChipSimulator(model, threads=threads)
        self.label = Path(population_path).name
        self._prefetched: dict[int, np.ndarray] | None = None
        self.indices = list(range(len(self.population))) if indices is None else list(indices)
        for index in self.indices:
            self.population.check_index(index)

    def logits(self, index: int, stimulus: Stimulus) -> np.ndarray:
        if self._prefetched is not None and index in self._prefetched:
            return self._prefetched[index]
        return self.simulator.logits_normalized(self.population.chip_weights(index), stimulus.inputs)

    def prefetch(self, stimulus: Stimulus, runner: Any, progress: bool = True) -> None:
        """Simulate every chip on the stimulus up front through a chip runner (worker processes
        or a Ray cluster, egis.toolkit.runner); the tester then only judges."""
        from egis.toolkit.engine import ChipTask
        from egis.toolkit.progress import progress_iter

        task = ChipTask(self.population, stimulus.pixels, threads=1, inputs=stimulus.inputs)
        results = runner.map(task, self.indices)
        self._prefetched = dict(progress_iter(results, len(self.indices), "simulating chips", progress))

    def __iter__(self) -> Iterator[PopulationChip]:
        return (PopulationChip(self, i) for i in self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def expectation(model: Any) -> dict[str, Any]:
    """The manifest fields OnnxChip checks a chip file against, built from a loaded customer
    model (egis.toolkit.model.LoadedModel) rather than a bundle: for measuring and labelling
    chips that no bundle exists for yet."""
    return {"model": {"sha256": model.sha256, "input_name": model.input_name,
                      "output_name": model.output_name},
            "m": int(model.num_classes),
            "stimulus": {"inputs_shape": [None, *model.contract.image_shape]}}


CHIP_LIST_SUFFIXES = (".txt", ".chips", ".list")
ADAPTER_PREFIXES = ("adapter:", "plugin:")


def read_chip_list(path: Path) -> list[str]:
    """Chip references of a chip-list file; ONNX paths relative to the list's folder."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"cannot read chip list {path}: {exc}") from None
    refs = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        text = re.split(r"\s#", text, maxsplit=1)[0].strip()   # a trailing " # comment"
        if text.startswith(ADAPTER_PREFIXES):
            refs.append(text)
        elif text.endswith(".onnx"):
            refs.append(str((path.parent / text) if not Path(text).is_absolute() else Path(text)))
        else:
            raise BundleError(f"{path}:{number}: '{text}' is neither an ONNX file nor adapter:NAME:TARGET")
    if not refs:
        raise BundleError(f"chip list {path} names no chips")
    return refs


def expand_chip_refs(arg: str) -> list[str]:
    """One CHIP argument -> chip references: a folder (its *.onnx, sorted), a glob, a chip
    list file, or the argument itself (an ONNX file or adapter:NAME:TARGET)."""
    import glob as globbing

    if arg.startswith(ADAPTER_PREFIXES):
        return [arg]
    path = Path(arg)
    if path.is_dir():
        found = [str(p) for p in sorted(path.glob("*.onnx"))]
        if not found:
            raise BundleError(f"chip folder {arg} holds no .onnx files")
        return found
    if any(ch in arg for ch in "*?[") and not path.exists():
        found = sorted(p for p in globbing.glob(arg) if p.endswith(".onnx"))
        if not found:
            raise BundleError(f"no chip ONNX files match {arg}")
        return found
    if path.suffix in CHIP_LIST_SUFFIXES:
        return read_chip_list(path)
    return [arg]


def open_chip(spec: str, manifest: dict[str, Any], threads: int = 1) -> Chip:
    """A chip from a command-line argument: ``adapter:NAME:TARGET`` or an ONNX file path."""
    if spec.startswith(("adapter:", "plugin:")):
        return AdapterChip.from_spec(spec)
    if not Path(spec).exists():
        raise BundleError(f"chip file not found: {spec}")
    return OnnxChip(spec, manifest, name=spec, threads=threads)


__all__ = ["AdapterChip", "Chip", "OnnxChip", "PopulationChip", "PopulationChips",
           "Stimulus", "expand_chip_refs", "expectation", "open_chip", "read_chip_list"]
