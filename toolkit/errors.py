"""Error types the command line turns into one-line messages (exit code 2, no traceback).

Anything raised as an :class:`EgisError` is a problem with the user's input or files, not a
bug; everything else is a bug and keeps its traceback.
"""


class EgisError(Exception):
    """A user-facing error whose message is one complete sentence."""


class ModelError(EgisError):
    """The ONNX model cannot be used (unreadable, wrong inputs/outputs, unsupported op)."""


class PluginError(EgisError):
    """Unknown plugin or bad plugin parameters."""


class PopulationError(EgisError):
    """A population spec that is malformed or made for another model."""


class DataError(EgisError):
    """Customer data (images, labels) that cannot be used."""


class BundleError(EgisError):
    """A test bundle that is incomplete, tampered with, or does not match the chip."""
