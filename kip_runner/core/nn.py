"""Finite-width networks for eval-nn (PAPER.md §6): layers, architectures, losses, optax training.

The layers are kipctl's own plain-JAX `(init_fn, apply_fn)` pairs: `init_fn(key, input_shape)
-> (output_shape, params)` and `apply_fn(params, x, **kwargs) -> y`, composed with `serial` and
`parallel`. Their semantics, initialisation and parameter pytrees are those of neural-tangents
0.6.5's stax (Dense/Conv as (W, b) with W [.., C_in, C_out] (HWIO for conv), b with singleton
axes except the last; parameter-free layers as (); serial/parallel as tuples of their parts), so
the FC/Conv/Myrtle nets are the finite-width networks of kernels.py's NTK/NNGP (same
parameterisation, readout NTK-parameterised); tests/test_nt_fixtures_nets.py holds the outputs
to neural-tangents' for the same parameters (tools/nt_fixtures_nets.py made the fixtures).
LeNet and a pre-activation WideResNet are added here. The WideResNet uses *stateless* batch
norm: every call normalises with the statistics of the batch it is given (or of its first
`stats_rows` rows), so the network stays a pure `(init_fn, apply_fn)` pair with no running
averages to carry (docs/eval-nn.md explains the choice).

Training is vectorised over random inits ("seeds"): parameters carry a leading [S] axis and
one jitted step updates all of them. The learning rate and the L2 coefficient are traced
values (optax.inject_hyperparams), so one compiled step serves a whole lr/L2 grid.
No I/O here; the pipeline (pipelines/eval_nn.py) owns data, grids and files.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from kip_runner.core.kernels import MYRTLE_BLOCKS
from kip_runner.core.types import Array, PRNGKey

NET_ARCHS = ("fc", "conv", "myrtle", "lenet", "wrn")
PARAMETERIZATIONS = ("ntk", "standard")
OPTIMIZERS = ("adam", "momentum")
LOSSES = ("mse", "xent")
MOMENTUM = 0.9  # PAPER.md §6: "momentum 0.9"


class Layer(NamedTuple):
    """A layer or a composition of layers (shapes include the batch axis, which may be -1)."""

    init_fn: Callable  # (key, input_shape) -> (output_shape, params)
    apply_fn: Callable  # (params, x, **kwargs) -> y; kwargs reach every layer (stats_rows)


class Net(NamedTuple):
    """A finite network: init/apply and whether apply_fn uses batch statistics."""

    init_fn: Callable  # (key, input_shape) -> (output_shape, params)
    apply_fn: Callable  # (params, x [n,H,W,C], stats_rows=None) -> [n, n_out]
    batch_stats: bool  # True when outputs depend on the other rows of the batch (BN)


class TrainState(NamedTuple):
    """Parameters and optimizer state of S networks (leading axis [S] on every leaf).

    params0: the initial parameters when the network is centred (its output is
    f(x; params) - f(x; params0), zero at initialisation); None otherwise.
    """

    params: object
    opt_state: object
    params0: object = None


def validate_net_args(arch: str, depth: int, width: int, parameterization: str) -> None:
    """Raises ValueError with a one-line message for an unusable network description."""
    if arch not in NET_ARCHS:
        raise ValueError(f"unknown net arch '{arch}'; choose one of {', '.join(NET_ARCHS)}")
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be ntk or standard, got '{parameterization}'")
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    if arch in ("fc", "conv") and depth < 1:
        raise ValueError(f"{arch} depth must be >= 1, got {depth}")
    if arch == "myrtle" and depth not in MYRTLE_BLOCKS:
        raise ValueError(f"Myrtle depth must be one of {sorted(MYRTLE_BLOCKS)}, got {depth}")
    if arch == "wrn" and (depth < 10 or (depth - 4) % 6):
        raise ValueError(f"WideResNet depth must be 6n+4 >= 10 (10, 16, 22, 28, ...), got {depth}")


# --- Layers -----------------------------------------------------------------------------------

def affine(out_chan: int, w_std: float, b_std: float, parameterization: str = "ntk",
           filter_shape: Sequence[int] = (), strides: Optional[Sequence[int]] = None) -> Layer:
    """Dense (filter_shape=()) on x [n, C_in] or SAME-padded Conv on x [n, H, W, C_in].

    W [*filter_shape, C_in, C_out] (HWIO), b [1, ..., 1, C_out]; fan_in = C_in * prod(filter).
    ntk: W, b ~ N(0, 1) and y = w_std / sqrt(fan_in) * (x * W) + b_std * b.
    standard: W ~ N(0, w_std^2 / fan_in), b ~ N(0, b_std^2) and y = x * W + b.
    Both give the same distribution of y at initialisation (Jacot et al. 2018; Sohl-Dickstein
    et al. 2020 with s = (1, 1)); they differ in the scale of the gradients.
    """
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be ntk or standard, got '{parameterization}'")
    filter_shape = tuple(filter_shape)
    strides = tuple(strides or (1,) * len(filter_shape))

    def product(x, w):
        if not filter_shape:
            return x @ w  # [n, C_out]
        return jax.lax.conv_general_dilated(
            x, w, strides, "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))  # [n,H',W',C_out]

    def init_fn(key: PRNGKey, input_shape: tuple):
        c_in = input_shape[-1]
        w_key, b_key = jax.random.split(key)
        w = jax.random.normal(w_key, filter_shape + (c_in, out_chan))  # [*filter, C_in, C_out]
        b = jax.random.normal(b_key, (1,) * (len(input_shape) - 1) + (out_chan,))  # [1,..,C_out]
        if parameterization == "standard":
            w, b = w * (w_std / math.sqrt(c_in * math.prod(filter_shape))), b * b_std
        spatial = tuple(-(-d // s) for d, s in zip(input_shape[1:-1], strides))  # SAME: ceil
        return (input_shape[0],) + spatial + (out_chan,), (w, b)

    def apply_fn(params, x: ArrayLike, **kwargs) -> Array:
        w, b = params
        if parameterization == "standard":
            return product(x, w) + b
        fan_in = x.shape[-1] * math.prod(filter_shape)
        return (w_std / math.sqrt(fan_in)) * product(x, w) + b_std * b
    return Layer(init_fn, apply_fn)


def elementwise(fn: Callable[[Array], Array],
                shape_fn: Callable[[tuple], tuple] = lambda s: s) -> Layer:
    """A parameter-free layer (params ()) applying fn; shape_fn maps the input shape."""
    return Layer(lambda key, input_shape: (shape_fn(tuple(input_shape)), ()),
                 lambda params, x, **kwargs: fn(x))


def relu() -> Layer:
    # jnp.maximum, not jax.nn.relu: its derivative at exactly 0 is 1/2 like stax.Relu's.
    return elementwise(lambda x: jnp.maximum(x, 0.0))


def flatten() -> Layer:
    """[n, H, W, C] -> [n, H*W*C] in row-major (H, W, C) order."""
    return elementwise(lambda x: jnp.reshape(x, (x.shape[0], -1)),
                       lambda s: (s[0], math.prod(s[1:])))


def avg_pool(window: int = 2) -> Layer:
    """window x window average pooling, stride = window, VALID: [n,H,W,C] -> [n,H//w,W//w,C]."""
    dims = (1, window, window, 1)
    return elementwise(
        lambda x: jax.lax.reduce_window(x, 0.0, jax.lax.add, dims, dims, "VALID") / window ** 2,
        lambda s: (s[0], s[1] // window, s[2] // window, s[3]))


def global_avg_pool() -> Layer:
    """Mean over the spatial axes: [n, H, W, C] -> [n, C]."""
    return elementwise(lambda x: jnp.mean(x, axis=(1, 2)), lambda s: (s[0], s[-1]))


def identity() -> Layer:
    return elementwise(lambda x: x)


def fan_out(num: int) -> Layer:
    """x -> [x] * num (feeds `parallel`)."""
    return elementwise(lambda x: [x] * num, lambda s: [s] * num)


def fan_in_sum() -> Layer:
    """[x_1, ..., x_k] -> x_1 + ... + x_k (closes `parallel`)."""
    return elementwise(sum, lambda shapes: shapes[0])


def serial(*layers: Layer) -> Layer:
    """Composition; params is the tuple of the layers' params. Each layer's key is split off
    the running key in turn (stax's order, so the same key gives stax's init)."""
    def init_fn(key: PRNGKey, input_shape):
        params = []
        for layer in layers:
            key, layer_key = jax.random.split(key)
            input_shape, p = layer.init_fn(layer_key, input_shape)
            params.append(p)
        return input_shape, tuple(params)

    def apply_fn(params, x, **kwargs):
        for layer, p in zip(layers, params):
            x = layer.apply_fn(p, x, **kwargs)
        return x
    return Layer(init_fn, apply_fn)


def parallel(*layers: Layer) -> Layer:
    """Branches on a list of inputs (from fan_out); params is the tuple of their params."""
    def init_fn(key: PRNGKey, input_shapes):
        keys = jax.random.split(key, len(layers))  # [B, 2]
        shapes, params = zip(*(layer.init_fn(k, s)
                               for layer, k, s in zip(layers, keys, input_shapes)))
        return list(shapes), tuple(params)

    def apply_fn(params, xs, **kwargs):
        return [layer.apply_fn(p, x, **kwargs) for layer, p, x in zip(layers, params, xs)]
    return Layer(init_fn, apply_fn)


def stateless_batch_norm(eps: float = 1e-5):
    """Batch norm without running averages or affine parameters.

    Returns (init_fn, apply_fn, kernel_fn). apply_fn(params, x [n, ..., C], stats_rows=None):
    per-channel mean and variance over the batch and spatial axes of x, or of x[:stats_rows]
    when `stats_rows` is given (evaluation with the training batch's statistics prepended).
    kernel_fn raises NotImplementedError: a finite-batch statistic has no infinite-width limit.
    """
    def apply_fn(params, inputs, stats_rows: Optional[int] = None, **kwargs):
        ref = inputs if stats_rows is None else inputs[:stats_rows]  # [n_ref, ..., C]
        axes = tuple(range(inputs.ndim - 1))
        mean = jnp.mean(ref, axis=axes, keepdims=True)  # [1, ..., C]
        var = jnp.mean(jnp.square(ref - mean), axis=axes, keepdims=True)  # [1, ..., C]
        return (inputs - mean) * jax.lax.rsqrt(var + eps)  # [n, ..., C]

    def kernel_fn(k, **kwargs):
        raise NotImplementedError("stateless batch norm has no infinite-width kernel")
    return identity().init_fn, apply_fn, kernel_fn


# --- Architectures ----------------------------------------------------------------------------

def _kernel_zoo_layers(arch: str, depth: int, width: int, dense, conv) -> list:
    """FCm, Convm (flatten readout, no pooling) and Myrtle-N with ReLU, without the readout:
    the finite networks of kernels.py's FC/Conv/Myrtle kernels."""
    if arch == "fc":
        return [flatten()] + [layer for _ in range(depth) for layer in (dense(width), relu())]
    if arch == "conv":
        return [layer for _ in range(depth) for layer in (conv(width, 3), relu())] + [flatten()]
    layers = [conv(width, 3), relu()]  # myrtle
    for n_blocks in MYRTLE_BLOCKS[depth]:
        layers += [layer for _ in range(n_blocks) for layer in (conv(width, 3), relu())]
        layers += [avg_pool(2)]
    return layers + [global_avg_pool()]


def _lenet_layers(width: int, dense, conv) -> list:
    """LeNet-5 shape with ReLU and average pooling; `width` = first conv's channels (6 gives
    the classic 6-16-120-84 widths, the others scale with it)."""
    c2, d1, d2 = max(1, round(width * 16 / 6)), 20 * width, 14 * width
    return [conv(width, 5), relu(), avg_pool(2), conv(c2, 5), relu(), avg_pool(2),
            flatten(), dense(d1), relu(), dense(d2), relu()]


def _wrn_layers(depth: int, width: int, dense, conv) -> list:
    """Pre-activation WRN-depth-width (Zagoruyko & Komodakis 2016) with stateless BN."""
    def bn() -> Layer:
        return Layer(*stateless_batch_norm()[:2])
    n_blocks = (depth - 4) // 6
    layers = [conv(16, 3)]
    channels_in = 16
    for group, strides in enumerate((1, 2, 2)):
        channels = 16 * width * 2 ** group
        for b in range(n_blocks):
            s = strides if b == 0 else 1
            main = serial(bn(), relu(), conv(channels, 3, s), bn(), relu(), conv(channels, 3))
            project = s != 1 or channels != channels_in
            shortcut = conv(channels, 1, s) if project else identity()
            layers += [fan_out(2), parallel(main, shortcut), fan_in_sum()]
            channels_in = channels
    return layers + [bn(), relu(), global_avg_pool()]


def make_net(arch: str, depth: int, width: int, w_var: float = 2.0, b_var: float = 1e-4,
             parameterization: str = "ntk", n_out: int = 10,
             readout_w_var: Optional[float] = None) -> Net:
    """The finite network of a NetConfig.

    Args:
      arch: fc | conv | myrtle (the kernel zoo's architectures) | lenet | wrn.
      depth: layers of FC/Conv, N of Myrtle-N, 6n+4 of WRN; ignored by lenet.
      width: hidden width / channels (fc, conv, myrtle); first conv's channels (lenet);
        widening factor k (wrn).
      w_var, b_var: weight / bias variances at initialisation.
      parameterization: ntk | standard (readout layers use ntk, as in the kernels).
      n_out: number of outputs (classes).
      readout_w_var: weight variance of the readout layer only (None: w_var). It sets the
        scale of the random function at initialisation (output variance is proportional
        to it) without changing the hidden layers.

    Returns:
      Net whose init_fn(key, (-1, H, W, C)) gives params with the pytree of neural-tangents'
      stax for the same layers (tuples where stax's serial has lists).
    """
    validate_net_args(arch, depth, width, parameterization)
    if readout_w_var is not None and readout_w_var <= 0:
        raise ValueError(f"readout_w_var must be > 0, got {readout_w_var}")
    w_std, b_std = math.sqrt(w_var), math.sqrt(b_var)
    r_std = w_std if readout_w_var is None else math.sqrt(readout_w_var)

    def dense(n: int) -> Layer:
        return affine(n, w_std, b_std, parameterization)

    def conv(channels: int, filt: int, stride: int = 1) -> Layer:
        return affine(channels, w_std, b_std, parameterization, (filt, filt), (stride, stride))
    if arch == "lenet":
        body = _lenet_layers(width, dense, conv)
    elif arch == "wrn":
        body = _wrn_layers(depth, width, dense, conv)
    else:
        body = _kernel_zoo_layers(arch, depth, width, dense, conv)
    net = serial(*body, affine(n_out, r_std, b_std, "ntk"))  # readout: ntk, as in the kernels
    return Net(net.init_fn, net.apply_fn, arch == "wrn")


def init_params(net: Net, keys: ArrayLike, input_shape: tuple, dtype=jnp.float32):
    """Independent inits, one per key, stacked on a leading axis [S] and cast to `dtype`.

    Args:
      keys: PRNG keys [S, 2]; input_shape: (-1, H, W, C).
    """
    params = jax.vmap(lambda k: net.init_fn(k, input_shape)[1])(jnp.asarray(keys))
    return jax.tree_util.tree_map(lambda p: p.astype(dtype), params)


def mse_loss(pred: ArrayLike, y: ArrayLike) -> Array:
    """0.5 * mean over examples of the squared error summed over classes (pred, y [n, C])."""
    return 0.5 * jnp.mean(jnp.sum(jnp.square(pred - y), axis=-1))


def xent_loss(pred: ArrayLike, y: ArrayLike) -> Array:
    """Softmax cross-entropy against the one-hot of argmax(y) (pred, y [n, C])."""
    one_hot = jax.nn.one_hot(jnp.argmax(y, axis=-1), y.shape[-1], dtype=pred.dtype)  # [n, C]
    return jnp.mean(optax.softmax_cross_entropy(pred, one_hot))


def get_loss(name: str) -> Callable[[Array, Array], Array]:
    if name == "mse":
        return mse_loss
    if name == "xent":
        return xent_loss
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got '{name}'")


def make_optimizer(name: str) -> optax.GradientTransformation:
    """Adam or SGD with momentum 0.9; the learning rate is an injected (traced) hyper-parameter
    set by `init_state`, so changing it does not recompile the step."""
    if name == "adam":
        return optax.inject_hyperparams(optax.adam)(learning_rate=1.0)
    if name == "momentum":
        return optax.inject_hyperparams(optax.sgd)(learning_rate=1.0, momentum=MOMENTUM)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got '{name}'")


def init_state(tx: optax.GradientTransformation, params, lr: float,
               center: bool = False) -> TrainState:
    """Optimizer state for stacked params [S, ...] with learning rate `lr` for every seed.

    center=True keeps a copy of `params` as params0: the trained function is then
    f(x; params) - f(x; params0) (see make_train_step / make_predict).
    """
    opt_state = jax.vmap(tx.init)(params)
    n_seeds = jax.tree_util.tree_leaves(params)[0].shape[0]
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    opt_state.hyperparams["learning_rate"] = jnp.full((n_seeds,), lr, dtype)  # [S]
    params0 = jax.tree_util.tree_map(jnp.copy, params) if center else None
    return TrainState(params, opt_state, params0)


def l2_norm_sq(params) -> Array:
    """0.5 * sum of squared parameters (the L2 penalty before its coefficient)."""
    return 0.5 * sum(jnp.sum(jnp.square(p)) for p in jax.tree_util.tree_leaves(params))


def make_train_step(net: Net, loss: str, tx: optax.GradientTransformation,
                    batch_size: Optional[int] = None) -> Callable:
    """A jitted step(state, x, y, l2, key) -> (state, loss [S]) over all seeds at once.

    x [n, H, W, C] and y [n, C] are the whole training set; with `batch_size` each step uses
    `batch_size` rows drawn without replacement with `key` (the same rows for every seed),
    otherwise the full batch (key unused). The returned loss is the data loss before the
    update, without the L2 term. The state is donated. When the state carries params0
    (init_state(center=True)) the trained function is f(x; params) - f(x; params0): the
    initial function is subtracted on every batch (params0 is constant, not trained).
    """
    loss_fn = get_loss(loss)

    def objective(params, params0, x, y, l2):
        pred = net.apply_fn(params, x)  # [n, C]
        if params0 is not None:
            pred = pred - jax.lax.stop_gradient(net.apply_fn(params0, x))  # [n, C]
        data_loss = loss_fn(pred, y)
        return data_loss + l2 * l2_norm_sq(params), data_loss

    def one_seed(params, opt_state, params0, x, y, l2):
        grads, data_loss = jax.grad(objective, has_aux=True)(params, params0, x, y, l2)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, data_loss

    def step(state: TrainState, x, y, l2, key):
        if batch_size is not None and batch_size < x.shape[0]:
            idx = jax.random.choice(key, x.shape[0], (batch_size,), replace=False)  # [b]
            x, y = x[idx], y[idx]  # [b,H,W,C], [b,C]
        params, opt_state, data_loss = jax.vmap(one_seed, in_axes=(0, 0, 0, None, None, None))(
            state.params, state.opt_state, state.params0, x, y, l2)  # data_loss [S]
        return TrainState(params, opt_state, state.params0), data_loss
    return jax.jit(step, donate_argnums=(0,))


def make_predict(net: Net) -> Callable:
    """A jitted predict(params [S,...], x [n,...], x_ref [m,...] or None, params0=None)
    -> [S, n, C].

    For nets with batch statistics, x_ref (the training set) is prepended and supplies the
    normalisation statistics, so predictions do not depend on how the test set is chunked.
    With params0 (a centred network, TrainState.params0) the initial function is
    subtracted: f(x; params) - f(x; params0).
    """
    def predict(params, x, x_ref=None, params0=None):
        if net.batch_stats and x_ref is not None:
            m = x_ref.shape[0]
            xx = jnp.concatenate([x_ref, x], axis=0)  # [m + n, H, W, C]
            fn = lambda p: net.apply_fn(p, xx, stats_rows=m)[m:]  # noqa: E731
        else:
            fn = lambda p: net.apply_fn(p, x)  # noqa: E731
        out = jax.vmap(fn)(params)  # [S, n, C]
        if params0 is not None:
            out = out - jax.vmap(fn)(params0)  # [S, n, C]
        return out
    return jax.jit(predict)


def accuracy_per_seed(pred: ArrayLike, y: ArrayLike) -> Array:
    """Fraction of argmax agreements per seed. pred [S, n, C], y [n, C] -> [S]"""
    return jnp.mean(jnp.argmax(pred, -1) == jnp.argmax(y, -1)[None, :], axis=-1)
