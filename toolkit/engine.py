"""Chip simulation engine: logits of many chips on many images, on onnxruntime.

Two ways to run a chip, chosen per call by the number of images (``mode="auto"``):

* ``inputs``: ONE session whose crossbar weights are graph inputs serves every chip. No
  per-chip setup, but onnxruntime cannot prepack weights it only sees at run time: measured
  0.29-0.61x of the fixed-weight session at 1000-10,000 images (docs/performance.md). Used
  below BAKED_MIN_IMAGES images per call (a tester's K images).
* ``baked``: a fresh session per chip with the chip's weights as initializers, exactly the
  standalone chip file's graph (so the same logits, bit for bit). Costs one graph
  optimisation and prepacking per chip (a few ms) and then runs at the fixed-weight speed.
  Every per-chip session takes its memory from one arena shared by the process
  (runtime.session_options(shared_arena=True)): a session of its own would page-fault its
  activations afresh for every chip, measured 0.08-0.14 s per chip at 1000 images on the
  shipped CIFAR models (1.2-1.5x the fixed-weight session's time).

``auto`` bakes from ``BAKED_MIN_IMAGES`` images per call on: a fixed rule, never a timing, so
the same call always gives the same bytes. Images are normalised once, not per chip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from egis.toolkit.errors import DataError
from egis.toolkit.model import LoadedModel, nominal_weights
from egis.toolkit.progress import progress_iter
from egis.toolkit.runtime import session_options

DEFAULT_BATCH = 1024
MODES = ("auto", "inputs", "baked")
# From 16 images per call a baked session was never slower than weights as inputs on the four
# bench models (VGG16, MobileNet, NHWC MatMul, fixed batch 1: equal at 16 images on three, 1.2-2.8x
# faster from 64 on; bench/bench_engine.py --images 16,64,256,1000,10000, docs/performance.md).
# Fewer images were not measured and keep the one shared session.
BAKED_MIN_IMAGES = 16


def _free_batch(proto: onnx.ModelProto) -> None:
    """Make the first input's and every output's batch dimension symbolic, in place."""
    graph = proto.graph
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    for out in graph.output:
        if out.type.tensor_type.shape.dim:
            out.type.tensor_type.shape.dim[0].dim_param = "batch"


def _weights_as_inputs(model: LoadedModel, dynamic_batch: bool) -> onnx.ModelProto:
    """Copy of the model whose crossbar initializers are graph inputs instead of constants."""
    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto)
    graph = proto.graph
    names = {layer.name for layer in model.layers}
    kept = [init for init in graph.initializer if init.name not in names]
    moved = [init for init in graph.initializer if init.name in names]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    # ir_version >= 4 requires that initializers are not listed as inputs; drop stale entries.
    stale = [inp for inp in graph.input if inp.name in names]
    for inp in stale:
        graph.input.remove(inp)
    for init in moved:
        graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    if dynamic_batch:
        _free_batch(proto)
    return proto


class _BakedSessions:
    """Per-chip sessions from one template graph whose crossbar initializers are overwritten
    with each chip's weights (raw bytes), so nothing but the weights is rebuilt per chip."""

    def __init__(self, model: LoadedModel, threads: int | None, dynamic_batch: bool) -> None:
        self._proto = onnx.ModelProto()
        self._proto.CopyFrom(model.proto)
        if dynamic_batch:
            _free_batch(self._proto)
        names = {layer.name for layer in model.layers}
        self._inits = {init.name: init for init in self._proto.graph.initializer if init.name in names}
        self._dtypes = {name: onnx.helper.tensor_dtype_to_np_dtype(init.data_type)
                        for name, init in self._inits.items()}
        self._threads = threads

    def session(self, weights: dict[str, np.ndarray]) -> ort.InferenceSession:
        for name, init in self._inits.items():
            tensor = np.ascontiguousarray(weights[name], dtype=self._dtypes[name])
            if tuple(tensor.shape) != tuple(init.dims):
                raise DataError(f"weights of {name} have shape {tensor.shape}, the graph {tuple(init.dims)}")
            for stale in ("float_data", "double_data", "external_data"):
                init.ClearField(stale)
            init.data_location = onnx.TensorProto.DEFAULT
            init.raw_data = tensor.tobytes()
        return ort.InferenceSession(self._proto.SerializeToString(),
                                    session_options(self._threads, shared_arena=True),
                                    providers=["CPUExecutionProvider"])


class ChipSimulator:
    """Runs any chip of a model (given its weight tensors) on a batch of pixel-domain images."""

    def __init__(self, model: LoadedModel, threads: int | None = None,
                 batch: int = DEFAULT_BATCH, mode: str = "auto") -> None:
        if mode not in MODES:
            raise ValueError(f"engine mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.model = model
        self.batch = batch
        self.mode = mode
        self._input_name = model.input_name
        self._output_name = model.output_name
        self._batch_limit = None
        if model.fixed_batch is not None:
            # Old exports fix the batch (often 1). Most graphs (Flatten+Gemm) still work with a
            # free batch; we check that once against the fixed-batch graph and fall back to
            # feeding images one batch-size at a time if it does not.
            self._session = self._make_session(threads, dynamic_batch=True)
            if not self._dynamic_batch_agrees(threads):
                self._session = self._make_session(threads, dynamic_batch=False)
                self._batch_limit = model.fixed_batch
        else:
            self._session = self._make_session(threads, dynamic_batch=False)
        self._threads = threads
        self._baked: _BakedSessions | None = None   # built on the first baked call

    def _make_session(self, threads: int | None, dynamic_batch: bool) -> ort.InferenceSession:
        proto = _weights_as_inputs(self.model, dynamic_batch)
        return ort.InferenceSession(proto.SerializeToString(), session_options(threads),
                                    providers=["CPUExecutionProvider"])

    def _dynamic_batch_agrees(self, threads: int | None) -> bool:
        fixed = self.model.fixed_batch or 1
        probe = np.random.default_rng(0).random((fixed + 1, *self.model.contract.image_shape),
                                                dtype=np.float32)
        x = self.model.contract.normalize(probe)
        nominal = self.nominal_weights()
        try:
            together = self._run(nominal, x)
        except Exception:  # noqa: BLE001 - any runtime failure means "batch is really fixed"
            return False
        reference = ort.InferenceSession(self.model.proto.SerializeToString(), session_options(threads),
                                         providers=["CPUExecutionProvider"])
        parts = [reference.run([self._output_name], {self._input_name: x[i:i + fixed]})[0]
                 for i in range(0, len(x) - fixed + 1, fixed)]
        alone = np.concatenate(parts)
        return together.shape[0] >= alone.shape[0] and np.allclose(
            together[:len(alone)], alone, rtol=1e-4, atol=1e-5)

    def nominal_weights(self) -> dict[str, np.ndarray]:
        return nominal_weights(self.model)

    def _run(self, weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        feeds = dict(weights)
        feeds[self._input_name] = x
        return self._session.run([self._output_name], feeds)[0]

    def bakes(self, images: int) -> bool:
        """Whether a call on ``images`` images runs on a per-chip baked session."""
        return self.mode == "baked" or (self.mode == "auto" and images >= BAKED_MIN_IMAGES)

    def logits_normalized(self, weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        """Logits for inputs already normalised into the model's input tensor."""
        step = self._batch_limit or self.batch
        if self._batch_limit is not None and len(x) % step:
            raise DataError(f"this model has a fixed batch of {step}; image count {len(x)} is not a multiple")
        if self.bakes(len(x)):
            if self._baked is None:   # free the batch exactly where the inputs session could
                self._baked = _BakedSessions(self.model, self._threads, dynamic_batch=(
                    self.model.fixed_batch is not None and self._batch_limit is None))
            session = self._baked.session(weights)
            parts = [session.run([self._output_name], {self._input_name: x[i:i + step]})[0]
                     for i in range(0, len(x), step)]
        else:
            parts = [self._run(weights, x[i:i + step]) for i in range(0, len(x), step)]
        out = np.concatenate(parts) if parts else np.zeros((0, self.model.num_classes), np.float32)
        return out.reshape(len(x), -1).astype(np.float32, copy=False)

    def logits(self, weights: dict[str, np.ndarray], pixels: np.ndarray) -> np.ndarray:
        """Logits (n, M) of the chip with ``weights`` on pixel-domain images in model layout."""
        return self.logits_normalized(weights, self.prepare(pixels))

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        expected = tuple(self.model.contract.image_shape)
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != expected:
            raise DataError(f"images have shape {tuple(pixels.shape[1:])} per image; "
                            f"the model expects {expected}")
        return np.ascontiguousarray(self.model.contract.normalize(pixels), dtype=np.float32)


@dataclass
class ChipTask:
    """Logits of chips of one population on fixed images; everything a worker needs."""

    population: Any                    # egis.toolkit.population.Population (picklable)
    pixels: np.ndarray                 # pixel-domain images in model layout
    threads: int | None = None         # onnxruntime threads per session
    mode: str = "auto"                 # ChipSimulator mode (MODES)
    # the model-input tensor of ``pixels`` when the caller already has it bit-exact (a bundle's
    # stored stimulus); None: normalised here from ``pixels``
    inputs: np.ndarray | None = None
    _state: Any = field(default=None, repr=False, compare=False)

    def setup(self) -> None:
        simulator = ChipSimulator(self.population.model, threads=self.threads, mode=self.mode)
        x = simulator.prepare(self.pixels) if self.inputs is None else self.inputs
        self._state = (simulator, x)

    def run(self, index: int) -> np.ndarray:
        if self._state is None:
            self.setup()
        simulator, x = self._state
        return simulator.logits_normalized(self.population.chip_weights(index), x)

    def for_worker(self) -> "ChipTask":
        """The task a worker process runs: one onnxruntime thread unless told otherwise."""
        return ChipTask(self.population, self.pixels, threads=1 if self.threads is None else self.threads,
                        mode=self.mode, inputs=self.inputs)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_state"] = None            # sessions never travel; each worker builds its own
        return state


def population_logits(population, pixels: np.ndarray, chips: Sequence[int] | None = None,
                      progress: bool = True, threads: int | None = None,
                      out: np.ndarray | None = None, workers: int | None = None,
                      mode: str = "auto") -> np.ndarray:
    """Logits of ``chips`` (default: all) on ``pixels``: an array (chips, images, M), float32.

    ``out`` may be a preallocated (e.g. memory-mapped) array, so large signature caches never
    need to fit in memory twice. ``workers`` > 1 (default ``$EGIS_WORKERS``) spreads the chips
    over processes (egis.toolkit.runner); rows come back in chip order either way.
    """
    from egis.toolkit.runner import get_runner

    chips = list(range(len(population))) if chips is None else list(chips)
    shape = (len(chips), len(pixels), population.model.num_classes)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, expected {shape}")
    task = ChipTask(population, pixels, threads, mode=mode)
    task.setup()            # checks the images against the model before any worker starts
    results = get_runner(workers).map(task, chips)
    for row, (_, logits) in enumerate(progress_iter(results, len(chips), "simulating chips", progress)):
        out[row] = logits
    return out
