"""Vendor-neutral core of egis-toolkit: ONNX intake, crossbar mapping, chip populations,
simulation engine, signatures, test bundle and tester."""

__version__ = "0.1.0"
