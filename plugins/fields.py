"""Exact sampling of stationary Gaussian fields with exponential covariance on integer grids.

Target: a zero-mean field Z over the cells (i, j) of a (P, Q) grid with
``Cov(Z_a, Z_b) = exp(-lam * |a - b|)`` (Euclidean distance in cell units, unit variance;
callers scale by sigma). The PQ x PQ covariance is never built except by the dense
reference sampler, which is only used for grids of at most ``dense_max_cells`` cells.

Methods, tried in this order by ``FieldSampler(method="auto")``:

``circulant``  Plain circulant embedding (Dietrich & Newsam 1997) on a torus of 2(P-1) x
    2(Q-1) cells, then 2x padding. Exact when the embedding's eigenvalues are >= 0 (up to
    round-off). Works for short correlation lengths (lam * grid size >~ 1).
``dense``      Cholesky of the dense covariance, for small grids where the plain embedding
    fails (the seed's lam = 0.001 on small layers). Exact, O((PQ)^3) setup, O((PQ)^2) draw.
``cutoff``     Cut-off embedding (Stein 2002; Gneiting et al. 2006): the covariance is kept
    exactly for distances r <= D (the grid diameter) and continued by the C^1 tail
    ``b (R - r)^2`` up to R = D + 2/lam, then *periodised* (summed over torus images) on a
    torus of at least (P-1+R) x (Q-1+R) cells. Grid lags see only one image, so grid
    covariances are exact; the continued function satisfies the Polya-type criterion for
    R^3 (-phi'(sqrt t) is convex), hence is positive definite in R^2 and the periodised
    embedding has nonnegative eigenvalues. This is checked numerically every time. Cost: the
    torus is large when lam is small (~4480^2 for 1024 x 1024 at lam = 0.001).
``clipped``    Last resort (embedding too large or a check failed): the best plain embedding
    with negative eigenvalues set to zero. Approximate; the error on grid covariances is
    measured exactly and stored in ``max_cov_error``, and a warning is logged once per grid.

Every FFT draw yields two independent fields (real and imaginary part of one complex FFT);
``sample(rng, count)`` uses that pairing within one call, never across calls, so draws stay a
pure function of the generator state.

Draw versions (``FieldSampler(version=...)``; a population's format version picks one, so a
spec always rebuilds the same bytes):

1. The original: the cut-off embedding always uses the quadratic tail, and an odd last field
   of a call is the real part of a complex FFT whose imaginary part is discarded.
2. Fewer random numbers for the same covariance. (a) Before the quadratic tail, the cut-off
   embedding tries the cubic Hermite tail that matches exp(-lam r) in value and slope at the
   grid diameter and reaches zero, flat, ``CUBIC_TAIL / lam`` later (half the quadratic tail's
   reach). No theorem makes it positive definite, so it is used only where the periodised
   embedding passes the same eigenvalue check as every other embedding here; grid covariances
   are exact either way. On the seed's lam = 0.001 it passes on dies of ~1000 cells and up
   (e.g. 2304 x 977: 26.0 M torus cells against 37.6 M) and fails on small ones, which fall
   back to the quadratic tail. (b) An odd last field is drawn from real noise on the torus:
   ``irfft(sqrt(eig) * rfft(x))`` is C^(1/2) x, so one field costs M N real normals
   instead of 2 M N.
3. Band-limited spectral draws, several times faster, with a stated covariance error. The
   embedding is chosen exactly as in version 2. Its spectrum is then cut to the first box
   |kx| <= Kx, |ky| <= Ky (same physical frequency on both axes; the box's share of each
   axis grows 0.02 * 1.25^i, then the whole spectrum) whose covariance differs from
   the full embedding's by at most ``BAND_TOL`` (unit variance) at every grid lag other than
   0; the variance the dropped modes carried at lag 0 (``nugget``) is returned as white
   noise, so every cell's variance stays exact. The kept modes' complex normals are drawn
   directly in the frequency domain (no forward FFT, no torus-sized noise), and the inverse
   transform only touches the kept rows and the grid's own rows. Why it is cheap: at the
   seed's lam = 0.001 the spectrum of exp(-lam d) puts all but ~lam/k of the variance below
   frequency k, so ~5% of the torus' normals carry all but ~0.12% of it (the nugget). The
   error is where the dropped high frequencies live: next to lag 0, the exponential's kink
   (lag-1 correlation 0.99858 instead of 0.99900 at lam = 0.001), measured exactly at setup
   (``max_cov_error``). On VGG16's (1296, 1008) die: 0.8 M normals instead of 14.6 M, ~28 ms
   per field instead of ~250 ms (docs/performance.md).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Literal

import numpy as np
import scipy.fft as sfft
import scipy.linalg as sla

log = logging.getLogger(__name__)

Method = Literal["auto", "circulant", "dense", "cutoff", "clipped"]
Tail = Literal["quadratic", "cubic"]
DRAW_VERSIONS = (1, 2, 3)

DENSE_MAX_CELLS = 4096
MAX_TORUS_CELLS = 2**26  # ~6.7e7 cells: ~270 MB of float32 square roots, ~540 MB per draw
EIG_TOL = 1e-9  # eigenvalues above -EIG_TOL * max count as round-off of a valid embedding
# Version 3: the most the band-limited covariance may differ from the full embedding's at any
# grid lag (unit variance; lag 0 is exact). 5e-4 of sigma_cor^2: at the seed's typical shares
# (sigma_cor^2 = sigma_tot^2 / 4) 1.25e-4 of the total variance of eps.
BAND_TOL = 5e-4
BAND_START, BAND_STEP = 0.02, 1.25   # band fractions tried: 0.02 * 1.25^i, then the full spectrum
CUBIC_TAIL = 1.0  # reach of the cubic cut-off tail beyond the grid diameter, in units of 1/lam
_warned: set[tuple] = set()
_scratch = threading.local()  # one reusable noise buffer per thread (large draws page-fault)


def _noise_buffer(shape: tuple[int, ...]) -> np.ndarray:
    """A float32 array of ``shape`` reused across draws of this thread.

    Filling a preallocated array gives the same numbers as allocating one (same generator
    calls), without paying fresh pages for hundreds of MB on every draw."""
    size = int(np.prod(shape))
    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.size < size:
        buf = _scratch.buf = np.empty(size, dtype=np.float32)
    return buf[:size].reshape(shape)


def exp_cov(d: np.ndarray, lam: float) -> np.ndarray:
    """Unit-variance exponential covariance at distance ``d``."""
    return np.exp(-lam * d)


def tail_reach(lam: float, tail: Tail = "quadratic") -> float:
    """How far beyond r0 the cut-off covariance stays nonzero."""
    return (2.0 if tail == "quadratic" else CUBIC_TAIL) / lam


def cutoff_cov(d: np.ndarray, lam: float, r0: float, tail: Tail = "quadratic") -> np.ndarray:
    """exp(-lam d) for d <= r0, then a C^1 tail that reaches zero at R = r0 + tail_reach:
    quadratic b (R - d)^2 (Gneiting et al.'s, positive definite in R^2), or the cubic Hermite
    with value and slope of exp(-lam d) at r0 and value and slope 0 at R (checked per torus)."""
    h = tail_reach(lam, tail)
    big_r = r0 + h
    v = np.exp(-lam * r0)
    if tail == "quadratic":
        b = lam * lam * v / 4.0
        out = b * (big_r - d) ** 2
    else:
        t = (d - r0) / h
        out = v * (2 * t**3 - 3 * t**2 + 1) - lam * v * h * (t**3 - 2 * t**2 + t)
    out = np.where(d < big_r, out, 0.0)
    return np.where(d <= r0, np.exp(-lam * d), out)


def _even_fast_len(n: int) -> int:
    """Smallest FFT-friendly even length >= n (even so the DCT-I shortcut applies)."""
    m = sfft.next_fast_len(max(int(n), 2))
    while m % 2:
        m = sfft.next_fast_len(m + 1)
    return m


def _quadrant_eigenvalues(c_quad: np.ndarray) -> np.ndarray:
    """Eigenvalues of the block circulant whose first row is the even extension of c_quad.

    For a sequence symmetric on an even torus, the DFT equals the DCT-I of its first half,
    so only a quarter of the torus is ever built.
    """
    axes = [k for k in range(2) if c_quad.shape[k] > 1]
    return sfft.dctn(c_quad, type=1, axes=axes) if axes else c_quad.copy()


def _mirror(quad: np.ndarray) -> np.ndarray:
    """Even extension of a (M/2+1, N/2+1) quadrant to the full (M, N) torus."""
    full = np.concatenate([quad, quad[-2:0:-1]], axis=0)
    return np.concatenate([full, full[:, -2:0:-1]], axis=1)


def _plain_quadrant(shape: tuple[int, int], torus: tuple[int, int], lam: float) -> np.ndarray:
    """First quadrant of the minimal-image circulant embedding of exp(-lam d)."""
    i = np.arange(torus[0] // 2 + 1, dtype=float)
    j = np.arange(torus[1] // 2 + 1, dtype=float)
    return exp_cov(np.hypot(i[:, None], j[None, :]), lam)


def _cutoff_quadrant(shape: tuple[int, int], torus: tuple[int, int], lam: float,
                     tail: Tail = "quadratic") -> np.ndarray:
    """First quadrant of the periodised cut-off covariance (sum over the torus images)."""
    p, q = shape
    r0 = float(np.hypot(p - 1, q - 1))
    m, n = torus
    i = np.arange(m // 2 + 1, dtype=float)
    j = np.arange(n // 2 + 1, dtype=float)
    out = np.zeros((i.size, j.size))
    # The support R is below each torus side, so only the images i, m-i (and j, n-j) matter.
    for a in (i, m - i):
        for b in (j, n - j):
            out += cutoff_cov(np.hypot(a[:, None], b[None, :]), lam, r0, tail)
    return out


def grid_distances(shape: tuple[int, int]) -> np.ndarray:
    """(PQ, PQ) Euclidean distances between the cells of a grid, row-major. Small grids only."""
    p, q = shape
    ii, jj = np.divmod(np.arange(p * q), q)
    return np.hypot(ii[:, None] - ii[None, :], jj[:, None] - jj[None, :])


def dense_cholesky_factor(shape: tuple[int, int], lam: float) -> np.ndarray:
    """Lower Cholesky factor of the dense grid covariance (reference / small grids)."""
    cov = exp_cov(grid_distances(shape), lam)
    return sla.cholesky(cov, lower=True, check_finite=False)


def dense_cholesky_field(
    shape: tuple[int, int], lam: float, rng: np.random.Generator, *, sigma: float = 1.0,
    count: int = 1,
) -> np.ndarray:
    """Reference sampler: ``count`` fields of shape ``shape`` by dense Cholesky (float64)."""
    chol = dense_cholesky_factor(shape, lam)
    z = chol @ rng.standard_normal((chol.shape[0], count))
    return sigma * z.T.reshape(count, *shape)


class FieldSampler:
    """Reusable sampler for one (grid shape, lam); setup is paid once, draws are cheap.

    Attributes after construction: ``method`` (the method used), ``tail`` (the cut-off tail,
    "" for other methods), ``torus`` (embedding size or
    None), ``exact`` (True unless clipped), ``max_cov_error`` (largest absolute difference
    between the sampled and the target covariance over all grid lags, unit variance; round-off
    for exact methods), ``min_eig_ratio`` (min/max eigenvalue of the embedding used),
    ``setup_seconds``; version 3 also ``band`` ((Kx, Ky) kept, None where the method is
    dense) and ``nugget`` (lag-0 variance of the dropped modes, added back as white noise).
    """

    def __init__(
        self, shape: tuple[int, int], lam: float, *, method: Method = "auto",
        dense_max_cells: int = DENSE_MAX_CELLS, max_torus_cells: int = MAX_TORUS_CELLS,
        tol: float = EIG_TOL, workers: int | None = None, version: int = 1,
    ) -> None:
        p, q = (int(s) for s in shape)
        if p < 1 or q < 1 or not lam > 0:
            raise ValueError(f"need a non-empty grid and lam > 0, got {shape}, {lam}")
        if version not in DRAW_VERSIONS:
            raise ValueError(f"draw version {version!r} is not one of {DRAW_VERSIONS}")
        self.shape, self.lam, self.tol, self.workers = (p, q), float(lam), tol, workers
        self.version = version
        self.tail: str = ""
        self.dense_max_cells, self.max_torus_cells = dense_max_cells, max_torus_cells
        self.method: str = ""
        self.torus: tuple[int, int] | None = None
        self.exact = True
        self.max_cov_error = 0.0
        self.min_eig_ratio = 0.0
        self._chol: np.ndarray | None = None
        self._sqrt_eig: np.ndarray | None = None
        self._sqrt_eig_half: np.ndarray | None = None  # version 2: (M, N/2+1) sqrt(eig), rfft layout
        self.band: tuple[int, int] | None = None        # version 3: kept |kx| <= Kx, ky <= Ky
        self.nugget = 0.0
        self._band_rows: np.ndarray | None = None       # version 3: kept kx rows of the torus
        self._band_amp: np.ndarray | None = None        # version 3: (rows, Ky+1) amplitudes
        t0 = time.perf_counter()
        self._setup(method)
        self.setup_seconds = time.perf_counter() - t0

    # ---- setup -------------------------------------------------------------------------
    def _plain_torus(self, factor: int) -> tuple[int, int]:
        # A grid axis of length 1 stays length 1: no wrap-around, so a 1-D grid gets the
        # 1-D embedding, which is always nonnegative definite for exp(-lam d) (Polya).
        return tuple(1 if s == 1 else _even_fast_len(2 * (s - 1) * factor) for s in self.shape)

    def _cutoff_torus(self, tail: Tail = "quadratic") -> tuple[int, int]:
        p, q = self.shape
        reach = float(np.hypot(p - 1, q - 1)) + tail_reach(self.lam, tail)
        return _even_fast_len(int(np.ceil(p - 1 + reach)) + 1), _even_fast_len(
            int(np.ceil(q - 1 + reach)) + 1)

    def _fits(self, torus: tuple[int, int]) -> bool:
        return torus[0] * torus[1] <= self.max_torus_cells

    def _setup(self, method: Method) -> None:
        if method == "dense":
            return self._use_dense()
        if method == "cutoff":
            if self.version >= 2 and self._try_cubic():
                return None
            return self._use_embedding("cutoff", self._cutoff_torus(), strict=True)
        plain = []  # (min_eig_ratio, torus, eigenvalue quadrant)
        for factor in (1, 2):
            torus = self._plain_torus(factor)
            if not self._fits(torus):
                break
            eig = _quadrant_eigenvalues(_plain_quadrant(self.shape, torus, self.lam))
            ratio = eig.min() / eig.max()
            if ratio >= -self.tol and method in ("auto", "circulant"):
                return self._accept("circulant", torus, eig)
            plain.append((ratio, torus, eig))
            if method == "circulant":
                raise ValueError(f"plain circulant embedding of {self.shape} at lam="
                                 f"{self.lam} is not nonnegative definite (min/max {ratio:.2e})")
        if method == "auto" and self.shape[0] * self.shape[1] <= self.dense_max_cells:
            return self._use_dense()
        if method == "auto" and self.version >= 2 and self._try_cubic():
            return None
        torus = self._cutoff_torus()
        if method == "auto" and self._fits(torus) and self._use_embedding(
                "cutoff", torus, strict=False):
            return None
        if not plain:  # even the minimal embedding is too large: clip it anyway
            torus = self._plain_torus(1)
            eig = _quadrant_eigenvalues(_plain_quadrant(self.shape, torus, self.lam))
            plain.append((eig.min() / eig.max(), torus, eig))
        return self._accept("clipped", *max(plain, key=lambda t: t[0])[1:])

    def _use_dense(self) -> None:
        self.method, self._chol = "dense", dense_cholesky_factor(self.shape, self.lam)

    def _try_cubic(self) -> bool:
        """Version 2: the cubic-tail cut-off embedding (smaller torus) where it checks out."""
        torus = self._cutoff_torus("cubic")
        return self._fits(torus) and self._use_embedding("cutoff", torus, strict=False, tail="cubic")

    def _use_embedding(self, name: str, torus: tuple[int, int], strict: bool,
                       tail: Tail = "quadratic") -> bool:
        eig = _quadrant_eigenvalues(_cutoff_quadrant(self.shape, torus, self.lam, tail))
        ratio = eig.min() / eig.max()
        if ratio < -self.tol:
            if strict:
                raise ValueError(f"cut-off embedding of {self.shape} at lam={self.lam} failed "
                                 f"its eigenvalue check (min/max {ratio:.2e})")
            return False
        self._accept(name, torus, eig)
        self.tail = tail
        return True

    def _accept(self, name: str, torus: tuple[int, int], eig: np.ndarray) -> None:
        """Keep sqrt of the clipped eigenvalues and measure the covariance actually sampled."""
        self.method, self.torus = name, torus
        self.min_eig_ratio = float(eig.min() / eig.max())
        eig = np.maximum(eig, 0.0)
        self.exact = name != "clipped"
        axes = [k for k in range(2) if eig.shape[k] > 1]
        implied = sfft.idctn(eig, type=1, axes=axes) if axes else eig
        implied = implied[: self.shape[0], : self.shape[1]]
        i, j = np.arange(self.shape[0]), np.arange(self.shape[1])
        target = exp_cov(np.hypot(i[:, None], j[None, :]), self.lam)
        self.max_cov_error = float(np.abs(implied - target).max())
        n = torus[0] * torus[1]
        if self.version >= 3:
            self._band_limit(_mirror(eig)[:, : torus[1] // 2 + 1], implied, target)
            self._warn_if_clipped()
            return
        self._sqrt_eig = _mirror(np.sqrt(eig / n)).astype(np.float32)
        if self.version == 2:   # unnormalised: scipy's ifft and irfft divide by M and N
            self._sqrt_eig_half = np.ascontiguousarray(
                _mirror(np.sqrt(eig))[:, : torus[1] // 2 + 1], dtype=np.float32)
        self._warn_if_clipped()

    def _warn_if_clipped(self) -> None:
        if not self.exact:
            key = (self.shape, self.lam)
            if key not in _warned:
                _warned.add(key)
                log.warning("correlated field %s at lam=%g: no exact embedding within %d "
                            "torus cells (or clipping was requested); using the clipped "
                            "circulant embedding, max covariance error %.2e (unit variance)",
                            self.shape, self.lam, self.max_torus_cells, self.max_cov_error)

    # ---- version 3: band-limited spectrum ------------------------------------------------
    def _band_indices(self, frac: float) -> tuple[np.ndarray, int]:
        """Kept torus rows (|kx| <= Kx, all rows once Kx reaches the middle) and Ky."""
        m, n = self.torus
        kx = min(int(np.ceil(frac * m / 2)), m // 2)
        ky = min(int(np.ceil(frac * n / 2)), n // 2)
        rows = np.arange(m) if 2 * kx + 1 >= m else np.r_[0:kx + 1, m - kx:m]
        return rows, ky

    def _band_amplitudes(self, eig_half: np.ndarray, rows: np.ndarray, ky: int) -> np.ndarray:
        """Standard deviation of the real and of the imaginary part of each kept mode.

        Column ky > 0 (not Nyquist) stands for the pair (k, -k) of the full spectrum, so it
        carries twice the variance; column 0 (and an even torus' Nyquist column) holds both
        members of each pair as separate rows. With V = a (xi + i eta), Re(V e^{ik.l}) has
        covariance a^2 cos(k.l), which sums to the embedding's covariance over the box."""
        m, n = self.torus
        scale = np.full(ky + 1, 2.0)
        scale[0] = 1.0
        if n % 2 == 0 and ky == n // 2:
            scale[-1] = 1.0
        return np.sqrt(np.maximum(eig_half[rows, : ky + 1], 0.0) * scale / (m * n))

    def _band_transform(self, rows: np.ndarray, ky: int, coeffs: np.ndarray) -> np.ndarray:
        """Re(sum over the kept modes of coeffs e^{ik.l}) on the grid's cells, pruned: a
        complex inverse FFT over the kept columns only, then a real inverse FFT over the
        grid's own rows only."""
        m, n = self.torus
        p, q = self.shape
        full = np.zeros((m, ky + 1), dtype=coeffs.dtype)
        full[rows] = coeffs
        g = sfft.ifft(full, axis=0, overwrite_x=True, workers=self.workers)[:p]
        g *= m
        g[:, 0] *= 2           # irfft halves the columns that have no conjugate partner
        if n % 2 == 0 and ky == n // 2 and n > 1:
            g[:, -1] *= 2
        out = sfft.irfft(g, n=n, axis=1, workers=self.workers)[:, :q]
        out *= n / 2
        return out

    def _band_limit(self, eig_half: np.ndarray, full: np.ndarray, target: np.ndarray) -> None:
        """Keep the first band (axis shares BAND_START * BAND_STEP^i, then all) whose
        covariance is within BAND_TOL of the full embedding's (``full``, grid lags) at every
        lag but 0; measure its error against exp(-lam d) exactly."""
        frac = BAND_START
        while True:
            frac = min(frac, 1.0)
            rows, ky = self._band_indices(frac)
            amp = self._band_amplitudes(eig_half, rows, ky)
            cov = self._band_transform(rows, ky, (amp * amp).astype(np.complex128))
            whole = rows.size == self.torus[0] and ky == self.torus[1] // 2
            # the whole spectrum drops nothing: a nugget there would be FFT round-off, whose
            # sign (hence whether a draw of white noise happens) could differ between machines
            nugget = 0.0 if whole else max(float(full[0, 0] - cov[0, 0]), 0.0)
            cov[0, 0] += nugget
            if whole or np.abs(cov - full).max() <= BAND_TOL:
                break
            frac *= BAND_STEP
        self._band_rows, self._band_amp = rows, amp.astype(np.float32)
        self.band, self.nugget = (int(rows.size // 2), ky), nugget
        self.max_cov_error = float(np.abs(cov - target).max())

    def _band_field(self, rng: np.random.Generator) -> np.ndarray:
        """Version 3, one field without its nugget: complex normals on the kept modes only."""
        amp = self._band_amp
        z = rng.standard_normal((*amp.shape, 2), dtype=np.float32).view(np.complex64)[..., 0]
        z *= amp
        return self._band_transform(self._band_rows, self.band[1], z)

    # ---- draws -------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, count: int = 1, nugget: bool = True) -> np.ndarray:
        """``count`` independent unit-variance fields, float32 array (count, P, Q).

        ``nugget=False`` (version 3) leaves out the white noise that restores the dropped
        modes' lag-0 variance: a caller that adds iid noise to every cell anyway (the generic
        plugin's eps_rand) folds ``self.nugget`` into that noise's variance instead and saves
        a grid's worth of normals."""
        if self.method == "dense":
            z = self._chol @ rng.standard_normal((self._chol.shape[0], count))
            return z.T.reshape(count, *self.shape).astype(np.float32)
        out = np.empty((count, *self.shape), dtype=np.float32)
        if self.version >= 3:
            for k in range(count):
                out[k] = self._band_field(rng)
                if nugget and self.nugget > 0:
                    out[k] += np.float32(np.sqrt(self.nugget)) * rng.standard_normal(
                        self.shape, dtype=np.float32)
            return out
        for k in range(0, count, 2):
            if k + 1 == count and self.version >= 2:
                out[k] = self._fft_real(rng)
                break
            pair = self._fft_pair(rng)
            out[k] = pair.real
            if k + 1 < count:
                out[k + 1] = pair.imag
        return out

    def _fft_real(self, rng: np.random.Generator) -> np.ndarray:
        """Version 2, one field: C^(1/2) x for real white noise x, by a real-to-complex FFT
        (half the normals of a complex draw, nothing discarded)."""
        m, n = self.torus
        p, q = self.shape
        x = rng.standard_normal(out=_noise_buffer((m, n)), dtype=np.float32)
        z = sfft.rfft(x, axis=1, workers=self.workers)
        z = sfft.fft(z, axis=0, overwrite_x=True, workers=self.workers)
        z *= self._sqrt_eig_half
        z = sfft.ifft(z, axis=0, overwrite_x=True, workers=self.workers)[:p]
        return sfft.irfft(z, n=n, axis=1, workers=self.workers)[:, :q]

    def _fft_pair(self, rng: np.random.Generator) -> np.ndarray:
        """One complex FFT -> two independent fields (real and imaginary parts)."""
        m, n = self.torus
        p, q = self.shape
        z = rng.standard_normal(out=_noise_buffer((m, n, 2)), dtype=np.float32)
        z = z.view(np.complex64)[..., 0]  # real/imag parts interleaved: no copy
        z *= self._sqrt_eig
        # Transform the longer-kept axis first so the second pass only covers kept lines.
        if q / n <= p / m:
            z = sfft.fft(z, axis=1, overwrite_x=True, workers=self.workers)[:, :q]
            return sfft.fft(z, axis=0, workers=self.workers)[:p]
        z = sfft.fft(z, axis=0, overwrite_x=True, workers=self.workers)[:p]
        return sfft.fft(z, axis=1, workers=self.workers)[:, :q]
