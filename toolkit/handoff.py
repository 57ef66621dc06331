"""The customer-to-fab handoff: one verified package instead of loose files.

Written by the customer (``egis handoff``), read by every fab command in place of MODEL (and
of CHIPS and LABELS where the package holds them). A handoff folder holds:

* ``model.onnx`` -- the customer's model with its input contract (layout, pixel range,
  mean/std) stored in ``metadata_props``, so no fab command can get it wrong;
* ``labels.csv`` + ``labels.json`` -- pass/fail of the labelled chips, re-bound to this model
  (and to ``population.json``); the accuracy column only in an opted-in evaluation copy;
* ``population.json`` (simulated chips: the spec, re-bound to ``model.onnx``) or
  ``chips.json`` (other chips: each labelled chip's id and identity -- file sha256, adapter);
* ``handoff.json`` -- format and tool version, the sha256 of every file, what the package
  contains and what it deliberately does not (no images, no customer data), the contract
  check that was run; optionally ``signature.json`` (egis.toolkit.signing).

:func:`open_handoff` verifies every hash before anything is used and refuses a tampered,
incomplete or foreign package with one line naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egis.toolkit.errors import DataError

MANIFEST = "handoff.json"
FORMAT = "egis-handoff"
FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
LABELS_FILE = "labels.csv"
LABELS_SIDE = "labels.json"
POPULATION_FILE = "population.json"
CHIPS_FILE = "chips.json"
ALLOWED_EXTRA = {"signature.json"}


def is_handoff(path: str | os.PathLike) -> bool:
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


@dataclass(frozen=True)
class Handoff:
    """A verified handoff package."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.directory / MODEL_FILE

    @property
    def labels_path(self) -> Path:
        return self.directory / LABELS_FILE

    @property
    def chips_ref(self) -> Path | None:
        """The chip set the labels refer to, when the package can name it (a population)."""
        path = self.directory / POPULATION_FILE
        return path if path.is_file() else None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_handoff(directory: str | os.PathLike, trust: str | os.PathLike | None = None) -> Handoff:
    """Read and verify a handoff folder (every listed file's sha256, nothing unlisted, the
    signature when ``trust`` is given); DataError naming the file otherwise."""
    folder = Path(directory)
    where = folder / MANIFEST
    try:
        raw = where.read_bytes()
        manifest = json.loads(raw.decode("ascii"))
    except FileNotFoundError:
        raise DataError(f"{folder} is not a handoff package (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError, ValueError):
        raise DataError(f"{where} is damaged (not valid JSON)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{where} is not an egis handoff manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{where} has format version {manifest.get('format_version')!r}; this egis reads "
                        f"{FORMAT_VERSION}")
    files = manifest.get("files")
    if not isinstance(files, dict) or MODEL_FILE not in files or LABELS_FILE not in files:
        raise DataError(f"{where} does not list {MODEL_FILE} and {LABELS_FILE}")
    if trust is not None:
        from egis.toolkit.signing import verify

        verify(folder, raw, trust, what="handoff")
    for name, digest in sorted(files.items()):
        path = folder / str(name)
        if Path(str(name)).name != name:
            raise DataError(f"{where} lists {name!r}, outside the package")
        if not path.is_file():
            raise DataError(f"handoff {folder} is incomplete: {name} is missing")
        if _sha256(path) != digest:
            raise DataError(f"{name} of handoff {folder} was modified (sha256 does not match {MANIFEST})")
    extra = sorted(p.name for p in folder.iterdir() if p.name not in files and p.name != MANIFEST
                   and p.name not in ALLOWED_EXTRA)
    if extra:
        raise DataError(f"handoff {folder} holds {extra[0]}, which its manifest does not list")
    model_sha = manifest.get("model", {}).get("sha256")
    if model_sha != files[MODEL_FILE]:
        raise DataError(f"{where} names another model than its {MODEL_FILE}")
    return Handoff(folder, manifest)


def write_handoff(directory: str | os.PathLike, *, model_bytes: bytes, labels_csv: bytes,
                  labels_meta: dict[str, Any], chips_name: str, chips_doc: dict[str, Any],
                  manifest_info: dict[str, Any], sign_key: str | os.PathLike | None = None) -> Path:
    """Write the package atomically (nothing appears until it is complete)."""
    from egis.toolkit.io import atomic_directory, write_json

    target = Path(directory)
    with atomic_directory(target) as staging:
        (staging / MODEL_FILE).write_bytes(model_bytes)
        (staging / LABELS_FILE).write_bytes(labels_csv)
        write_json(staging / LABELS_SIDE, labels_meta)
        write_json(staging / chips_name, chips_doc)
        files = {name: _sha256(staging / name) for name in (MODEL_FILE, LABELS_FILE, LABELS_SIDE, chips_name)}
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "files": files, **manifest_info}
        manifest["model"] = {**manifest_info.get("model", {}), "file": MODEL_FILE, "sha256": files[MODEL_FILE]}
        raw = manifest_bytes(manifest)
        (staging / MANIFEST).write_bytes(raw)
        if sign_key is not None:
            from egis.toolkit.signing import write_signature

            write_signature(staging, raw, sign_key)
    return target
