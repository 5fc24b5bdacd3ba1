"""Kernel zoo (PAPER.md §4): FCm / Convm / Myrtle-N NTK and NNGP via neural-tangents stax,
RBF and linear kernels in plain JAX, and blocked evaluation of large kernel matrices.

The same stax `(init_fn, apply_fn, kernel_fn)` triple gives the finite network for eval-nn,
so `make_network` and `make_kernel_fn` share one architecture definition.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from kip_runner.core._nt import stax
from kip_runner.core.types import Array, KernelFn

ARCHS = ("fc", "conv", "myrtle", "rbf", "linear")
KINDS = ("ntk", "nngp")
PARAMETERIZATIONS = ("ntk", "standard")
# Conv-block counts before each of the three pooling stages (PAPER.md §4, Shankar et al. 2020).
MYRTLE_BLOCKS = {5: (1, 1, 1), 7: (1, 2, 2), 10: (2, 3, 3)}


def validate_kernel_args(arch: str, depth: int, kind: str, parameterization: str,
                         width: int) -> None:
    """Raises ValueError with a one-line message for an unusable kernel description."""
    if arch not in ARCHS:
        raise ValueError(f"unknown kernel arch '{arch}'; choose one of {', '.join(ARCHS)}")
    if kind not in KINDS:
        raise ValueError(f"kernel kind must be ntk or nngp, got '{kind}'")
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be ntk or standard, got '{parameterization}'")
    if arch == "myrtle" and depth not in MYRTLE_BLOCKS:
        raise ValueError(f"Myrtle depth must be one of {sorted(MYRTLE_BLOCKS)}, got {depth}")
    if arch in ("fc", "conv") and depth < 1:
        raise ValueError(f"{arch} depth must be >= 1, got {depth}")
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")


def stax_layers(arch: str, depth: int, width: int, w_var: float, b_var: float,
                parameterization: str, n_out: int = 1) -> Sequence:
    """The stax layer list of FCm, Convm (no pooling) or Myrtle-N with ReLU.

    Readout layers always use the NTK parameterisation (PAPER.md §4).
    """
    w_std, b_std = math.sqrt(w_var), math.sqrt(b_var)
    dense = lambda n, p=parameterization: stax.Dense(  # noqa: E731
        n, W_std=w_std, b_std=b_std, parameterization=p)
    conv = lambda: stax.Conv(  # noqa: E731
        width, (3, 3), strides=(1, 1), padding="SAME", W_std=w_std, b_std=b_std,
        parameterization=parameterization)
    if arch == "fc":
        layers = [stax.Flatten()]
        for _ in range(depth):
            layers += [dense(width), stax.Relu()]
    elif arch == "conv":
        layers = []
        for _ in range(depth):
            layers += [conv(), stax.Relu()]
        layers += [stax.Flatten()]
    elif arch == "myrtle":
        layers = [conv(), stax.Relu()]
        for n_blocks in MYRTLE_BLOCKS[depth]:
            for _ in range(n_blocks):
                layers += [conv(), stax.Relu()]
            layers += [stax.AvgPool((2, 2), strides=(2, 2))]
        layers += [stax.GlobalAvgPool()]
    else:
        raise ValueError(f"arch '{arch}' has no stax network")
    return layers + [dense(n_out, "ntk")]


def make_network(arch: str, depth: int, width: int, w_var: float = 2.0, b_var: float = 1e-4,
                 parameterization: str = "ntk", n_out: int = 10):
    """(init_fn, apply_fn, kernel_fn) of the finite-width network behind a neural kernel."""
    return stax.serial(*stax_layers(arch, depth, width, w_var, b_var, parameterization, n_out))


def make_kernel_fn(arch: str, depth: int = 1, kind: str = "ntk", parameterization: str = "ntk",
                   width: int = 1024, w_var: float = 2.0, b_var: float = 1e-4,
                   gamma: float = 1.0) -> KernelFn:
    """Builds k(x1, x2) -> [n1, n2] for images x [n, H, W, C].

    Args:
      arch: fc | conv | myrtle | rbf | linear.
      depth: m of FCm / Convm, N of Myrtle-N.
      kind: ntk | nngp (neural kernels only).
      parameterization: ntk | standard (standard depends on `width`).
      width: hidden width / channels, used by the standard parameterisation.
      w_var, b_var: weight and bias variances sigma_w^2, sigma_b^2.
      gamma: RBF bandwidth, k = exp(-gamma ||x1 - x2||^2 / d).

    Returns:
      A pure function (x1, x2=None) -> [n1, n2]; not jitted (callers jit at block level).
    """
    validate_kernel_args(arch, depth, kind, parameterization, width)
    if arch == "rbf":
        def rbf(x1: ArrayLike, x2: Optional[ArrayLike] = None) -> Array:
            a = jnp.reshape(x1, (x1.shape[0], -1))  # [n1, d]
            b = a if x2 is None else jnp.reshape(x2, (x2.shape[0], -1))  # [n2, d]
            sq = (jnp.sum(a * a, -1)[:, None] + jnp.sum(b * b, -1)[None, :]
                  - 2.0 * a @ b.T)  # [n1, n2]
            return jnp.exp(-gamma * jnp.maximum(sq, 0.0) / a.shape[1])  # [n1, n2]
        return rbf
    if arch == "linear":
        def linear(x1: ArrayLike, x2: Optional[ArrayLike] = None) -> Array:
            a = jnp.reshape(x1, (x1.shape[0], -1))  # [n1, d]
            b = a if x2 is None else jnp.reshape(x2, (x2.shape[0], -1))  # [n2, d]
            return a @ b.T  # [n1, n2]
        return linear
    _, _, stax_kernel_fn = stax.serial(
        *stax_layers(arch, depth, width, w_var, b_var, parameterization))

    def neural(x1: ArrayLike, x2: Optional[ArrayLike] = None) -> Array:
        return stax_kernel_fn(x1, x2, kind)  # [n1, n2]
    return neural


def _pad_rows(x: np.ndarray, multiple: int) -> np.ndarray:
    pad = (-x.shape[0]) % multiple
    if pad == 0:
        return x
    return np.concatenate([x, np.repeat(x[:1], pad, axis=0)], axis=0)


def kernel_matrix(kernel_fn: KernelFn, x1: ArrayLike, x2: Optional[ArrayLike] = None,
                  block_size: Optional[int] = None,
                  on_block: Optional[Callable[[int, int], None]] = None,
                  jitted: Optional[Callable] = None) -> np.ndarray:
    """k(x1, x2) computed in [block_size, block_size] tiles, assembled on the host.

    Rows are padded to a whole number of tiles so that one compiled tile serves every block;
    device memory is bounded by one tile. With x2=None the symmetric matrix is computed from
    its upper tiles only.

    Args:
      kernel_fn: k(x1, x2) -> [b1, b2].
      x1: [n1, ...]; x2: [n2, ...] or None (= x1).
      block_size: tile edge; None computes the whole matrix in one call.
      on_block: called with (done_tiles, total_tiles) after each tile (progress bars).
      jitted: an already-jitted kernel_fn to reuse across calls (saves a compile).

    Returns:
      np.ndarray [n1, n2].
    """
    fn = jitted if jitted is not None else jax.jit(kernel_fn)
    x1 = np.asarray(x1)
    symmetric = x2 is None
    x2 = x1 if symmetric else np.asarray(x2)
    n1, n2 = x1.shape[0], x2.shape[0]
    b1 = n1 if block_size is None else min(block_size, n1)
    b2 = n2 if block_size is None else min(block_size, n2)
    if symmetric:
        b1 = b2 = min(b1, b2)
    x1p, x2p = _pad_rows(x1, b1), _pad_rows(x2, b2)  # [n1', ...], [n2', ...]
    t1, t2 = x1p.shape[0] // b1, x2p.shape[0] // b2
    tiles = [(i, j) for i in range(t1) for j in range(t2) if not (symmetric and j < i)]
    out = None
    for done, (i, j) in enumerate(tiles, 1):
        tile = np.asarray(fn(x1p[i * b1:(i + 1) * b1], x2p[j * b2:(j + 1) * b2]))  # [b1, b2]
        if out is None:
            out = np.empty((x1p.shape[0], x2p.shape[0]), dtype=tile.dtype)  # [n1', n2']
        out[i * b1:(i + 1) * b1, j * b2:(j + 1) * b2] = tile
        if symmetric and i != j:
            out[j * b2:(j + 1) * b2, i * b1:(i + 1) * b1] = tile.T
        if on_block is not None:
            on_block(done, len(tiles))
    return out[:n1, :n2]
