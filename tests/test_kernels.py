"""Kernel zoo properties and a closed-form cross-check of the FC1 NNGP/NTK."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kip_runner.core import kernels
from kip_runner.core.kernels import kernel_matrix, make_kernel_fn

ALL = [("fc", 1), ("fc", 2), ("fc", 3), ("conv", 1), ("conv", 2), ("conv", 3), ("myrtle", 5),
       ("rbf", 1), ("linear", 1)]


def images(n, side=8, ch=1, seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), (n, side, side, ch))  # [n,s,s,c]


@pytest.mark.parametrize("arch,depth", ALL)
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_symmetric_psd_and_default_second_argument(arch, depth, kind):
    if arch in ("rbf", "linear") and kind == "nngp":
        pytest.skip("kind applies to neural kernels only")
    k = make_kernel_fn(arch, depth, kind)
    x = images(6)
    kxx = np.asarray(k(x, x))
    np.testing.assert_allclose(kxx, kxx.T, rtol=1e-6, atol=1e-8)
    assert np.linalg.eigvalsh(kxx).min() > -1e-8 * np.abs(kxx).max()
    np.testing.assert_allclose(np.asarray(k(x, None)), kxx, rtol=1e-6, atol=1e-8)


def arccos_fc1(x1, x2, w_var, b_var):
    """FC1 ReLU NNGP and NTK in closed form (Cho & Saul arc-cosine kernel of degree 1/0)."""
    a, b = x1.reshape(len(x1), -1), x2.reshape(len(x2), -1)
    d = a.shape[1]
    k0 = w_var * a @ b.T / d + b_var  # [n1, n2]
    k0a = w_var * jnp.sum(a * a, -1) / d + b_var  # [n1]
    k0b = w_var * jnp.sum(b * b, -1) / d + b_var  # [n2]
    norm = jnp.sqrt(k0a[:, None] * k0b[None, :])
    cos = jnp.clip(k0 / norm, -1.0, 1.0)
    theta = jnp.arccos(cos)
    relu_cov = norm / (2 * jnp.pi) * (jnp.sin(theta) + (jnp.pi - theta) * cos)
    relu_dcov = (jnp.pi - theta) / (2 * jnp.pi)
    nngp = w_var * relu_cov + b_var
    ntk = nngp + w_var * k0 * relu_dcov
    return nngp, ntk


def test_fc1_matches_arccos_closed_form():
    x1, x2 = images(5, seed=1), images(7, seed=2)
    nngp, ntk = arccos_fc1(x1, x2, 2.0, 1e-4)
    np.testing.assert_allclose(make_kernel_fn("fc", 1, "nngp")(x1, x2), nngp, rtol=1e-6)
    np.testing.assert_allclose(make_kernel_fn("fc", 1, "ntk")(x1, x2), ntk, rtol=1e-6)


def test_rbf_and_linear_formulas():
    x1, x2 = images(3, seed=3), images(4, seed=4)
    a, b = np.asarray(x1).reshape(3, -1), np.asarray(x2).reshape(4, -1)
    sq = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(make_kernel_fn("rbf", gamma=0.5)(x1, x2),
                               np.exp(-0.5 * sq / a.shape[1]), rtol=1e-6)
    np.testing.assert_allclose(make_kernel_fn("linear")(x1, x2), a @ b.T, rtol=1e-6)


@pytest.mark.parametrize("block", [1, 3, 4, 100])
def test_blocked_kernel_matrix_equals_direct(block):
    k = make_kernel_fn("conv", 1, "ntk")
    x1, x2 = images(7, seed=5), images(5, seed=6)
    np.testing.assert_allclose(kernel_matrix(k, x1, x2, block), k(x1, x2), rtol=1e-6)
    np.testing.assert_allclose(kernel_matrix(k, x1, None, block), k(x1, x1), rtol=1e-6)


def test_blocked_kernel_reports_progress():
    seen = []
    kernel_matrix(make_kernel_fn("fc", 1), images(5), images(4), 2,
                  on_block=lambda d, t: seen.append((d, t)))
    assert seen == [(i, 6) for i in range(1, 7)]


def test_standard_parameterization_depends_on_width():
    x = images(4)
    k128 = make_kernel_fn("fc", 2, "ntk", "standard", width=128)(x, x)
    k1024 = make_kernel_fn("fc", 2, "ntk", "standard", width=1024)(x, x)
    assert not np.allclose(k128, k1024)
    ntk128 = make_kernel_fn("fc", 2, "ntk", "ntk", width=128)(x, x)
    ntk1024 = make_kernel_fn("fc", 2, "ntk", "ntk", width=1024)(x, x)
    np.testing.assert_allclose(ntk128, ntk1024)


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_wide_random_networks_have_the_kernel_as_covariance(parameterization):
    # the finite net (core.nn) has the kernels' parameterisation and initialisation: over
    # random inits, its outputs' covariance is the NNGP (a Monte Carlo check, 2000 nets)
    from kip_runner.core.nn import init_params, make_net
    x = images(3, side=4)
    net = make_net("fc", 2, 512, parameterization=parameterization, n_out=1)
    keys = jax.random.split(jax.random.PRNGKey(0), 2000)  # [S, 2]
    out = jax.jit(lambda ks: jax.vmap(lambda p: net.apply_fn(p, x)[:, 0])(
        init_params(net, ks, x.shape, jnp.float64)))(keys)  # [S, n]
    emp = np.asarray(out.T @ out / out.shape[0])  # [n, n]
    ref = np.asarray(make_kernel_fn("fc", 2, "nngp", parameterization, width=512)(x, x))
    np.testing.assert_allclose(emp, ref, atol=0.1 * np.abs(ref).max())


def test_identical_inputs_have_theta_zero():
    # a duplicate across the two batches gives the self value k(x, x) whatever the rounding of
    # the cross and self covariances (the gap below 16 ulps is taken as 0)
    x1, x2 = images(4, seed=7), images(3, seed=8)
    x2 = x2.at[1].set(x1[2])
    for arch, depth in (("fc", 3), ("conv", 2), ("myrtle", 5)):
        k = jax.jit(make_kernel_fn(arch, depth, "ntk"))  # eagerly ~20 s (Myrtle op by op)
        got = np.asarray(k(x1, x2))
        assert got[2, 1] == pytest.approx(float(np.asarray(k(x1[2:3]))[0, 0]), rel=1e-13)


def test_zero_images_have_finite_kernels_and_derivatives():
    x = images(3).at[0].set(0.0)
    for arch, depth in (("fc", 2), ("conv", 1), ("myrtle", 5)):
        k = make_kernel_fn(arch, depth, "ntk")
        assert np.isfinite(np.asarray(jax.jit(k)(x, x))).all()
        grad = jax.jit(jax.grad(lambda a: jnp.sum(k(a, x))))(x)  # [3, s, s, 1]
        assert np.isfinite(np.asarray(grad)).all()


@pytest.mark.parametrize("bad,msg", [
    (dict(arch="resnet"), "unknown kernel arch"),
    (dict(arch="fc", kind="gp"), "ntk or nngp"),
    (dict(arch="myrtle", depth=6), "Myrtle depth"),
    (dict(arch="fc", parameterization="mup"), "parameterization"),
])
def test_bad_kernel_arguments_raise(bad, msg):
    with pytest.raises(ValueError, match=msg):
        make_kernel_fn(**bad)


@pytest.mark.parametrize("dtype,tol", [(jnp.float64, 1e-15), (jnp.float32, 2e-7)])
def test_asin_polynomial_and_angle_from_sin_cos(dtype, tol):
    with jax.enable_x64(dtype == jnp.float64):
        z = np.linspace(1e-6, np.sqrt(0.5), 5001)
        got = np.asarray(kernels.asin_small(jnp.asarray(z, dtype)), np.float64)
        want = np.arcsin(np.asarray(z, dtype).astype(np.float64))
        assert np.max(np.abs(got - want) / want) < tol
        theta = np.linspace(0.0, np.pi, 4001)
        s, c = np.sin(theta), np.cos(theta)
        got = np.asarray(kernels.angle_sin_cos(jnp.asarray(s, dtype), jnp.asarray(c, dtype)))
        assert np.max(np.abs(got - np.arctan2(np.asarray(s, dtype), np.asarray(c, dtype)))) \
            < 8 * np.finfo(dtype).eps
        zero = jnp.zeros((), dtype)
        assert float(kernels.angle_sin_cos(zero, zero)) == pytest.approx(np.pi / 2)


def test_relu_map_and_its_vjp_equal_autodiff_through_arccos():
    """relu_map's closed-form VJP against autodiff of the reference map (`arccos`: safe_sqrt
    and the angle's custom JVPs) on a diag layout with identical rows (root 0), a zero image
    (all variances 0) and a near-collinear pair, float64."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        x = rng.normal(size=(5, 6, 4, 4))  # 5 images of 6 features per pixel (4x4)
        x[1] = x[0]  # identical inputs
        x[2] = 0.0  # a zero image
        x[3] = x[4] * (1 + 1e-7) + 1e-9 * rng.normal(size=x[4].shape)  # near-collinear
        x = jnp.asarray(x)
        x1, x2 = x, x[::-1]
        cross = jnp.einsum("afhw,bfhw->abhw", x1, x2) / 6  # [5, 5, 4, 4]
        v1 = jnp.einsum("afhw,afhw->ahw", x1, x1) / 6  # [5, 4, 4]
        v2 = jnp.einsum("afhw,afhw->ahw", x2, x2) / 6
        ntk = 0.3 + cross ** 2

        def ours(c, t, a, b):
            nngp, tk = kernels.relu_map(c, t, a[:, None], b[None, :])
            return jnp.sum(jnp.sin(nngp)) + jnp.sum(jnp.cos(tk))

        def reference(c, t, a, b):
            nngp, dot = kernels.arccos(c, a[:, None] * b[None, :], kernels.Ops())
            return jnp.sum(jnp.sin(nngp)) + jnp.sum(jnp.cos(t * dot))

        args = (cross, ntk, v1, v2)
        assert float(ours(*args)) == pytest.approx(float(reference(*args)), rel=1e-14)
        got = jax.grad(ours, argnums=(0, 1, 2, 3))(*args)
        want = jax.grad(reference, argnums=(0, 1, 2, 3))(*args)
        for g, w in zip(got, want):
            assert np.all(np.isfinite(np.asarray(g)))
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-9,
                                       atol=1e-9 * float(np.max(np.abs(np.asarray(w)))))


def test_scaled_angle_has_arctan2s_value_and_exact_derivative():
    with jax.enable_x64(True):
        rng = np.random.default_rng(5)
        y = jnp.asarray(np.abs(rng.normal(size=200)))
        x = jnp.asarray(rng.normal(size=200))
        inv = 1 / jnp.sqrt(x * x + y * y)
        ydot, xdot = jnp.asarray(rng.normal(size=200)), jnp.asarray(rng.normal(size=200))
        val, tan = jax.jvp(kernels.scaled_angle, (y, x, inv), (ydot, xdot, jnp.ones(200)))
        ref_val, ref_tan = jax.jvp(jnp.arctan2, (y, x), (ydot, xdot))
        np.testing.assert_allclose(np.asarray(val), np.asarray(ref_val), rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(np.asarray(tan), np.asarray(ref_tan), rtol=1e-12)
        zero = jnp.zeros(())
        v0, t0 = jax.jvp(kernels.scaled_angle, (zero, zero, zero), (1.0 + zero, 1.0 + zero, zero))
        assert float(v0) == pytest.approx(np.pi / 2) and float(t0) == 0.0


def test_input_covariance_of_patches_is_the_first_windowed_covariance():
    """A(Σ⁰) from the inputs' 3×3 patches equals the 3×3 window over the per-pixel covariance
    (zero outside the image) in both conv layouts, on a non-square image so that H and W
    cannot be swapped unnoticed; pixel (h, w) of the pixel-major diag layout is row h·W + w.
    float64 (conftest)."""
    x1 = np.random.default_rng(0).normal(size=(3, 5, 4, 2))  # [n1, H, W, C]
    x2 = np.random.default_rng(1).normal(size=(2, 5, 4, 2))
    for layout, n_spatial in (("diag", 1), ("full", 4)):
        plain = kernels.input_cov(jnp.asarray(x1), jnp.asarray(x2), layout)
        got = kernels.input_cov(kernels.patches(x1), kernels.patches(x2), layout)
        for name in ("nngp", "var1", "var2"):
            ref = kernels._window_mean(getattr(plain, name), n_spatial, (5, 4))
            np.testing.assert_allclose(getattr(got, name), ref, rtol=1e-12, atol=1e-12,
                                       err_msg=f"{layout} {name}")
    # the diag layout's pixel (h, w) = (4, 3), the corner: 4 taps inside the image
    diag = kernels.input_cov(kernels.patches(x1), kernels.patches(x2), "diag").nngp
    taps = [(h, w) for h in (3, 4) for w in (2, 3)]
    corner = sum(x1[:, h, w] @ x2[:, h, w].T for h, w in taps) / (9 * 2)  # [n1, n2]
    np.testing.assert_allclose(diag[4 * 4 + 3], corner, rtol=1e-12)
