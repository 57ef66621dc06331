"""The ``command`` hardware adapter: a tester vendor integrates without writing Python.

``adapter:command:CMDLINE`` runs chip images through the vendor's own executable. For every
batch the tool is run as::

    CMDLINE IN.npy OUT.npy

* ``IN.npy``  -- float32 array (n, *image_shape): the images in the model's pixel domain and
  layout (what the chip's input pipeline is given on the test floor);
* ``OUT.npy`` -- the tool writes float32 (or float64) logits (n, M), one row per image, in
  order. Plain ``.npy`` (numpy.save / any NPY writer; C and Rust libraries exist); no pickles
  are read (``allow_pickle=False``).

The tool must exit 0; a non-zero exit is an error that quotes the last line of its stderr.
It gets ``EGIS_COMMAND_TIMEOUT`` seconds (default 300) per batch, then it is killed. The
command line is split like a POSIX shell would (``shlex``), never run through a shell.

Contract of every adapter (``egis.toolkit.plugin_api.ChipAdapter``): ``run(images) -> logits``
with images as above and logits (n, M); raise on failure (the toolkit reports and excludes
the chip; the tester fails it with the reason).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from egis.toolkit.errors import PluginError

TIMEOUT_ENV = "EGIS_COMMAND_TIMEOUT"
DEFAULT_TIMEOUT = 300.0


class CommandAdapter:
    """Runs ``command IN.npy OUT.npy`` per batch of images."""

    def __init__(self, command: str, timeout: float | None = None) -> None:
        try:
            self.argv = shlex.split(command)
        except ValueError as exc:
            raise PluginError(f"adapter command '{command}' cannot be parsed: {exc}") from None
        if not self.argv:
            raise PluginError("adapter:command: needs a command line after 'command:'")
        if timeout is None:
            try:
                timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
            except ValueError:
                raise PluginError(f"{TIMEOUT_ENV} must be a number of seconds") from None
        self.timeout = timeout
        self.command = command

    def run(self, images: np.ndarray) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="egis-cmd-") as tmp:
            inp, out = Path(tmp) / "in.npy", Path(tmp) / "out.npy"
            np.save(inp, np.ascontiguousarray(images, dtype=np.float32), allow_pickle=False)
            try:
                done = subprocess.run([*self.argv, str(inp), str(out)], capture_output=True, text=True,
                                      timeout=self.timeout, check=False)
            except FileNotFoundError:
                raise PluginError(f"adapter command not found: {self.argv[0]}") from None
            except subprocess.TimeoutExpired:
                raise TimeoutError(f"'{self.command}' gave no answer within {self.timeout:g} s") from None
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or [""])[-1][:200]
                raise PluginError(f"'{self.command}' exited with code {done.returncode}"
                                  + (f": {last}" if last else ""))
            try:
                logits = np.load(out, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise PluginError(f"'{self.command}' wrote no readable OUT.npy ({exc})") from None
        return np.asarray(logits, dtype=np.float32)


def command_adapter(target: str) -> CommandAdapter:
    """Entry point of group ``egis.adapters``: ``adapter:command:CMDLINE``."""
    return CommandAdapter(target)
