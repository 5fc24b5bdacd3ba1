"""Unit tier for core/nn.py: finite networks, stateless batch norm, losses, training step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kip_runner.core import nn

N, HW, C = 8, 8, 4


@pytest.fixture(scope="module")
def toy():
    x = jax.random.normal(jax.random.PRNGKey(0), (N, HW, HW, 1))  # [N,8,8,1]
    y = jax.nn.one_hot(jnp.arange(N) % C, C) - 1.0 / C  # [N,C] centred one-hot
    return x, y


def _train(net, x, y, steps, lr=1e-2, loss="mse", optimizer="adam", seeds=2, l2=0.0):
    keys = jax.random.split(jax.random.PRNGKey(1), seeds)  # [S,2]
    tx = nn.make_optimizer(optimizer)
    state = nn.init_state(tx, nn.init_params(net, keys, (-1,) + x.shape[1:], x.dtype), lr)
    step = nn.make_train_step(net, loss, tx)
    losses = []
    for t in range(steps):
        state, value = step(state, x, y, jnp.asarray(l2), jax.random.PRNGKey(t))
        losses.append(np.asarray(value))  # [S]
    return state, np.stack(losses)  # [steps, S]


@pytest.mark.parametrize("arch,depth,width,loss,optimizer", [
    ("fc", 2, 16, "mse", "adam"),
    ("fc", 1, 16, "xent", "momentum"),
    ("conv", 2, 4, "mse", "adam"),
    ("myrtle", 5, 4, "mse", "adam"),
    ("lenet", 5, 2, "xent", "adam"),
    ("wrn", 10, 1, "mse", "adam"),
])
def test_loss_decreases_for_every_family(toy, arch, depth, width, loss, optimizer):
    x, y = toy
    net = nn.make_net(arch, depth, width, n_out=C)
    lr = 1e-2 if optimizer == "adam" else 1e-1  # SGD+momentum needs a larger step
    _, losses = _train(net, x, y, 12, lr=lr, loss=loss, optimizer=optimizer)
    assert np.all(np.isfinite(losses))
    assert np.all(losses[-1] < 0.95 * losses[0]), losses[[0, -1]]
    assert net.batch_stats == (arch == "wrn")


def test_stateless_batch_norm_uses_the_batch_statistics():
    _, apply_fn, _ = nn.stateless_batch_norm(eps=0.0)
    x = 3.0 + 2.0 * jax.random.normal(jax.random.PRNGKey(0), (6, 4, 4, 3))  # [6,4,4,3]
    out = apply_fn((), x)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(out.var(axis=(0, 1, 2)), 1.0, rtol=1e-6)
    # stats_rows: statistics of the first rows only; the other rows do not influence them.
    ref, a, b = x[:4], x[4:5], 10.0 * x[5:6]
    mean = ref.mean(axis=(0, 1, 2), keepdims=True)[0]  # [1,1,3]
    var = ref.var(axis=(0, 1, 2), keepdims=True)[0]  # [1,1,3]
    with_a = apply_fn((), jnp.concatenate([ref, a]), stats_rows=4)[4]
    with_ab = apply_fn((), jnp.concatenate([ref, a, b]), stats_rows=4)[4]
    np.testing.assert_allclose(with_a, (a[0] - mean) / jnp.sqrt(var), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(with_a, with_ab, rtol=1e-12)
    with pytest.raises(NotImplementedError):
        nn.stateless_batch_norm()[2](None)


def test_wrn_predictions_do_not_depend_on_test_chunking(toy):
    x, _ = toy
    net = nn.make_net("wrn", 10, 1, n_out=C)
    params = nn.init_params(net, jax.random.split(jax.random.PRNGKey(0), 1), (-1, HW, HW, 1),
                            x.dtype)
    predict = nn.make_predict(net)
    whole = predict(params, x[4:], x[:4])  # [1, 4, C]
    # Same chunk shape (one compile), different companions: rows 4-5 must not change.
    other = predict(params, jnp.concatenate([x[4:6], 5.0 * x[:2]]), x[:4])  # [1, 4, C]
    np.testing.assert_allclose(whole[:, :2], other[:, :2], rtol=1e-6, atol=1e-8)
    assert not np.allclose(whole[:, 2:], other[:, 2:])


def test_seeds_give_different_inits_and_keys_reproduce_them():
    net = nn.make_net("fc", 1, 8, n_out=C)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    p = nn.init_params(net, keys, (-1, 4, 4, 1), jnp.float32)
    q = nn.init_params(net, keys, (-1, 4, 4, 1), jnp.float32)
    w = jax.tree_util.tree_leaves(p)[0]  # [3, 16, 8]
    assert w.shape[0] == 3 and w.dtype == jnp.float32
    assert not np.allclose(w[0], w[1]) and not np.allclose(w[1], w[2])
    for a, b in zip(jax.tree_util.tree_leaves(p), jax.tree_util.tree_leaves(q)):
        np.testing.assert_array_equal(a, b)


def test_losses_by_hand():
    pred = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    y = jnp.array([[0.5, -0.5], [-0.5, 0.5]])
    assert np.isclose(nn.mse_loss(pred, y), 0.5 * (0.25 + 0.25 + 0.25 + 2.25) / 2)
    # xent uses the one-hot of argmax(y): learned labels only choose the class.
    lse = np.log(np.exp(1.0) + 1.0), np.log(1.0 + np.exp(2.0))
    assert np.isclose(nn.xent_loss(pred, y), ((lse[0] - 1.0) + (lse[1] - 2.0)) / 2)
    assert np.isclose(nn.xent_loss(pred, 7.0 * y), nn.xent_loss(pred, y))
    assert np.isclose(nn.l2_norm_sq({"a": jnp.ones(3), "b": 2.0 * jnp.ones(1)}), 3.5)


def test_step_compiles_once_across_lr_and_l2(toy):
    x, y = toy
    base = nn.make_net("fc", 1, 8, n_out=C)
    traces = []

    def counted(params, inputs, **kw):
        traces.append(1)
        return base.apply_fn(params, inputs, **kw)
    net = base._replace(apply_fn=counted)
    tx = nn.make_optimizer("adam")
    step = nn.make_train_step(net, "mse", tx)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    for lr, l2 in ((1e-3, 0.0), (1e-1, 1e-2)):
        state = nn.init_state(tx, nn.init_params(base, keys, (-1, HW, HW, 1)), lr)
        for t in range(2):
            state, _ = step(state, x, y, jnp.asarray(l2), jax.random.PRNGKey(t))
    assert len(traces) == 1


def test_l2_pulls_weights_towards_zero(toy):
    x, y = toy
    net = nn.make_net("fc", 1, 8, n_out=C)
    s0, _ = _train(net, x, y, 20, lr=1e-2, optimizer="momentum", l2=0.0)
    s1, _ = _train(net, x, y, 20, lr=1e-2, optimizer="momentum", l2=1.0)
    assert float(nn.l2_norm_sq(s1.params)) < float(nn.l2_norm_sq(s0.params))


def test_minibatch_step_and_errors(toy):
    x, y = toy
    net = nn.make_net("fc", 1, 8, n_out=C)
    tx = nn.make_optimizer("adam")
    step = nn.make_train_step(net, "mse", tx, batch_size=3)
    state = nn.init_state(tx, nn.init_params(net, jax.random.split(jax.random.PRNGKey(0), 2),
                                             (-1, HW, HW, 1)), 1e-2)
    state, loss = step(state, x, y, jnp.asarray(0.0), jax.random.PRNGKey(0))
    assert loss.shape == (2,)
    for bad, msg in ((lambda: nn.make_net("resnet", 1, 8), "unknown net arch"),
                     (lambda: nn.make_net("wrn", 12, 1), "6n\\+4"),
                     (lambda: nn.get_loss("foo"), "loss must be"),
                     (lambda: nn.make_optimizer("sgd"), "optimizer must be")):
        with pytest.raises(ValueError, match=msg):
            bad()


def test_centred_net_starts_at_zero_and_trains(toy):
    x, y = toy
    net = nn.make_net("fc", 1, 16, n_out=C)
    keys = jax.random.split(jax.random.PRNGKey(1), 2)  # [S,2]
    tx = nn.make_optimizer("adam")
    params = nn.init_params(net, keys, (-1,) + x.shape[1:], x.dtype)
    snapshot = jax.tree_util.tree_map(np.asarray, params)  # params is donated by the step
    state = nn.init_state(tx, params, 1e-2, center=True)
    predict = nn.make_predict(net)
    np.testing.assert_allclose(predict(state.params, x, None, state.params0), 0.0, atol=1e-6)
    assert float(jnp.std(predict(state.params, x))) > 0.1  # the uncentred f_0 is not zero
    step = nn.make_train_step(net, "mse", tx)
    first = None
    for t in range(15):
        state, loss = step(state, x, y, jnp.asarray(0.0), jax.random.PRNGKey(t))
        first = np.asarray(loss) if first is None else first
    # The step's loss is that of f - f_0 (0.5 * sum y^2 at t = 0) and params0 stays fixed.
    np.testing.assert_allclose(first, 0.5 * float(jnp.mean(jnp.sum(y ** 2, -1))), rtol=1e-5)
    assert np.all(np.asarray(loss) < 0.5 * first)
    for a, b in zip(jax.tree_util.tree_leaves(state.params0), jax.tree_util.tree_leaves(snapshot)):
        np.testing.assert_array_equal(a, b)
    final = nn.mse_loss(predict(state.params, x, None, state.params0)[0], y)
    assert float(final) < 0.5 * float(first[0])


def test_readout_w_var_scales_only_the_readout(toy):
    x, _ = toy
    keys = jax.random.split(jax.random.PRNGKey(3), 1)
    outs = {}
    for rv in (None, 2.0, 0.02):
        net = nn.make_net("fc", 1, 64, w_var=2.0, b_var=0.0, readout_w_var=rv, n_out=C)
        params = nn.init_params(net, keys, (-1,) + x.shape[1:])
        outs[rv] = np.asarray(nn.make_predict(net)(params, x))  # [1, N, C]
    np.testing.assert_allclose(outs[None], outs[2.0], rtol=1e-6)  # None = w_var
    # Same keys, same hidden layer, no bias: the readout's W_std scales the output.
    np.testing.assert_allclose(outs[0.02], 0.1 * outs[2.0], rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="readout_w_var"):
        nn.make_net("fc", 1, 8, readout_w_var=0.0)
