"""Reference models shipped in the repository: name -> path of its model.onnx."""

from __future__ import annotations

from pathlib import Path

_MODELS_DIR = Path(__file__).resolve().parent

REFERENCE_MODELS: dict[str, Path] = {
    "digits": _MODELS_DIR / "digits" / "model.onnx",
    "cifar10_vgg16": _MODELS_DIR / "cifar10_vgg16" / "model.onnx",
    "cifar10_mobilenet": _MODELS_DIR / "cifar10_mobilenet" / "model.onnx",
}

DEFAULT_MODEL = "digits"


def reference_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Path of a shipped reference model; KeyError for unknown names, FileNotFoundError if the
    model is registered but its ONNX has not been trained/shipped yet."""
    if name not in REFERENCE_MODELS:
        raise KeyError(f"unknown reference model {name!r}; known: {', '.join(REFERENCE_MODELS)}")
    path = REFERENCE_MODELS[name]
    if not path.exists():
        raise FileNotFoundError(f"reference model {name!r} is not shipped yet: {path} missing")
    return path
