"""Label Solve core (PAPER.md §3) by properties on a handful of points, float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kip_runner.core import krr
from kip_runner.core import label_solve as ls
from kip_runner.core.kernels import make_kernel_fn

REG = 1e-6


def problem(n_s=6, n_t=16, c=3, seed=0, arch="fc", depth=1, shape=(4, 4, 1)):
    ks, kt, ky = jax.random.split(jax.random.PRNGKey(seed), 3)
    x_s = jax.random.normal(ks, (n_s, *shape))  # [n_s,H,W,C]
    x_t = jax.random.normal(kt, (n_t, *shape))  # [n_t,H,W,C]
    y_t = jax.nn.one_hot(jax.random.randint(ky, (n_t,), 0, c), c) - 1.0 / c  # [n_t, c]
    k = make_kernel_fn(arch, depth)
    return k(x_s), k(x_t, x_s), y_t


def direct_pinv(k_ss, k_ts, y_t, reg=REG):
    """float64 numpy reference: pinv(K_ts (K_ss + λI)^-1) y_t with an explicit inverse."""
    k_ss, k_ts = np.asarray(k_ss, np.float64), np.asarray(k_ts, np.float64)
    lam = reg * np.trace(k_ss) / k_ss.shape[0]
    a = k_ts @ np.linalg.inv(k_ss + lam * np.eye(k_ss.shape[0]))  # [n_t, n_s]
    return np.linalg.pinv(a) @ np.asarray(y_t), a


def streamed(k_ss, k_ts, y_t, block, reg=REG):
    op = ls.make_operator(k_ss, reg)
    r = ls.qr_init(k_ss.shape[0], y_t.shape[1], jnp.float64)
    for lo in range(0, k_ts.shape[0], block):
        r = ls.qr_update(r, op(k_ts[lo:lo + block]), y_t[lo:lo + block])
    return r


@pytest.mark.parametrize("n_s,n_t", [(4, 4), (6, 16), (8, 12), (16, 16)])
def test_equals_direct_float64_pinv(n_s, n_t):
    k_ss, k_ts, y_t = problem(n_s, n_t)
    want, _ = direct_pinv(k_ss, k_ts, y_t)
    got = ls.solve_labels(k_ss, k_ts, y_t, REG)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("block", [1, 5, 16])
def test_streamed_qr_equals_in_memory_solve_and_loss(block):
    k_ss, k_ts, y_t = problem(6, 16)
    r = streamed(k_ss, k_ts, y_t, block)
    assert r.shape[1] == 6 + 3 and r.shape[0] <= 6 + 3
    y_s = ls.qr_solve(r, 6, 16)
    np.testing.assert_allclose(y_s, ls.solve_labels(k_ss, k_ts, y_t, REG), rtol=1e-7,
                               atol=1e-9)
    for labels in (y_s, y_t[:6]):
        np.testing.assert_allclose(ls.qr_loss(r, labels, 16),
                                   krr.kip_loss(k_ss, k_ts, labels, y_t, REG), rtol=1e-9)


def test_solved_labels_are_a_stationary_point_and_beat_the_initial_labels():
    k_ss, k_ts, y_t = problem(6, 16, seed=1)
    y_init = y_t[:6]  # the targets' own labels as a natural initialisation
    y_s = ls.solve_labels(k_ss, k_ts, y_t, REG)

    def loss(y):
        return krr.kip_loss(k_ss, k_ts, y, y_t, REG)
    grad = jax.grad(loss)(y_s)  # [n_s, C]
    grad_init = jax.grad(loss)(y_init)
    assert float(jnp.max(jnp.abs(grad))) < 1e-8 * max(1.0, float(jnp.max(jnp.abs(grad_init))))
    assert float(loss(y_s)) <= float(loss(y_init))
    # A quadratic at its minimum: any perturbation does not lower the loss.
    for seed in range(3):
        d = 1e-3 * jax.random.normal(jax.random.PRNGKey(seed), y_s.shape)
        assert float(loss(y_s + d)) >= float(loss(y_s)) - 1e-14


def test_underdetermined_min_norm_case():
    # n_t < n_s: infinitely many exact solutions; LS picks the minimum-norm one.
    n_s, n_t = 12, 5
    k_ss, k_ts, y_t = problem(n_s, n_t, seed=2)
    want, a = direct_pinv(k_ss, k_ts, y_t)
    got = np.asarray(ls.solve_labels(k_ss, k_ts, y_t, REG))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(a @ got, y_t, atol=1e-8)  # interpolates the targets
    null = np.linalg.svd(a)[2][n_t:]  # [n_s - n_t, n_s] basis of the null space of A
    assert np.abs(null @ got).max() < 1e-8  # no component in the null space: minimum norm
    r = streamed(k_ss, k_ts, y_t, block=2)
    np.testing.assert_allclose(ls.qr_solve(r, n_s, n_t), got, rtol=1e-6, atol=1e-8)
    assert float(ls.qr_loss(r, got, n_t)) < 1e-15


def test_more_targets_do_not_change_a_consistent_problem():
    # Targets labelled by a KRR predictor of some support labels are fit exactly; LS
    # recovers those labels (A injective when n_t >= n_s).
    k_ss, k_ts, _ = problem(5, 14, seed=3)
    y_true = jax.random.normal(jax.random.PRNGKey(9), (5, 3))  # [n_s, C]
    y_t = krr.predict(k_ts, krr.solve_pd(krr.regularize(k_ss, REG), y_true))  # [n_t, C]
    np.testing.assert_allclose(ls.solve_labels(k_ss, k_ts, y_t, REG), y_true, rtol=1e-5,
                               atol=1e-6)


def test_myrtle5_small_case_matches_direct_solve():
    # The conv kernel with pooling on MNIST-shaped inputs (Myrtle-5 needs 8 | H, W).
    k_ss, k_ts, y_t = problem(4, 6, seed=4, arch="myrtle", depth=5, shape=(8, 8, 1))
    want, _ = direct_pinv(k_ss, k_ts, y_t)
    r = streamed(k_ss, k_ts, y_t, block=4)
    np.testing.assert_allclose(ls.qr_solve(r, 4, 6), want, rtol=1e-6, atol=1e-8)


def test_non_finite_kernel_raises():
    k_ss, _, _ = problem(4, 4)
    with pytest.raises(ValueError, match="non-finite"):
        ls.make_operator(k_ss.at[0, 0].set(jnp.nan), REG)


def test_scale_invariance():
    k_ss, k_ts, y_t = problem(6, 10, seed=5)
    np.testing.assert_allclose(ls.solve_labels(7.0 * k_ss, 7.0 * k_ts, y_t, REG),
                               ls.solve_labels(k_ss, k_ts, y_t, REG), rtol=1e-6, atol=1e-8)
