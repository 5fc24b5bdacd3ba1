"""Writes tests/fixtures/nt/nets.npz: neural-tangents 0.6.5 stax outputs of kipctl's finite nets.

Run once, under the old pinned stack only (this script never imports kip_runner):

    python3 -m venv /work/old/.venv   # Python 3.11; any path, a venv of its own
    /work/old/.venv/bin/pip install jax==0.5.3 jaxlib==0.5.3 neural-tangents==0.6.5 \
        'tf2jax<0.3.7' optax
    /work/old/.venv/bin/python tools/nt_fixtures_nets.py --out tests/fixtures/nt

(The old venv may also hold the old kip_runner, installed editable; this script ignores it.)

Each case defines its network directly with neural-tangents' stax layers, mirroring
kip_runner/core/nn.py's make_net (FCm, Convm with flatten readout, Myrtle-N, LeNet, WRN with
stateless batch norm; hidden layers in the case's parameterisation, readout Dense always
NTK-parameterised), initialises it with stax's init_fn at PRNGKey(0) in float64 and applies it
in float64. tests/test_nt_fixtures_nets.py (no neural-tangents) builds kipctl's net of the same
config, loads these parameters into it and compares outputs, and checks that kipctl's init_fn
draws the same parameters from the same key.

npz layout (one file, < 2 MB):
  nt_version, jax_version, cases      strings; cases = comma-separated case names
  x/<shape>                           float64 inputs [3, H, W, C], numpy seed 0 (shared by cases)
  <case>/config                       JSON: make_net kwargs + "input" (which x/<shape>)
  <case>/key                          uint32 [2], the init key
  <case>/leaf_NNN                     parameter leaves in jax.tree_util.tree_leaves order,
                                      stored as float32 (NT's float64 init rounded once, to keep
                                      the file small); outputs are computed from these values
  <case>/out                          float64 [3, n_out], apply_fn(params, x)
  <case>/out_stats2                   WRN only: apply_fn(params, x, stats_rows=2)
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import neural_tangents as nt  # noqa: E402
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402
from nt_fixtures import body  # noqa: E402  (tools/, this script's directory)

INPUT_SHAPES = {"mnist": (3, 28, 28, 1), "cifar": (3, 32, 32, 3), "small": (3, 16, 16, 3)}
N_OUT = 10

# name: (arch, depth, width, parameterization, w_var, b_var, readout_w_var, input)
CASES = {
    "fc1": ("fc", 1, 16, "ntk", 2.0, 0.1, None, "mnist"),
    "fc2": ("fc", 2, 16, "ntk", 2.0, 0.1, 0.5, "mnist"),
    "fc2_standard": ("fc", 2, 16, "standard", 2.0, 0.1, None, "mnist"),
    "fc3": ("fc", 3, 16, "ntk", 1.5, 0.05, None, "mnist"),
    "conv1": ("conv", 1, 4, "ntk", 2.0, 0.1, None, "mnist"),
    "conv1_standard": ("conv", 1, 4, "standard", 2.0, 0.1, None, "mnist"),
    "conv2": ("conv", 2, 4, "ntk", 1.5, 0.05, None, "mnist"),
    "myrtle5": ("myrtle", 5, 8, "ntk", 2.0, 0.1, None, "mnist"),
    "conv1_cifar": ("conv", 1, 4, "ntk", 2.0, 0.1, None, "cifar"),
    "myrtle5_cifar": ("myrtle", 5, 8, "ntk", 2.0, 0.1, None, "cifar"),
    "lenet": ("lenet", 5, 6, "ntk", 2.0, 0.1, None, "small"),
    "wrn": ("wrn", 10, 1, "ntk", 2.0, 0.1, None, "small"),
}


def stateless_batch_norm(eps: float = 1e-5):
    """kipctl's stateless BN as a stax triple: statistics of x (or of x[:stats_rows])."""
    def apply_fn(params, x, stats_rows=None, **kwargs):
        ref = x if stats_rows is None else x[:stats_rows]
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(ref, axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(ref - mean), axis=axes, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + eps)
    return (lambda rng, shape: (shape, ())), apply_fn, (lambda k, **kw: k)


def network(arch, depth, width, parameterization, w_var, b_var, readout_w_var):
    """stax.serial of the case's layers (mirrors kip_runner/core/nn.py make_net)."""
    w_std, b_std = math.sqrt(w_var), math.sqrt(b_var)
    r_std = w_std if readout_w_var is None else math.sqrt(readout_w_var)

    def dense(n):
        return stax.Dense(n, W_std=w_std, b_std=b_std, parameterization=parameterization)

    def conv(c, f, s=1):
        return stax.Conv(c, (f, f), strides=(s, s), padding="SAME", W_std=w_std, b_std=b_std,
                         parameterization=parameterization)

    def pool():
        return stax.AvgPool((2, 2), strides=(2, 2))
    if arch in ("fc", "conv", "myrtle"):  # the kernels' networks (tools/nt_fixtures.py)
        layers = body(arch, depth, parameterization, width, w_var, b_var)
    elif arch == "lenet":
        c2, d1, d2 = max(1, round(width * 16 / 6)), 20 * width, 14 * width
        layers = [conv(width, 5), stax.Relu(), pool(), conv(c2, 5), stax.Relu(), pool(),
                  stax.Flatten(), dense(d1), stax.Relu(), dense(d2), stax.Relu()]
    elif arch == "wrn":
        n_blocks = (depth - 4) // 6
        layers, channels_in = [conv(16, 3)], 16
        for group, strides in enumerate((1, 2, 2)):
            channels = 16 * width * 2 ** group
            for b in range(n_blocks):
                s = strides if b == 0 else 1
                main = stax.serial(stateless_batch_norm(), stax.Relu(), conv(channels, 3, s),
                                   stateless_batch_norm(), stax.Relu(), conv(channels, 3))
                project = s != 1 or channels != channels_in
                shortcut = conv(channels, 1, s) if project else stax.Identity()
                layers += [stax.FanOut(2), stax.parallel(main, shortcut), stax.FanInSum()]
                channels_in = channels
        layers += [stateless_batch_norm(), stax.Relu(), stax.GlobalAvgPool()]
    else:
        raise ValueError(arch)
    readout = stax.Dense(N_OUT, W_std=r_std, b_std=b_std, parameterization="ntk")
    return stax.serial(*layers, readout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="tests/fixtures/nt", help="output directory")
    out_dir = Path(parser.parse_args().out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {"nt_version": np.array(nt.__version__), "jax_version": np.array(jax.__version__),
              "cases": np.array(",".join(CASES))}
    for name, shape in INPUT_SHAPES.items():
        arrays[f"x/{name}"] = rng.standard_normal(shape)  # float64 [3, H, W, C]
    key = jax.random.PRNGKey(0)
    for case, (arch, depth, width, param, w_var, b_var, r_var, inp) in CASES.items():
        init_fn, apply_fn, _ = network(arch, depth, width, param, w_var, b_var, r_var)
        x = jnp.asarray(arrays[f"x/{inp}"])
        _, params = init_fn(key, (-1,) + x.shape[1:])
        leaves, treedef = jax.tree_util.tree_flatten(params)
        assert all(leaf.dtype == jnp.float64 for leaf in leaves)
        leaves = [np.asarray(leaf).astype(np.float32) for leaf in leaves]
        params = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(v, jnp.float64)
                                                        for v in leaves])
        config = dict(arch=arch, depth=depth, width=width, parameterization=param,
                      w_var=w_var, b_var=b_var, readout_w_var=r_var, n_out=N_OUT, input=inp)
        arrays[f"{case}/config"] = np.array(json.dumps(config))
        arrays[f"{case}/key"] = np.asarray(key)
        for i, leaf in enumerate(leaves):
            arrays[f"{case}/leaf_{i:03d}"] = leaf
        arrays[f"{case}/out"] = np.asarray(apply_fn(params, x))  # float64 [3, N_OUT]
        if arch == "wrn":
            arrays[f"{case}/out_stats2"] = np.asarray(apply_fn(params, x, stats_rows=2))
        print(case, len(leaves), "leaves", sum(v.size for v in leaves), "parameters")
    path = out_dir / "nets.npz"
    np.savez_compressed(path, **arrays)
    print(path, f"{path.stat().st_size / 2**20:.2f} MiB", "nt", nt.__version__,
          "jax", jax.__version__)


if __name__ == "__main__":
    main()
