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


def test_fallback_to_lstsq_on_non_pd_matrix():
    k = jnp.array([[1.0, 2.0], [2.0, 1.0]])  # indefinite: Cholesky fails
    y = jnp.array([[1.0], [0.0]])
    fit = krr.fit(k, y, 0.0)
    assert fit.method == "lstsq"
    np.testing.assert_allclose(k @ fit.alpha, y, atol=1e-10)


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
