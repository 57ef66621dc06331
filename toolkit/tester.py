"""The tester: judge chips with a verified bundle, reusing every session across chips.

The stimulus model is run once (the K images are then plain arrays), the detector session
is created once, and each chip costs only its K-image inference plus one detector call.
Session creation is what costs milliseconds (5-8 ms per onnxruntime session here), so
creating them per chip would dominate; bench/bench_tester.py measures both.

Tester path: imports only onnx, onnxruntime, numpy and the standard library (plugins and
population simulation are imported lazily by toolkit.chips when asked for).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from egis.toolkit.bundle import Bundle, load_bundle
from egis.toolkit.chips import Chip, Stimulus
from egis.toolkit.runtime import session_options
from egis.toolkit.errors import BundleError, EgisError
from egis.toolkit.guard import SignatureGuard, nonfinite_reason
from egis.toolkit.signatures import signature_from_logits


@dataclass(frozen=True)
class Verdict:
    """One chip's result: pass/fail, P(pass) from the detector, test time (chip+detector), and
    why the chip was failed without the detector's say (``reason``; "" for a judged chip).

    A chip that answers with non-finite logits, the wrong shape, an error, or a signature far
    outside what the labelled chips produced is a FAIL with ``pass_probability`` None: a test
    must never pass a chip it cannot judge."""

    chip: str
    passed: bool
    pass_probability: float | None
    elapsed_ms: float
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Tester:
    """Loads a bundle once; :meth:`test` judges one chip, :meth:`test_many` an iterable."""

    def __init__(self, bundle: Bundle | str | os.PathLike, threads: int = 1,
                 allow_unknown: bool = False, trust: str | os.PathLike | None = None) -> None:
        """``allow_unknown``: judge chips whose signatures the guard calls unknown with the
        detector anyway (their verdict still names the reason). Non-finite responses and chips
        that fail to answer are FAIL regardless."""
        import onnxruntime as ort

        if trust is not None and isinstance(bundle, Bundle):
            raise BundleError("a trusted tester verifies the bundle itself: give its directory")
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle, trust=trust)
        manifest = self.bundle.manifest
        inputs, pixels = self.bundle.stimulus_arrays()
        self.stimulus = Stimulus(inputs=inputs, pixels=pixels)
        if len(inputs) != self.bundle.k:
            raise BundleError(f"bundle stimulus has {len(inputs)} images, manifest says K={self.bundle.k}")
        detector = manifest["detector"]
        try:
            self._detector = ort.InferenceSession(self.bundle.detector_onnx, session_options(threads),
                                                  providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001
            raise BundleError(f"detector of bundle {self.bundle.directory} cannot be loaded: "
                              f"{str(exc).splitlines()[0][:200]}") from None
        self._det_input = detector["input"]
        self._det_outputs = [detector["label_output"], detector["probability_output"]]
        self._pass_label = int(detector["pass_label"])
        self._pass_column = int(detector["pass_column"])
        # an escape budget (egis compact --max-escape) moves the pass threshold off 0.5
        self.pass_threshold = detector.get("pass_threshold")
        self._shape = (self.bundle.k, self.bundle.m)
        self.guard = SignatureGuard.from_dict(manifest["guard"], self.bundle.k * self.bundle.m)
        self.allow_unknown = allow_unknown

    def signature(self, chip: Chip) -> np.ndarray:
        """The chip's signature (1, K*M): logits on the K images, stacked image-major.

        Built by toolkit.signatures, which also builds the training signatures of compaction
        and the detector, so the tester's layout cannot drift from the one it was trained on.
        """
        logits = np.asarray(chip.logits(self.stimulus), dtype=np.float32)
        if logits.shape != self._shape:
            raise BundleError(f"chip {chip.name} returned logits of shape {logits.shape}; "
                              f"the bundle expects {self._shape} (K images x M classes)")
        return signature_from_logits(logits)

    def judge(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(passed bool, P(pass)) for signatures (n, K*M) -- the detector alone."""
        label, proba = self._detector.run(self._det_outputs,
                                          {self._det_input: np.ascontiguousarray(signatures, np.float32)})
        p_pass = np.asarray(proba)[:, self._pass_column].astype(np.float64)
        if self.pass_threshold is not None:
            return p_pass >= float(self.pass_threshold), p_pass
        return np.asarray(label).reshape(-1) == self._pass_label, p_pass

    def test(self, chip: Chip) -> Verdict:
        started = time.perf_counter()

        def failed(reason: str) -> Verdict:
            return Verdict(chip=chip.name, passed=False, pass_probability=None,
                           elapsed_ms=(time.perf_counter() - started) * 1e3, reason=reason)

        try:
            signature = self.signature(chip)
        except EgisError as exc:
            return failed(f"cannot judge: {exc}")
        except Exception as exc:  # noqa: BLE001 - a chip (hardware, vendor code) may fail any way
            return failed(f"cannot judge: chip {chip.name} failed ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200] if str(exc) else ''})")
        reason = nonfinite_reason(signature)
        if reason is not None:
            return failed(reason)
        reason = self.guard.check(signature[0]) or ""
        if reason and not self.allow_unknown:
            return failed(reason)
        passed, proba = self.judge(signature)
        elapsed = (time.perf_counter() - started) * 1e3
        return Verdict(chip=chip.name, passed=bool(passed[0]), pass_probability=float(proba[0]),
                       elapsed_ms=elapsed, reason=f"{reason} (judged anyway: --allow-unknown)" if reason else "")

    def test_many(self, chips: Iterable[Chip]) -> Iterator[Verdict]:
        for chip in chips:
            yield self.test(chip)
