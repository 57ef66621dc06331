"""Responses as an artifact of their own: N images through every chip of a chip set.

``measure`` writes, in its output folder:

* ``responses.npy`` -- float32 (D, N, M), memory-mapped; a row of NaN for an excluded chip;
* ``responses.json`` -- provenance: chip ids, each chip's status (``ok`` or why it was
  excluded), the chip set's record and sha256, the images' and the model's sha256;
* ``timings.json`` -- seconds per chip (wall clock, kept apart so the other two files are the
  same bytes for the same inputs).

On hardware this runs for hours and chips fail. Progress is kept chip by chip (the partial
array and a partial JSON, rewritten after every chip), so an interrupted run resumes where it
stopped and ends with the same bytes as an uninterrupted one. A chip that raises, times out
or answers with the wrong shape is reported through ``on_excluded`` and excluded -- never
silently; if every chip fails, :class:`MeasureError` is raised.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from egis.toolkit.chipset import ChipSet
from egis.toolkit.errors import DataError, EgisError
from egis.toolkit.io import read_json, write_json
from egis.toolkit.progress import progress_bar

FORMAT_VERSION = 1
RESPONSES = "responses.npy"
PROVENANCE = "responses.json"
TIMINGS = "timings.json"
PARTIAL_NPY = ".responses.partial.npy"
PARTIAL_JSON = ".responses.partial.json"
OK = "ok"


class MeasureError(EgisError):
    """The measurement cannot go on (every chip failed, a folder of another run)."""


@dataclass
class Responses:
    """A finished measurement: logits (D, N, M) and what they are."""

    logits: np.ndarray
    meta: dict[str, Any]

    @property
    def chip_ids(self) -> list[str]:
        return list(self.meta["chip_ids"])

    @property
    def ok_ids(self) -> list[str]:
        return [cid for cid, status in zip(self.meta["chip_ids"], self.meta["status"]) if status == OK]

    def rows_of(self, ids: list[str]) -> list[int]:
        index = {cid: row for row, cid in enumerate(self.meta["chip_ids"])}
        missing = [cid for cid in ids if cid not in index]
        if missing:
            raise DataError(f"chip '{missing[0]}' has no responses in this measurement")
        bad = [cid for cid in ids if self.meta["status"][index[cid]] != OK]
        if bad:
            raise DataError(f"chip '{bad[0]}' was excluded from the measurement "
                            f"({self.meta['status'][index[bad[0]]]})")
        return [index[cid] for cid in ids]


def _run_with_timeout(fn: Callable[[], np.ndarray], timeout: float | None) -> np.ndarray:
    if not timeout:
        return fn()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = pool.submit(fn)
    try:
        return future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        raise TimeoutError(f"no answer within {timeout:g} s") from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def measure(chip_set: ChipSet, pixels: np.ndarray, out_dir: str | os.PathLike, *, images_sha256: str,
            timeout: float | None = None, progress: bool = True,
            on_excluded: Callable[[str, str], None] | None = None) -> Responses:
    """Measure (or resume measuring) ``chip_set`` on ``pixels`` into ``out_dir``."""
    out = Path(out_dir)
    shape = (len(chip_set), len(pixels), chip_set.model.num_classes)
    key = {"format_version": FORMAT_VERSION, "model_sha256": chip_set.model.sha256,
           "images_sha256": images_sha256, "image_count": int(len(pixels)),
           "chip_set": chip_set.record(), "chip_set_sha256": chip_set.sha256(),
           "chip_ids": list(chip_set.ids), "identities": chip_set.identities(),
           "shape": list(shape), "dtype": "float32",
           "layout": "chips x images x logits"}
    if (out / PROVENANCE).exists():
        done = load_responses(out)
        if {k: v for k, v in done.meta.items() if k != "status"} == key:
            return done
        raise MeasureError(f"{out} holds responses of another measurement; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    partial_npy, partial_json = out / PARTIAL_NPY, out / PARTIAL_JSON
    state = read_json(partial_json) if partial_json.exists() else None
    if state is not None and state.get("key") == key and partial_npy.exists():
        logits = np.load(partial_npy, mmap_mode="r+")
        status, seconds = list(state["status"]), list(state["seconds"])
    else:
        logits = np.lib.format.open_memmap(partial_npy, mode="w+", dtype=np.float32, shape=shape)
        status, seconds = [], []
    start = len(status)
    with progress_bar("measuring chips", total=len(chip_set), enabled=progress) as update:
        update(completed=start)
        for row in range(start, len(chip_set)):
            began = time.perf_counter()
            try:
                answer = _run_with_timeout(lambda: chip_set.responses(row, pixels), timeout)
                answer = np.asarray(answer, dtype=np.float32)
                if answer.shape != shape[1:]:
                    raise DataError(f"answered with shape {answer.shape}, expected {shape[1:]}")
                if not np.isfinite(answer).all():
                    raise DataError("answered with NaN/Inf logits")
                logits[row] = answer
                status.append(OK)
            except Exception as exc:  # noqa: BLE001 - hardware and vendor code fail any way
                logits[row] = np.nan
                reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
                status.append(f"excluded: {reason}")
                if on_excluded is not None:
                    on_excluded(chip_set.ids[row], reason)
            seconds.append(round(time.perf_counter() - began, 4))
            logits.flush()
            write_json(partial_json, {"key": key, "status": status, "seconds": seconds})
            update(advance=1)
    if OK not in status:
        raise MeasureError(f"every chip of {len(chip_set)} failed to answer; first: {status[0]}")
    del logits
    write_json(out / TIMINGS, {"seconds_per_chip": dict(zip(chip_set.ids, seconds)),
                               "mean_seconds_per_chip": float(np.mean(seconds))})
    os.replace(partial_npy, out / RESPONSES)
    write_json(out / PROVENANCE, {**key, "status": status})
    partial_json.unlink(missing_ok=True)
    return load_responses(out)


def is_responses_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / PROVENANCE).is_file()


def load_responses(out_dir: str | os.PathLike) -> Responses:
    """A finished measurement, checked for consistency (shape, ids, status)."""
    out = Path(out_dir)
    try:
        meta = read_json(out / PROVENANCE)
        logits = np.load(out / RESPONSES, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError as exc:
        raise DataError(f"{out} is not a finished measurement ({Path(exc.filename).name} is missing)") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{out} holds damaged responses ({exc})") from None
    ok = (isinstance(meta, dict) and meta.get("format_version") == FORMAT_VERSION
          and isinstance(meta.get("chip_ids"), list) and isinstance(meta.get("status"), list)
          and len(meta["chip_ids"]) == len(meta["status"]) and list(logits.shape) == meta.get("shape"))
    if not ok or logits.dtype != np.float32:
        raise DataError(f"{out / PROVENANCE} does not describe {out / RESPONSES}")
    return Responses(logits, meta)

