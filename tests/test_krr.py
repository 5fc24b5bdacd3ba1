"""KRR core properties on a handful of points, float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kip_runner.core import krr
from kip_runner.core.kernels import make_kernel_fn


def data(n=8, c=3, seed=0):
    kx, ky = jax.random.split(jax.random.PRNGKey(seed))
    x = jax.random.normal(kx, (n, 4, 4, 1))
    y = jax.nn.one_hot(jax.random.randint(ky, (n,), 0, c), c) - 1.0 / c
    return x, y


def test_interpolates_when_support_is_target_and_reg_vanishes():
    x, y = data()
    k = make_kernel_fn("fc", 1)(x, x)
    alpha = krr.fit(k, y, 1e-10).alpha
    np.testing.assert_allclose(krr.predict(k, alpha), y, atol=1e-6)


def test_ridge_is_scale_invariant():
    x, y = data()
    k = make_kernel_fn("rbf")(x, x)
    a1 = krr.predict(k, krr.fit(k, y, 1e-2).alpha)
    a2 = krr.predict(7.0 * k, krr.fit(7.0 * k, y, 1e-2).alpha)
    np.testing.assert_allclose(a1, a2, rtol=1e-8)


def test_regularize_adds_trace_fraction():
    k = jnp.diag(jnp.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(krr.regularize(k, 0.5), k + 0.5 * 2.0 * jnp.eye(3))


def _near_singular():
    """PSD up to round-off: eigenvalues ~2 and ~-5e-10 (a float64 matrix)."""
    k = jnp.array([[1.0, 1.0], [1.0, 1.0 - 1e-9]], jnp.float64)
    y = jnp.array([[1.0], [0.0]], jnp.float64)
    return k, y


def test_jitter_policy_raises_the_ridge_and_says_so():
    k, y = _near_singular()
    fit = krr.fit(k, y, 1e-12)  # ridge 1e-12 * tr/n < 5e-10: the requested ridge fails
    assert fit.method == "cholesky+jitter"
    assert fit.reg == pytest.approx(1e-9)  # 1e-12 * 10^3: the first tenfold step that works
    # the answer is KRR at the recorded ridge, not some other estimator
    k_reg = krr.regularize(k, fit.reg)
    np.testing.assert_allclose(k_reg @ fit.alpha, y, atol=1e-9)
    ok = krr.fit(k, y, 1e-6)
    assert ok.method == "cholesky" and ok.reg == 1e-6


def test_strict_policy_fails_with_one_actionable_line():
    k, y = _near_singular()
    with pytest.raises(krr.SolveError, match=r"not positive definite at reg=1e-12.*larger reg"):
        krr.fit(k, y, 1e-12, policy="strict")
    with pytest.raises(ValueError, match="solve policy"):
        krr.fit(k, y, 1e-6, policy="lstsq")


def test_jitter_gives_up_after_its_last_step():
    k = jnp.array([[1.0, 11.0], [11.0, 1.0]])  # eigenvalue -10: no ridge up to 1 * tr/n helps
    with pytest.raises(krr.SolveError, match="nor at reg=1"):
        krr.fit(k, jnp.ones((2, 1)), 1e-6)


def linear_near_threshold():
    """Linear kernel inputs (n=96 points, d=64, offset 2; float32 values) whose float32 K_ss
    is not positive definite to within the paper's ridge while the float64 one is (the
    pattern of MNIST linear at n=640, PAPER.md §8)."""
    rng = np.random.default_rng(0)
    return (rng.normal(size=(96, 64)) + 2.0).astype(np.float32)  # [96, 64]


def test_float32_kernel_is_not_pd_where_float64_is():
    x = linear_near_threshold()
    k32 = jnp.asarray(x) @ jnp.asarray(x).T  # [96, 96] float32
    k64 = jnp.asarray(x, jnp.float64) @ jnp.asarray(x, jnp.float64).T  # [96, 96] float64
    assert k32.dtype == jnp.float32 and k64.dtype == jnp.float64
    with pytest.raises(krr.SolveError, match="float32.*use x64=true"):
        krr.factorize(k32, 1e-6, "strict")
    assert krr.factorize(k64, 1e-6, "strict").method == "cholesky"


def test_non_finite_kernel_raises():
    with pytest.raises(ValueError, match="non-finite"):
        krr.fit(jnp.array([[jnp.nan]]), jnp.ones((1, 1)), 1e-6)


def test_metrics_and_loss():
    y = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    pred = jnp.array([[0.8, 0.1], [0.7, 0.2]])
    assert float(krr.accuracy(pred, y)) == 0.5
    np.testing.assert_allclose(krr.mse(pred, y), np.mean((pred - y) ** 2))
    x, ys = data()
    k = make_kernel_fn("fc", 1)(x, x)
    assert float(krr.kip_loss(k, k, ys, ys, 1e-10)) < 1e-10
