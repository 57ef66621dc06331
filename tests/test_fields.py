"""Statistical and exactness tests for plugins.fields (seeded; tolerances from sample sizes).

Correlation estimates average x(a) x(a + lag) over many cell pairs and fields. Their exact
sampling variance follows from the target covariance by Isserlis' theorem, so each tolerance
is Z standard errors of *that* estimator, not a guessed constant.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.fft as sfft
import scipy.linalg as sla

from egis.plugins import fields
from egis.plugins.fields import FieldSampler, dense_cholesky_field, exp_cov

Z = 5.0  # standard errors; ~6e-7 two-sided false-failure rate per check
LAGS = [(0, 1), (1, 0), (0, 5), (5, 0), (0, 20), (20, 0), (1, 1), (3, 4), (3, -4), (12, 16)]


def _pairs(shape: tuple[int, int], lag: tuple[int, int], stride: int = 3):
    """Cells a (on a sub-lattice) and b = a + lag that both lie in the grid."""
    p, q = shape
    di, dj = lag
    ii, jj = np.meshgrid(np.arange(0, p, stride), np.arange(0, q, stride), indexing="ij")
    a = np.stack([ii.ravel(), jj.ravel()], 1)
    b = a + np.array(lag)
    ok = (b[:, 0] >= 0) & (b[:, 0] < p) & (b[:, 1] >= 0) & (b[:, 1] < q)
    return a[ok], b[ok]


def _cov(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    return exp_cov(np.hypot(*(x[:, None, :] - y[None, :, :]).transpose(2, 0, 1)), lam)


def lag_estimate(samples: np.ndarray, lag, lam: float):
    """(estimate of the lag correlation, its exact standard error under the target model)."""
    a, b = _pairs(samples.shape[1:], lag)
    est = float(np.mean(samples[:, a[:, 0], a[:, 1]] * samples[:, b[:, 0], b[:, 1]]))
    m, n = len(a), samples.shape[0]
    var = (_cov(a, a, lam) * _cov(b, b, lam) + _cov(a, b, lam) * _cov(b, a, lam)).sum()
    return est, float(np.sqrt(var / (m * m * n)))


@pytest.fixture(scope="module")
def stats_samples():
    shape, lam = (40, 40), 0.1
    sampler = FieldSampler(shape, lam)
    fft = sampler.sample(np.random.default_rng(1), 1000)
    dense = dense_cholesky_field(shape, lam, np.random.default_rng(2), count=300)
    return sampler, fft, dense, lam


def test_plain_embedding_used_and_exact_for_short_correlation(stats_samples):
    sampler, fft, _, _ = stats_samples
    assert sampler.method == "circulant" and sampler.exact
    assert sampler.max_cov_error < 1e-12
    assert fft.dtype == np.float32 and fft.shape == (1000, 40, 40)


@pytest.mark.parametrize("lag", LAGS + [(0, 0)])
def test_lag_correlation_matches_exp_and_dense(stats_samples, lag):
    _, fft, dense, lam = stats_samples
    target = float(np.exp(-lam * np.hypot(*lag)))
    est_f, se_f = lag_estimate(fft, lag, lam)
    est_d, se_d = lag_estimate(dense, lag, lam)
    assert se_f < 0.013  # power: a 20% error in lam moves rho(5) by ~0.06
    assert abs(est_f - target) < Z * se_f, (lag, est_f, target, se_f)
    assert abs(est_d - target) < Z * se_d, (lag, est_d, target, se_d)
    assert abs(est_f - est_d) < Z * np.hypot(se_f, se_d)


def test_real_and_imaginary_fields_independent(stats_samples):
    _, fft, _, lam = stats_samples
    a, _ = _pairs(fft.shape[1:], (0, 0), stride=4)
    x, y = fft[0::2][:, a[:, 0], a[:, 1]], fft[1::2][:, a[:, 0], a[:, 1]]
    est = float(np.mean(x * y))
    se = float(np.sqrt((_cov(a, a, lam) ** 2).sum() / (len(a) ** 2 * x.shape[0])))
    assert abs(est) < Z * se


def test_same_seed_same_bytes_and_pairing_within_call():
    sampler = FieldSampler((30, 20), 0.2)
    one = sampler.sample(np.random.default_rng(7), 3)
    two = sampler.sample(np.random.default_rng(7), 3)
    assert one.tobytes() == two.tobytes()
    assert np.array_equal(sampler.sample(np.random.default_rng(7), 2), one[:2])
    assert not np.array_equal(one[0], one[1])


def _implied_grid_cov(sampler: FieldSampler) -> np.ndarray:
    """Covariance actually sampled, from the stored square-root eigenvalues (full FFT route,
    independent of the DCT shortcut used inside the sampler)."""
    m, n = sampler.torus
    eig = sampler._sqrt_eig.astype(np.float64) ** 2 * (m * n)
    c = sfft.ifft2(eig).real
    return c[: sampler.shape[0], : sampler.shape[1]]


def _target_grid_cov(shape, lam):
    i, j = np.arange(shape[0]), np.arange(shape[1])
    return exp_cov(np.hypot(i[:, None], j[None, :]), lam)


SMALL, SEED_LAM = (24, 16), 0.001


def test_seed_lambda_plain_embedding_is_not_nonnegative_definite():
    with pytest.raises(ValueError, match="not nonnegative definite"):
        FieldSampler(SMALL, SEED_LAM, method="circulant")
    assert FieldSampler(SMALL, SEED_LAM).method == "dense"  # auto: exact dense for small grids


@pytest.fixture(scope="module")
def cutoff_small():
    return FieldSampler(SMALL, SEED_LAM, method="cutoff")


def test_cutoff_embedding_is_exact_at_seed_lambda(cutoff_small):
    s = cutoff_small
    assert s.exact and s.min_eig_ratio > 0
    assert s.max_cov_error < 1e-12
    err = np.abs(_implied_grid_cov(s) - _target_grid_cov(SMALL, SEED_LAM)).max()
    assert err < 1e-5  # sqrt-eigenvalues are stored in float32


def test_cutoff_samples_whiten_to_white_noise(cutoff_small):
    """x = L y exactly iff L^-1 x is iid N(0,1): a sharp test of the whole covariance,
    including its smallest-eigenvalue directions, with only a few draws."""
    chol = fields.dense_cholesky_factor(SMALL, SEED_LAM)
    y = _whitened(cutoff_small, chol, k=6)
    dof = y.size
    assert abs(np.mean(y**2) - 1) < Z * np.sqrt(2 / dof)
    assert abs(np.mean(y)) < Z / np.sqrt(dof)
    # Power: the clipped (approximate) embedding fails the same test by a wide margin.
    y_clip = _whitened(FieldSampler(SMALL, SEED_LAM, method="clipped"), chol, k=6)
    assert np.mean(y_clip**2) - 1 > Z * np.sqrt(2 / dof)


def _whitened(sampler: FieldSampler, chol: np.ndarray, k: int) -> np.ndarray:
    x = sampler.sample(np.random.default_rng(3), k).reshape(k, -1).astype(np.float64)
    return sla.solve_triangular(chol, x.T, lower=True)


def test_clipped_embedding_reports_measured_error_and_warns_once(caplog, monkeypatch):
    monkeypatch.setattr(fields, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="egis.plugins.fields"):
        s = FieldSampler(SMALL, SEED_LAM, method="clipped")
        FieldSampler(SMALL, SEED_LAM, method="clipped")
    assert not s.exact and s.min_eig_ratio < 0
    measured = np.abs(_implied_grid_cov(s) - _target_grid_cov(SMALL, SEED_LAM)).max()
    assert s.max_cov_error > 1e-4
    assert measured == pytest.approx(s.max_cov_error, rel=1e-3, abs=1e-6)
    assert sum("clipped" in r.message for r in caplog.records) == 1


def test_auto_uses_exact_cutoff_on_grids_too_big_for_dense():
    s = FieldSampler((300, 20), SEED_LAM)
    assert s.method == "cutoff" and s.exact and s.max_cov_error < 1e-12
    x = s.sample(np.random.default_rng(0), 2)
    assert x.shape == (2, 300, 20) and np.isfinite(x).all()


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("shape", [(1, 40), (40, 1), (1, 1)])
def test_one_dimensional_grids_use_exact_1d_embedding(shape, version):
    s = FieldSampler(shape, SEED_LAM, version=version)
    assert s.method == "circulant" and s.max_cov_error < 1e-12
    for count in (1, 2, 3):
        x = s.sample(np.random.default_rng(0), count)
        assert x.shape == (count, *shape) and np.isfinite(x).all()


# ---- draw version 2: the cubic cut-off tail and single fields from real noise -------------
V2, V2_LAM = (40, 30), 0.05


@pytest.fixture(scope="module")
def cubic_small():
    return FieldSampler(V2, V2_LAM, method="cutoff", version=2)


def test_version2_cubic_tail_is_exact_on_a_smaller_torus(cubic_small):
    s, v1 = cubic_small, FieldSampler(V2, V2_LAM, method="cutoff")
    assert (s.tail, v1.tail) == ("cubic", "quadratic")
    assert s.torus[0] * s.torus[1] < 0.75 * v1.torus[0] * v1.torus[1]
    assert s.exact and s.min_eig_ratio > 0 and s.max_cov_error < 1e-12
    assert np.abs(_implied_grid_cov(s) - _target_grid_cov(V2, V2_LAM)).max() < 1e-5


def test_cubic_tail_is_c1_and_vanishes_at_its_reach():
    lam, r0 = 0.01, 50.0
    reach = r0 + fields.tail_reach(lam, "cubic")
    d = np.array([r0 - 1e-6, r0 + 1e-6, reach - 1e-9, reach, reach + 1.0])
    c = fields.cutoff_cov(d, lam, r0, "cubic")
    assert c[0] == pytest.approx(c[1], rel=1e-6) and abs(c[2]) < 1e-12 and c[3] == c[4] == 0
    h = 1e-4   # slope matches exp(-lam d) at r0 from both sides
    slope_in = (fields.cutoff_cov(np.array([r0]), lam, r0, "cubic") -
                fields.cutoff_cov(np.array([r0 - h]), lam, r0, "cubic")) / h
    slope_out = (fields.cutoff_cov(np.array([r0 + h]), lam, r0, "cubic") -
                 fields.cutoff_cov(np.array([r0]), lam, r0, "cubic")) / h
    assert slope_out[0] == pytest.approx(slope_in[0], rel=1e-3)


@pytest.mark.parametrize("count", [1, 2, 3])
def test_version2_draws_whiten_to_white_noise(cubic_small, count):
    """Single fields (real noise, rfft), pairs (complex FFT) and a mix: L^-1 x must be iid
    N(0, 1), which a wrong normalisation or spectrum layout fails by a wide margin."""
    chol = fields.dense_cholesky_factor(V2, V2_LAM)
    x = np.concatenate([cubic_small.sample(np.random.default_rng([5, i]), count)
                        for i in range(60 // count)])
    y = sla.solve_triangular(chol, x.reshape(len(x), -1).T.astype(np.float64), lower=True)
    dof = y.size
    assert abs(np.mean(y**2) - 1) < Z * np.sqrt(2 / dof)
    assert abs(np.mean(y)) < Z / np.sqrt(dof)
    assert abs(np.mean(y[:-1] * y[1:])) < Z / np.sqrt(dof)   # whitened cells uncorrelated


def test_version2_falls_back_to_the_quadratic_tail_where_the_cubic_fails():
    s = FieldSampler((300, 300), SEED_LAM, version=2)
    assert s.method == "cutoff" and s.tail == "quadratic" and s.exact
    assert s.max_cov_error < 1e-12


def test_version1_draws_are_unchanged_by_the_noise_buffer():
    """Filling a reused buffer gives the generator's own numbers: version 1 bytes stay."""
    s = FieldSampler((30, 20), 0.2, method="cutoff")
    a = s.sample(np.random.default_rng(9), 3)
    m, n = s.torus
    rng = np.random.default_rng(9)
    ref = []
    for _ in range(2):   # the original code path, allocating its noise each time
        z = rng.standard_normal((m, n, 2), dtype=np.float32).view(np.complex64)[..., 0] * s._sqrt_eig
        ref.append(sfft.fft(sfft.fft(z, axis=0)[:30], axis=1)[:, :20] if 20 / n > 30 / m else
                   sfft.fft(sfft.fft(z, axis=1)[:, :20], axis=0)[:30])
    np.testing.assert_array_equal(a[0], ref[0].real.astype(np.float32))
    np.testing.assert_array_equal(a[2], ref[1].real.astype(np.float32))


def test_dense_reference_sampler_has_target_variance():
    x = dense_cholesky_field((6, 5), 0.3, np.random.default_rng(0), sigma=2.0, count=4000)
    v = float(np.mean(x[:, 0, 0] ** 2))
    assert abs(v - 4.0) < Z * 4.0 * np.sqrt(2 / 4000)


# ---- draw version 3: band-limited spectrum, nugget, stated covariance error --------------
def _band_cov_brute(sampler: FieldSampler, lags: np.ndarray) -> np.ndarray:
    """Covariance of a version-3 draw at integer ``lags`` (n, 2), summed mode by mode from
    the kept amplitudes (not through the sampler's pruned transform), plus the nugget at 0."""
    m, n = sampler.torus
    kx = sampler._band_rows.astype(np.float64)[:, None]
    ky = np.arange(sampler.band[1] + 1, dtype=np.float64)[None, :]
    power = sampler._band_amp.astype(np.float64) ** 2
    out = np.array([float(np.sum(power * np.cos(2 * np.pi * (kx * a / m + ky * b / n))))
                    for a, b in lags])
    return out + sampler.nugget * np.all(lags == 0, axis=1)


@pytest.fixture(scope="module")
def band_seed():
    """The seed's lam on a 300 x 300 grid: a cut-off torus of 2744^2 cells, band-limited."""
    return FieldSampler((300, 300), SEED_LAM, version=3)


def test_version3_keeps_a_small_band_within_its_stated_tolerance(band_seed):
    s = band_seed
    m, n = s.torus
    assert s.method == "cutoff" and s.band is not None and s.nugget > 0
    kept = (2 * s.band[0] + 1) * (s.band[1] + 1)
    assert kept < 0.1 * m * (n // 2 + 1)             # a small part of the modes
    assert s.max_cov_error <= fields.BAND_TOL * (1 + 1e-6)
    lags = np.array([(0, 0), (0, 1), (1, 0), (1, 1), (2, 7), (5, 3), (40, 0), (100, 200), (299, 299)])
    brute = _band_cov_brute(s, lags)
    target = exp_cov(np.hypot(lags[:, 0], lags[:, 1]), SEED_LAM)
    assert abs(brute[0] - 1.0) < 1e-6                 # every cell's variance is exact
    assert np.abs(brute - target).max() <= fields.BAND_TOL * (1 + 1e-6)
    assert np.abs(brute - target).max() > fields.BAND_TOL / 10   # it is an approximation
    # the error sits where the dropped high frequencies live: next to lag 0
    assert abs(brute[1] - target[1]) > abs(brute[-1] - target[-1])


def test_version3_draws_whiten_against_their_stated_covariance():
    """L^-1 x is iid N(0, 1) for L the Cholesky factor of the band covariance plus nugget:
    a wrong amplitude on any column (the pair weighting) or a lost nugget fails it."""
    shape, lam = (30, 24), 0.01
    s = FieldSampler(shape, lam, method="cutoff", version=3)
    m, n = s.torus
    assert s.band[0] < m // 2 and s.band[1] < n // 2 and s.nugget > 0   # really truncated
    ii, jj = np.divmod(np.arange(shape[0] * shape[1]), shape[1])
    di = np.abs(ii[:, None] - ii[None, :]).ravel()
    dj = np.abs(jj[:, None] - jj[None, :]).ravel()
    uniq, inverse = np.unique(np.stack([di, dj], 1), axis=0, return_inverse=True)
    cov = _band_cov_brute(s, uniq)[inverse.ravel()].reshape(ii.size, ii.size)
    chol = np.linalg.cholesky(cov)
    x = s.sample(np.random.default_rng(21), 200)
    y = sla.solve_triangular(chol, x.reshape(len(x), -1).T.astype(np.float64), lower=True)
    dof = y.size
    assert abs(np.mean(y**2) - 1) < Z * np.sqrt(2 / dof)
    assert abs(np.mean(y)) < Z / np.sqrt(dof)
    assert abs(np.mean(y[:-1] * y[1:])) < Z / np.sqrt(dof)
    without = s.sample(np.random.default_rng(21), 200, nugget=False)    # nugget left out
    y = sla.solve_triangular(chol, without.reshape(len(x), -1).T.astype(np.float64), lower=True)
    assert abs(np.mean(y**2) - 1) > Z * np.sqrt(2 / dof)


@pytest.mark.parametrize("shape,lam", [((1, 50), 0.001), ((50, 1), 0.01), ((64, 64), 0.3)])
def test_version3_one_dimensional_and_short_range_grids(shape, lam):
    s = FieldSampler(shape, lam, version=3)
    assert s.max_cov_error <= fields.BAND_TOL * (1 + 1e-6)
    a = s.sample(np.random.default_rng([1, 2]), 3)
    assert a.shape == (3, *shape) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, s.sample(np.random.default_rng([1, 2]), 3))  # pure function
    if lam == 0.3:   # a short correlation length needs the whole spectrum: exact, no nugget
        assert s.nugget == 0 and s.max_cov_error < 1e-9


@pytest.mark.parametrize("shape,lam", [((64, 64), 0.3), ((64, 64), 0.5), ((288, 64), 0.05)])
def test_version3_whole_spectrum_has_no_nugget(shape, lam):
    """Where nothing is dropped the nugget is exactly 0, not FFT round-off whose sign would
    decide whether a grid of white noise is drawn (review finding: (288, 64) at lam 0.05 gave
    2e-16)."""
    s = FieldSampler(shape, lam, version=3)
    m, n = s.torus
    assert s.band == (m // 2, n // 2) and s.nugget == 0.0 and s.max_cov_error < 1e-9
    rng = np.random.default_rng(3)
    s.sample(rng, 1)
    follow = rng.standard_normal()
    rng = np.random.default_rng(3)
    s.sample(rng, 1, nugget=False)
    assert rng.standard_normal() == follow          # no hidden white-noise draw
