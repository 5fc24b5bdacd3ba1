"""Unit tier: core.kip (Algorithm 1), core.augment, the freeze transformation and the
checkpoint files, on 4-16 synthetic points."""

import numpy as np
import jax
import jax.numpy as jnp
import optax
import pytest

from kip_runner.core import kernels, kip
from kip_runner.core.augment import AugmentArgs, augment, check_augment_args
from kip_runner.core.corrupt import corrupt, freeze
from kip_runner.core.kernels import make_kernel_fn
from kip_runner.errors import KipctlError
from kip_runner.runs.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

N_CLASSES = 4


def _data(n=16, side=4, seed=0, dtype=jnp.float64):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % N_CLASSES  # [n]
    protos = rng.normal(size=(N_CLASSES, side, side, 1))
    x = protos[labels] + 0.5 * rng.normal(size=(n, side, side, 1))  # [n, s, s, 1]
    y = np.eye(N_CLASSES)[labels] - 1.0 / N_CLASSES  # [n, C]
    return kip.TargetData(jnp.asarray(x, dtype), jnp.asarray(y, dtype),
                          jnp.asarray(labels, jnp.int32))


def _setup(kernel_fn=None, learn_labels=False, rho=0.0, lr=0.05, n_s=4, target_batch=8,
           augment_args=None, seed=0):
    data = _data()
    x0, y0 = data.x[:n_s], data.y[:n_s]
    corrupted = jnp.zeros(x0.shape, bool)
    if rho > 0:
        x0, corrupted = corrupt(jax.random.PRNGKey(seed + 1), x0, rho, "noise")
    tx = kip.make_optimizer(lr, kip.frozen_mask(corrupted, N_CLASSES, learn_labels))
    state = kip.init_state(x0, y0, tx)
    kernel_fn = kernel_fn or make_kernel_fn("rbf")  # compiles faster than the FC NTK
    step = kip.make_kip_step(kernel_fn, tx, reg=1e-6, target_batch=target_batch,
                             n_classes=N_CLASSES, augment_args=augment_args)
    return state, step, data, corrupted


def _run(state, step, data, n, key=jax.random.PRNGKey(0)):
    losses = []
    for _ in range(n):
        state, m = step(state, key, data)
        losses.append(float(m["loss"]))
    return state, losses


def test_kip_loss_matches_a_hand_computed_reference():
    d = _data(8)
    kfn = make_kernel_fn("rbf")
    loss, acc = kip.kip_loss(kfn, d.x[:4], d.y[:4], d.x, d.y, 1e-6)
    k_ss, k_ts = np.asarray(kfn(d.x[:4])), np.asarray(kfn(d.x, d.x[:4]))
    k_reg = k_ss + 1e-6 * np.trace(k_ss) / 4 * np.eye(4)
    pred = k_ts @ np.linalg.solve(k_reg, np.asarray(d.y[:4]))
    ref = 0.5 * np.mean(np.sum((np.asarray(d.y) - pred) ** 2, -1))
    assert np.isclose(float(loss), ref, rtol=1e-6)
    # the support interpolates itself: loss on the support alone is ~0
    self_loss, self_acc = kip.kip_loss(kfn, d.x[:4], d.y[:4], d.x[:4], d.y[:4], 1e-9)
    assert float(self_loss) < 1e-6 and float(self_acc) == 1.0


@pytest.mark.parametrize("arch", ["fc", "rbf"])
def test_loss_decreases(arch):
    state, step, data, _ = _setup(make_kernel_fn(arch, 1), target_batch=16)
    _, losses = _run(state, step, data, 30)
    assert losses[-1] < 0.7 * losses[0], losses


def test_learn_labels_updates_labels_only_when_asked():
    for learn in (False, True):
        state, step, data, _ = _setup(learn_labels=learn)
        y0 = np.asarray(state.params["y"]).copy()
        state, _ = _run(state, step, data, 5)
        changed = not np.array_equal(np.asarray(state.params["y"]), y0)
        assert changed == learn


def test_frozen_pixels_are_bit_identical_after_n_steps():
    state, step, data, corrupted = _setup(rho=0.5, lr=0.1)
    x0 = np.asarray(state.params["x"]).copy()
    state, _ = _run(state, step, data, 20)
    x = np.asarray(state.params["x"])
    mask = np.asarray(corrupted)
    assert mask.mean() == pytest.approx(0.5)
    assert np.array_equal(x[mask].view(np.uint64), x0[mask].view(np.uint64))
    assert np.all(x[~mask] != x0[~mask])  # everything else moved


def test_freeze_is_an_optax_transformation_after_adam():
    params = {"a": jnp.ones(3)}
    tx = optax.chain(optax.adam(0.1), freeze({"a": jnp.array([True, False, True])}))
    st = tx.init(params)
    upd, st = tx.update({"a": jnp.ones(3)}, st, params)
    assert np.array_equal(np.asarray(upd["a"]) == 0, [True, False, True])


def test_step_compiles_once():
    traces = []
    base = make_kernel_fn("fc", 1)

    def counted(x1, x2=None):
        traces.append(1)  # Python runs only while the step is traced
        return base(x1, x2)
    state, step, data, _ = _setup(counted)
    state, _ = _run(state, step, data, 1)
    assert len(traces) == 2  # K_ss and K_ts, traced once
    state, _ = _run(state, step, data, 6)
    assert len(traces) == 2  # no retrace over 6 more steps (step counter is traced)


def test_determinism_for_a_seed_and_key_streams():
    s1, step1, data, _ = _setup(seed=3)
    s2, step2, _, _ = _setup(seed=3)
    s1, l1 = _run(s1, step1, data, 5)
    s2, l2 = _run(s2, step2, data, 5)
    assert l1 == l2 and np.array_equal(np.asarray(s1.params["x"]), np.asarray(s2.params["x"]))
    s3, step3, _, _ = _setup(seed=3)
    _, l3 = _run(s3, step3, data, 5, key=jax.random.PRNGKey(1))
    assert l3 != l1  # another loop key samples other target batches


def test_resumed_state_continues_identically():
    s, step, data, _ = _setup(rho=0.3)
    full, _ = _run(s, step, data, 6)
    s, step, data, _ = _setup(rho=0.3)
    half, _ = _run(s, step, data, 3)
    host = jax.device_get(half)  # what a checkpoint holds
    resumed, _ = _run(jax.tree_util.tree_map(jnp.asarray, host), step, data, 3)
    assert int(resumed.step) == 6
    assert np.array_equal(np.asarray(resumed.params["x"]), np.asarray(full.params["x"]))


def test_float32_step_stays_float32_under_x64():
    state, step, data, _ = _setup()
    data32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32) if a.dtype.kind == "f"
                                    else a, data)
    tx = kip.make_optimizer(0.01, kip.frozen_mask(jnp.zeros((4, 4, 4, 1), bool), 4, False))
    st = kip.init_state(data32.x[:4], data32.y[:4], tx)
    step = kip.make_kip_step(make_kernel_fn("fc", 1), tx, reg=1e-6, target_batch=8,
                             n_classes=N_CLASSES)
    st, m = step(st, jax.random.PRNGKey(0), data32)
    assert st.params["x"].dtype == jnp.float32 and m["loss"].dtype == jnp.float32


def test_augment_shapes_ranges_and_determinism():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(6, 8, 8, 3)), jnp.float32)
    args = AugmentArgs(flip=True, max_shift=0.1, max_rotate=10.0, channel_shift=0.1)
    a = augment(jax.random.PRNGKey(0), x, args)
    b = augment(jax.random.PRNGKey(0), x, args)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(x))
    # bilinear resampling and constant-0 fill never leave the input range (+ channel shift)
    assert float(jnp.max(jnp.abs(a))) <= float(jnp.max(jnp.abs(x))) + 0.1 + 1e-5
    # zero ranges are the identity
    same = augment(jax.random.PRNGKey(1), x, AugmentArgs(False, 0.0, 0.0, 0.0))
    assert np.allclose(np.asarray(same), np.asarray(x), atol=1e-5)
    with pytest.raises(ValueError, match="shift"):
        check_augment_args(AugmentArgs(max_shift=1.5))


def test_augmented_step_runs_and_learns():
    state, step, data, _ = _setup(augment_args=AugmentArgs(max_shift=0.1, max_rotate=10.0),
                                  target_batch=16)
    _, losses = _run(state, step, data, 20)
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_checkpoint_roundtrip_and_refusals(tmp_path):
    state, step, data, _ = _setup(rho=0.25)
    state, _ = _run(state, step, data, 2)
    host = jax.device_get(state)
    save_checkpoint(tmp_path, 2, host, "abc", {"loss": 1.0})
    path = latest_checkpoint(tmp_path)
    assert path.name == "step_000002.npz" and (tmp_path / "LATEST").read_text().strip() == \
        path.name
    ck = load_checkpoint(path, host, "abc")
    assert ck.step == 2 and ck.meta == {"loss": 1.0}
    for a, b in zip(jax.tree_util.tree_leaves(ck.tree), jax.tree_util.tree_leaves(host)):
        assert np.array_equal(a, np.asarray(b))
    with pytest.raises(KipctlError, match="different config"):
        load_checkpoint(path, host, "other")
    with pytest.raises(KipctlError, match="expected"):
        load_checkpoint(path, {"x": np.zeros(3)}, "abc")
    assert latest_checkpoint(tmp_path / "none") is None


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_gram_kernel_is_the_kernel_fn_and_exact_at_identical_inputs(parameterization):
    rng = np.random.default_rng(0)
    x1 = jnp.asarray(rng.normal(size=(7, 4, 4, 2)))
    x2 = jnp.asarray(rng.normal(size=(5, 4, 4, 2))).at[0].set(x1[0])  # an identical pair
    ref = make_kernel_fn("fc", 2, "ntk", parameterization, width=32)(x1, x2)
    gram = kip.gram_kernel("fc", 2, "ntk", parameterization, 32, width=32)
    f1, f2 = x1.reshape(7, -1), x2.reshape(5, -1)
    # norms from a matmul's diagonal, not a sum of squares: other rounding, same value
    n1 = jnp.diagonal(f1 @ f1.T)
    got = gram(f1 @ f2.T, n1, jnp.sum(f2 * f2, -1))
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-12)
    # identical inputs: theta = 0 exactly, so k(x1[0], x2[0]) is the diagonal k(x, x)
    assert float(got[0, 0]) == pytest.approx(float(make_kernel_fn(
        "fc", 2, "ntk", parameterization, width=32)(x1[:1])[0, 0]), rel=1e-14)
    assert kip.gram_kernel("conv", 1, "ntk", "ntk", 32) is None


@pytest.mark.parametrize("augment_args", [None, AugmentArgs()])
def test_gram_step_matches_the_kernel_fn_step(augment_args):
    # with augmentation the gram step runs three jitted calls (the augmented batch first);
    # split=False (the GPU default) runs the kernel_fn step even when a gram_fn is given
    data = _data()
    data = kip.target_data(data.x, data.y, data.labels)
    out = []
    for gram, split in ((None, None), (kip.gram_kernel("fc", 1, "ntk", "ntk", 16), True),
                        (kip.gram_kernel("fc", 1, "ntk", "ntk", 16), False)):
        tx = kip.make_optimizer(0.05, kip.frozen_mask(jnp.zeros((4, 4, 4, 1), bool), 4, False))
        state = kip.init_state(data.x[:4], data.y[:4], tx)
        step = kip.make_kip_step(make_kernel_fn("fc", 1), tx, reg=1e-6, target_batch=8,
                                 n_classes=N_CLASSES, augment_args=augment_args,
                                 gram_fn=gram, split=split)
        assert hasattr(step, "first") == bool(split)
        state, losses = _run(state, step, data, 5)
        out.append((np.asarray(state.params["x"]), losses))
    for x, losses in out[1:]:
        np.testing.assert_allclose(out[0][1], losses, rtol=1e-7)
        np.testing.assert_allclose(out[0][0], x, atol=1e-7)


def test_float32_angle_is_accurate_and_has_the_exact_derivative():
    rng = np.random.default_rng(0)
    y = np.abs(rng.normal(size=10000)).astype(np.float32)
    x = rng.normal(size=10000).astype(np.float32)
    y[:4], x[:2] = 0.0, 0.0  # (0, 0) -> pi/2 as neural-tangents; (0, x) -> 0 or pi
    got = np.asarray(kernels.angle(jnp.asarray(y), jnp.asarray(x)))
    ref = np.where((x == 0) & (y == 0), np.pi / 2, np.arctan2(y.astype(float), x))
    assert got.dtype == np.float32 and np.max(np.abs(got - ref)) < 1e-6
    dy = np.asarray(jax.grad(lambda a: jnp.sum(kernels.angle(a, jnp.asarray(x[4:]))))(
        jnp.asarray(y[4:])))
    np.testing.assert_allclose(dy, x[4:] / (x[4:] ** 2 + y[4:] ** 2), rtol=1e-5)


def _plain_gram_loss(gram, xs, ys, xt, yt, reg):
    """The loss with reverse-mode autodiff throughout (no custom VJPs): the reference."""
    xs, xt = xs.reshape(xs.shape[0], -1), xt.reshape(xt.shape[0], -1)
    ns, nt = jnp.sum(xs * xs, -1), jnp.sum(xt * xt, -1)
    k_ss, k_ts = gram(xs @ xs.T, ns, ns), gram(xt @ xs.T, nt, ns)
    k_ss = 0.5 * (k_ss + k_ss.T)
    k_reg = k_ss + reg * jnp.trace(k_ss) / k_ss.shape[0] * jnp.eye(k_ss.shape[0])
    pred = k_ts @ jnp.linalg.solve(k_reg, ys)
    return 0.5 * jnp.mean(jnp.sum((yt - pred) ** 2, -1))


@pytest.mark.parametrize("arch,depth,kind", [("fc", 1, "ntk"), ("fc", 3, "ntk"),
                                             ("fc", 2, "nngp"), ("rbf", 1, "ntk"),
                                             ("linear", 1, "ntk")])
def test_gram_loss_gradient_matches_plain_autodiff(arch, depth, kind):
    # target_gram_block's and solve_sym_pd's hand-written VJPs against autodiff, float64,
    # with and without precomputed target norms. A large ridge keeps K_ss well conditioned
    # (LU and Cholesky solves then agree), and the 1/sqrt(c1 c2 - nngp^2) factors of the FC
    # derivatives amplify rounding-order differences to ~1e-9 relative.
    d = _data(16)
    xs, ys, xt, yt = d.x[:5], d.y[:5], d.x[5:], d.y[5:]
    gram = kip.gram_kernel(arch, depth, kind, "ntk", 16)
    ref_val, ref = jax.value_and_grad(_plain_gram_loss, argnums=(1, 2))(gram, xs, ys, xt, yt,
                                                                       0.1)
    nt = jnp.sum(xt.reshape(11, -1) ** 2, -1)
    for norms in (None, nt):
        fn = jax.jit(jax.value_and_grad(lambda a, b: kip.gram_kip_loss(gram, a, b, xt, yt, 0.1,
                                                                         norms)[0], (0, 1)))
        val, got = fn(xs, ys)
        assert np.isclose(float(val), float(ref_val), rtol=1e-10)
        for g, r in zip(got, ref):
            scale = float(jnp.max(jnp.abs(r)))
            np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-6,
                                       atol=1e-8 * scale)


def test_solve_sym_pd_vjp_matches_autodiff_of_solve():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(6, 6))
    k = jnp.asarray(a @ a.T + 0.5 * np.eye(6))  # [6, 6] symmetric PD
    y, w = jnp.asarray(rng.normal(size=(6, 3))), jnp.asarray(rng.normal(size=(6, 3)))

    def loss(solve, k, y):
        k = 0.5 * (k + k.T)  # callers symmetrise, so the cotangent is projected the same way
        return jnp.sum(w * solve(k, y) ** 2)
    got = jax.grad(loss, (1, 2))(kip.solve_sym_pd, k, y)
    ref = jax.grad(loss, (1, 2))(jnp.linalg.solve, k, y)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-9, atol=1e-12)
    # the K cotangent itself is symmetric (K_ss's one-matmul VJP, kip.sym_self_gram, needs it)
    k_bar, _ = jax.vjp(kip.solve_sym_pd, k, y)[1](w)
    assert float(jnp.max(jnp.abs(k_bar))) > 0
    np.testing.assert_allclose(np.asarray(k_bar), np.asarray(k_bar).T, rtol=0, atol=1e-15)


def test_sqrt_tangent_is_zero_where_the_given_root_is_zero():
    # the split step's second call recomputes the ReLU kernels' argument x with other
    # rounding than the first call's recorded root: a root of 0 next to x > 0 must give a zero
    # derivative (it gave x_dot * 5e29, then NaN), and a regular root its exact derivative
    x = jnp.asarray([1e-20, 4.0], jnp.float32)
    root = jnp.asarray([0.0, 2.0], jnp.float32)
    _, tangent = jax.jvp(kip._given_sqrt, (x, root), (jnp.ones_like(x), jnp.zeros_like(root)))
    np.testing.assert_allclose(np.asarray(tangent), [0.0, 0.25])
    _, tangent = jax.jvp(kernels.safe_sqrt, (x,), (jnp.ones_like(x),))
    assert np.isfinite(np.asarray(tangent)).all() and float(tangent[1]) == 0.25


@pytest.mark.slow
@pytest.mark.parametrize("depth", [2, 3])
def test_deep_fc_kip_steps_stay_finite_in_float32(data_dir, depth):
    """FC2/FC3 KIP (a) on MNIST in float32 (support 100, 1000 augmented targets), as kipctl
    distill runs it: before the root-based sqrt derivative the loss was NaN at step 3 (FC3)
    and step 7 (FC2)."""
    from kip_runner.core.sampling import sample_indices
    from kip_runner.data import load_dataset
    ds = load_dataset("mnist", data_dir)
    data = kip.target_data(ds.x_train, ds.targets(), ds.y_train, jnp.float32)
    idx = np.asarray(sample_indices(jax.random.PRNGKey(0), ds.y_train, 100, 10))  # [100]
    x0 = jnp.asarray(ds.x_train[idx])
    tx = kip.make_optimizer(0.01, kip.frozen_mask(np.zeros(x0.shape, bool), 10, False))
    step = kip.make_kip_step(make_kernel_fn("fc", depth), tx, reg=1e-6, target_batch=1000,
                             n_classes=10, augment_args=AugmentArgs(),
                             gram_fn=kip.gram_kernel("fc", depth, "ntk", "ntk", 784))
    state = kip.init_state(x0, jnp.asarray(ds.targets()[idx]), tx)
    losses = []
    for _ in range(20):
        state, m = step(state, jax.random.PRNGKey(1), data)
        losses.append(float(m["loss"]))
    assert np.isfinite(losses).all() and bool(jnp.all(jnp.isfinite(state.params["x"])))
    assert losses[-1] < losses[0]
