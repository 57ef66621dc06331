"""Chip-parallel work behind one small interface, so backends can change without the commands.

Labelling, response measurement, signatures and the tester over a population all do the same
thing: for every chip index, build that chip (draw its weights: the exact correlated field,
which can cost more than the inference) and run images through it. A task
(egis.toolkit.engine.ChipTask) describes that work in a picklable way; a :class:`ChipRunner` maps it over chip indices and
yields the results **in chip order**, so every backend produces the same bytes:

The runner knows nothing of chips beyond the :class:`Task` protocol, so it sits below the
engine (which defines the task) in the import graph.

* :class:`LocalRunner` -- in this process (one session, ``threads`` onnxruntime threads);
* :class:`ProcessRunner` -- ``workers`` processes (fork), each with its own one-thread
  session; the draws then run on every core instead of one;
* :class:`RayRunner` -- chunks of chips as tasks on a Ray cluster (``--ray ADDRESS`` or
  ``$EGIS_RAY_ADDRESS``; optional extra).

``default_workers()``: ``$EGIS_WORKERS``, else 1 (the in-process runner).
"""

from __future__ import annotations

import multiprocessing
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol


from egis.toolkit.errors import EgisError

WORKERS_ENV = "EGIS_WORKERS"


def default_workers() -> int:
    """Worker processes when none are given: $EGIS_WORKERS, else 1 (this process)."""
    from egis.toolkit.runtime import positive_int_env

    return positive_int_env(WORKERS_ENV, 1)


class Task(Protocol):
    """Per-chip work: ``setup()`` once per process (sessions), ``run(index)`` per chip. Must
    pickle without its sessions (egis.toolkit.engine.ChipTask is the one the toolkit uses).
    ``run`` returns a chip's result, an array; other index-parallel work (egis.sweep's
    annealing, one setting per index) may return any picklable value."""

    def setup(self) -> None: ...

    def run(self, index: int) -> Any: ...

    def for_worker(self) -> "Task": ...


class ChipRunner(ABC):
    @abstractmethod
    def map(self, task: Task, indices: Sequence[int]) -> Iterator[tuple[int, Any]]:
        """(index, result) for every index, in the order given."""


class LocalRunner(ChipRunner):
    def map(self, task: Task, indices: Sequence[int]) -> Iterator[tuple[int, Any]]:
        for index in indices:
            yield int(index), task.run(int(index))


_WORKER_TASK: Task | None = None


def _init_worker(task: Task) -> None:
    global _WORKER_TASK
    _WORKER_TASK = task
    task.setup()


def _run_chunk(chunk: list[int]) -> list[Any]:
    assert _WORKER_TASK is not None
    return [_WORKER_TASK.run(index) for index in chunk]


class ProcessRunner(ChipRunner):
    """``workers`` forked processes; chips go out in chunks, results come back in order."""

    def __init__(self, workers: int, chunk: int = 4) -> None:
        self.workers = workers
        self.chunk = chunk

    def map(self, task: Task, indices: Sequence[int]) -> Iterator[tuple[int, Any]]:
        indices = [int(i) for i in indices]
        if len(indices) <= 1 or self.workers <= 1:
            yield from LocalRunner().map(task, indices)
            return
        worker_task = task.for_worker()
        chunks = [indices[i:i + self.chunk] for i in range(0, len(indices), self.chunk)]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker,
                                 initargs=(worker_task,)) as pool:
            # a bounded window of chunks in flight keeps memory flat and the order exact
            window = 2 * self.workers
            pending = [pool.submit(_run_chunk, c) for c in chunks[:window]]
            for position in range(len(chunks)):
                results = pending[position].result()
                if position + window < len(chunks):
                    pending.append(pool.submit(_run_chunk, chunks[position + window]))
                yield from zip(chunks[position], results)


def _ray_chunk(task: Task, chunk: list[int]) -> list[Any]:
    task.setup()
    return [task.run(index) for index in chunk]


class RayRunner(ChipRunner):
    """Chunks of chips as Ray tasks on a cluster (``address``: "auto", "ray://host:10001",
    "host:6379", or "local" to start Ray on this machine).

    The task (model, population spec, images) goes into the object store once; each chunk is a
    task that builds its own sessions and draws its chips. Results are gathered in chip order,
    so the bytes equal the local run's. A worker killed mid-chunk makes Ray run that chunk
    again (``max_retries``); a chunk's result is taken exactly once, so nothing is lost or
    duplicated. Needs the optional extra ``egis-toolkit[ray]``; every worker needs
    egis-toolkit installed (same version) and nothing else from this machine.
    """

    def __init__(self, address: str = "auto", chunk: int = 4, max_retries: int = 3,
                 num_cpus: int | None = None) -> None:
        self.address = address
        self.chunk = chunk
        self.max_retries = max_retries
        self.num_cpus = num_cpus

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise EgisError("the Ray backend needs Ray: EGIS_EXTRAS=ray bash scripts/install.sh "
                            "(or pip install 'egis-toolkit[ray]')") from None
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
            try:
                if self.address == "local":
                    ray.init(num_cpus=self.num_cpus, **kwargs)
                else:
                    ray.init(address=self.address, **kwargs)
            except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ...
                raise EgisError(f"cannot reach the Ray cluster at {self.address!r}: "
                                f"{str(exc).splitlines()[0][:200]}") from None
        return ray

    def map(self, task: Task, indices: Sequence[int]) -> Iterator[tuple[int, Any]]:
        ray = self._ray()
        indices = [int(i) for i in indices]
        chunks = [indices[i:i + self.chunk] for i in range(0, len(indices), self.chunk)]
        remote = ray.remote(max_retries=self.max_retries, num_cpus=1)(_ray_chunk)
        shared = ray.put(task.for_worker())
        window = max(2, 2 * int(ray.cluster_resources().get("CPU", 2)))
        pending = [remote.remote(shared, c) for c in chunks[:window]]
        for position in range(len(chunks)):
            results = ray.get(pending[position])
            pending[position] = None          # let the object store drop it
            if position + window < len(chunks):
                pending.append(remote.remote(shared, chunks[position + window]))
            yield from zip(chunks[position], results)


RAY_ENV = "EGIS_RAY_ADDRESS"


def get_runner(workers: "int | ChipRunner | None" = None, ray: str | None = None, chunk: int = 4) -> ChipRunner:
    """``ray`` (or $EGIS_RAY_ADDRESS): the Ray backend; else ``workers`` (or $EGIS_WORKERS)
    processes on this machine; else this process. A runner passed as ``workers`` is returned.
    ``chunk``: indices sent out together (long, uneven tasks want 1)."""
    if isinstance(workers, ChipRunner):
        return workers
    address = ray or os.environ.get(RAY_ENV, "").strip() or None
    if address:
        return RayRunner(address, chunk=chunk, num_cpus=workers)
    workers = default_workers() if workers is None else workers
    return LocalRunner() if workers <= 1 else ProcessRunner(workers, chunk=chunk)
