"""Runtime options of every onnxruntime session the toolkit opens: one helper, one default.

Chip, detector, stimulus and simulator sessions are tuned alike: a fixed thread count, all
graph optimisations, and warnings off (onnxruntime's are about the model, not the user's
input). Tester-path code passes its thread count explicitly (the tester runs many short
sessions; oversubscribing busy cores only adds jitter); simulation code takes
:func:`default_threads`. Needs onnxruntime only, so the tester path stays light.
"""

from __future__ import annotations

import os
from typing import Any

from egis.toolkit.errors import EgisError

THREADS_ENV = "EGIS_THREADS"


def default_threads() -> int:
    """Simulation threads when none are given: $EGIS_THREADS, else up to 2.

    The environment variable exists for running several jobs side by side on few cores:
    onnxruntime's worker threads spin while they wait, so two 2-thread jobs on 2 cores burn
    most of their time waiting on each other; give each job EGIS_THREADS=1 instead.
    """
    return positive_int_env(THREADS_ENV, min(2, os.cpu_count() or 1))


def positive_int_env(name: str, default: int) -> int:
    """``$name`` as a positive integer, ``default`` when unset; EgisError otherwise."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise EgisError(f"{name} must be a positive integer, got {value!r}")
    return number


_shared_arena_registered = False


def _register_shared_arena() -> None:
    """Register one CPU arena allocator with onnxruntime's environment, once per process."""
    global _shared_arena_registered
    if _shared_arena_registered:
        return
    import onnxruntime as ort  # noqa: PLC0415

    info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, -1, -1, -1))
    _shared_arena_registered = True


def session_options(threads: int | None = None, shared_arena: bool = False) -> Any:
    """``onnxruntime.SessionOptions`` with ``threads`` intra-op threads (default_threads() if None).

    ``shared_arena``: the session takes its memory from one arena shared by every such
    session of the process instead of an arena of its own. For short-lived sessions that each
    run once (the engine's per-chip sessions) this is the difference between warm memory and
    page-faulting hundreds of MB of fresh activations per session: measured 1.2-1.5x on the
    shipped CIFAR models at 1000 images per chip (docs/performance.md). Allocation only: the
    arithmetic, hence every logit, is the same. The price: the shared arena keeps the largest
    activations any such session needed until the process ends (a worker process of a
    runner holds its peak memory between tasks).
    """
    import onnxruntime as ort  # noqa: PLC0415 - keep `import egis.toolkit.runtime` cheap

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if shared_arena:
        _register_shared_arena()
        options.add_session_config_entry("session.use_env_allocators", "1")
    return options
