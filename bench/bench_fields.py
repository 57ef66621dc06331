"""Correlated-field sampling cost: FFT embedding on a 1024x1024 crossbar next to dense
Cholesky on the largest grid that is still quick (64x64 = 4096 cells), in one run.

The FFT sampler picks its method itself: at the seed's lam = 0.001 the plain embedding is
not nonnegative definite, so it uses the exact cut-off embedding (larger torus); at a short
correlation length (lam = 0.05) the plain 2x embedding is exact.

Each FFT grid is timed under every draw version (1: the original, 2: exact from fewer normals,
3: band-limited, covariance within fields.BAND_TOL; see plugins/fields.py), so their ratio is
measured in the same run.

Usage: python bench/bench_fields.py [--size 1024] [--dense 64] [--lam 0.001 0.05] [--draws 3]
Prints setup and per-field times (version 1 pairs two fields per FFT) and the per-cell cost ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from egis.plugins.fields import DRAW_VERSIONS, FieldSampler  # noqa: E402


def time_sampler(shape: tuple[int, int], lam: float, method: str, draws: int, version: int = 1) -> dict:
    """Setup seconds, seconds per field, and the sampler's diagnostics."""
    t0 = time.perf_counter()
    sampler = FieldSampler(shape, lam, method=method, version=version)
    setup = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    sampler.sample(rng, 2)  # warm-up (FFT plans, BLAS threads)
    t0 = time.perf_counter()
    sampler.sample(rng, 2 * draws)
    per_field = (time.perf_counter() - t0) / (2 * draws)
    return {"shape": shape, "lam": lam, "method": sampler.method, "torus": sampler.torus, "version": version,
            "setup_s": setup, "field_s": per_field, "err": sampler.max_cov_error,
            "cells": shape[0] * shape[1]}


def report(r: dict) -> None:
    torus = "x".join(map(str, r["torus"])) if r["torus"] else "-"
    print(f"{r['shape'][0]:>5}x{r['shape'][1]:<5} lam={r['lam']:<6g} v{r['version']} {r['method']:<9} "
          f"torus {torus:<10} setup {r['setup_s']:7.3f} s   per field {r['field_s']:8.4f} s   "
          f"{1e9 * r['field_s'] / r['cells']:8.1f} ns/cell   max cov err {r['err']:.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--dense", type=int, default=64)
    ap.add_argument("--lam", type=float, nargs="+", default=[0.001, 0.05])
    ap.add_argument("--draws", type=int, default=3, help="FFTs timed (two fields each)")
    args = ap.parse_args()
    dense = time_sampler((args.dense, args.dense), args.lam[0], "dense", args.draws)
    report(dense)
    for lam in args.lam:
        for version in DRAW_VERSIONS:
            fft = time_sampler((args.size, args.size), lam, "auto", args.draws, version)
            report(fft)
        ratio = (fft["field_s"] / fft["cells"]) / (dense["field_s"] / dense["cells"])
        print(f"   per-cell draw cost FFT (v{fft['version']})/dense = {ratio:.3g}; a dense Cholesky of "
              f"{fft['cells']} cells would need a {fft['cells']}^2 matrix "
              f"({8 * fft['cells'] ** 2 / 2**40:.0f} TiB) and ~{fft['cells'] ** 3 / 3e12:.0e} "
              f"s of setup at 1 Tflop/s")


if __name__ == "__main__":
    main()
