"""Small file helpers shared by every writer: atomic writes and content hashes.

Every artifact is written to a temporary sibling and moved into place with os.replace, so a
crash or Ctrl-C never leaves a half-written file where a reader expects a complete one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the artifact the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[BinaryIO]:
    """Open a temporary sibling of ``path`` for writing; it replaces ``path`` on success."""
    with atomic_path(path) as tmp, open(tmp, mode, newline="" if "b" not in mode else None) as handle:
        yield handle


def write_json(path: str | os.PathLike, data: Any) -> None:
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write an uncompressed .npz (no pickled objects allowed) atomically."""
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_directory(directory: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``directory``; it becomes ``directory`` on success.

    Readers never see a half-written directory: a failure removes the staging directory,
    and an existing ``directory`` is replaced only once the new one is complete. The staging
    directory gets the permissions a plain mkdir would give (mkdtemp makes it 0700).
    Used for bundles, handoffs and SID directories.
    """
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
        yield staging
        _replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _replace_directory(staging: Path, target: Path) -> None:
    """Move ``staging`` onto ``target``; an existing target is moved aside first (rename(2)
    cannot replace a non-empty directory), put back if the swap fails, and removed only
    after the swap."""
    if not target.exists():
        os.replace(staging, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rmdir(old)
    os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------ output paths, checked first
def _check_parents(path: Path) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                from egis.toolkit.errors import DataError

                raise DataError(f"cannot write {path}: {parent} is a file, not a folder")
            return


def check_output_file(path: str | os.PathLike) -> Path:
    """Fail before any work when ``path`` cannot become a file (it is a folder, or a parent
    is a file). Commands call this for every output before the first chip is simulated."""
    from egis.toolkit.errors import DataError

    p = Path(path)
    if p.is_dir():
        raise DataError(f"{p} is a folder; give the path of a file to write")
    _check_parents(p)
    return p


def check_output_dir(path: str | os.PathLike) -> Path:
    """Fail before any work when ``path`` cannot become a folder."""
    from egis.toolkit.errors import DataError

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise DataError(f"{p} exists and is not a folder")
    _check_parents(p)
    return p


@contextlib.contextmanager
def removed_on_failure(path: str | os.PathLike) -> Iterator[Path]:
    """Yield ``path``; if it did not exist before and the block fails (or is interrupted),
    remove whatever the block created there, so a failed command leaves nothing new behind.
    An existing ``path`` is left alone (its files are each written atomically)."""
    p = Path(path)
    fresh = not p.exists()
    try:
        yield p
    except BaseException:
        if fresh and p.exists():
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        raise
