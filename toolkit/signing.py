"""Ed25519 signatures for test bundles and handoff packages (the ``cryptography`` library).

A manifest lists the sha256 of every file of its package, so a flipped byte is caught; but
anyone who replaces a file can re-hash the manifest. A signature over the manifest's exact
bytes, made with the fab's (or the customer's) private key, is what a tester on a production
floor checks: ``verify`` refuses an unsigned package, one signed with another key, and any
altered byte of the manifest (and through its hashes, of every file).

Files:

* ``egis keys new -o DIR`` writes ``DIR/egis.key`` (PKCS#8 PEM, owner read/write only) and
  ``DIR/egis.pub.pem`` (SubjectPublicKeyInfo PEM), never overwriting a key.
* a signed package holds ``signature.json``: algorithm, the signer's public-key fingerprint
  (sha256 of the raw 32-byte key) and the base64 signature of the manifest bytes. Private
  keys never enter a package.

``cryptography`` is imported only when signing or verifying, so ``egis test`` without
``--trust`` stays on onnx, onnxruntime and numpy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from egis.toolkit.errors import BundleError, DataError
from egis.toolkit.io import atomic_path

SIGNATURE_FILE = "signature.json"
PRIVATE_NAME = "egis.key"
PUBLIC_NAME = "egis.pub.pem"
ALGORITHM = "ed25519"


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - a dependency of the package
        raise DataError("signing needs the 'cryptography' package: pip install cryptography") from None
    return serialization, ed25519


def fingerprint(public_key: Any) -> str:
    serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def new_keys(directory: str | os.PathLike) -> tuple[Path, Path]:
    """Write a new key pair into ``directory``; refuse to overwrite an existing one."""
    serialization, ed25519 = _crypto()
    folder = Path(directory)
    private_path, public_path = folder / PRIVATE_NAME, folder / PUBLIC_NAME
    if private_path.exists() or public_path.exists():
        raise DataError(f"{folder} already holds a key pair; a key is never overwritten")
    folder.mkdir(parents=True, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    os.chmod(private_path, 0o600)
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path


def load_private_key(path: str | os.PathLike) -> Any:
    serialization, ed25519 = _crypto()
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read private key {p}: {exc.strerror or exc}") from None
    if os.name == "posix" and p.stat().st_mode & 0o077:
        raise DataError(f"private key {p} is readable by others (chmod 600 {p})")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise DataError(f"{p} is not a PEM private key") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise DataError(f"{p} is not an Ed25519 key")
    return key


def load_public_key(path: str | os.PathLike) -> Any:
    serialization, ed25519 = _crypto()
    p = Path(path)
    try:
        key = serialization.load_pem_public_key(p.read_bytes())
    except OSError as exc:
        raise DataError(f"cannot read public key {p}: {exc.strerror or exc}") from None
    except (ValueError, TypeError):
        raise DataError(f"{p} is not a PEM public key") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise DataError(f"{p} is not an Ed25519 public key")
    return key


def signature_document(manifest_bytes: bytes, private_key_path: str | os.PathLike) -> bytes:
    """The bytes of ``signature.json`` for a manifest."""
    key = load_private_key(private_key_path)
    document = {"algorithm": ALGORITHM, "signs": "manifest bytes",
                "public_key_sha256": fingerprint(key.public_key()),
                "signature": base64.b64encode(key.sign(manifest_bytes)).decode("ascii")}
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("ascii")


def write_signature(directory: str | os.PathLike, manifest_bytes: bytes, private_key_path: str | os.PathLike) -> None:
    with atomic_path(Path(directory) / SIGNATURE_FILE) as tmp:
        tmp.write_bytes(signature_document(manifest_bytes, private_key_path))


def verify(directory: str | os.PathLike, manifest_bytes: bytes, public_key_path: str | os.PathLike,
           what: str = "bundle") -> str:
    """Check the package's signature with the trusted key; BundleError naming the problem.
    Returns the signer's fingerprint."""
    from cryptography.exceptions import InvalidSignature

    trusted = load_public_key(public_key_path)
    path = Path(directory) / SIGNATURE_FILE
    if not path.is_file():
        raise BundleError(f"{what} {directory} is not signed (no {SIGNATURE_FILE}); a trusted tester "
                          "accepts only signed packages")
    try:
        document = json.loads(path.read_text(encoding="ascii"))
        signature = base64.b64decode(document["signature"], validate=True)
        algorithm, signer = document["algorithm"], document["public_key_sha256"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise BundleError(f"{path} is damaged") from None
    if algorithm != ALGORITHM:
        raise BundleError(f"{path} uses {algorithm!r}; only {ALGORITHM} is accepted")
    expected = fingerprint(trusted)
    if signer != expected:
        raise BundleError(f"{what} {directory} is signed by another key ({signer[:16]}...), "
                          f"not the trusted {Path(public_key_path).name} ({expected[:16]}...)")
    try:
        trusted.verify(signature, manifest_bytes)
    except InvalidSignature:
        raise BundleError(f"{what} {directory} was altered after signing (its signature does not match "
                          "the manifest)") from None
    return expected
