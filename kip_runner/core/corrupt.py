"""rho-corruption (PAPER.md §1, §2 KIP_rho, §5): a fixed random rho fraction of each image's
coordinates is replaced by uniform noise in [-1, 1] (the paper's default, applied after
standardisation) or by zeros. `rho` may be a traced value, so one compiled step serves every
rho of a sweep. `freeze(mask)` is the optax transformation that keeps those coordinates fixed
during KIP.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from kip_runner.core.types import Array, PRNGKey

CORRUPTIONS = ("noise", "zero")


def corruption_mask(key: PRNGKey, shape: tuple, rho: ArrayLike) -> Array:
    """Boolean mask [n, ...], True on exactly round(rho * d) random coordinates per image.

    d = prod(shape[1:]). Exactness comes from ranking one uniform draw per coordinate.
    """
    n, d = shape[0], 1
    for s in shape[1:]:
        d *= s
    u = jax.random.uniform(key, (n, d))  # [n, d]
    ranks = jnp.argsort(jnp.argsort(u, axis=1), axis=1)  # [n, d]
    mask = ranks < jnp.round(jnp.asarray(rho) * d)  # [n, d]
    return mask.reshape(shape)  # [n, ...]


def fill_values(key: PRNGKey, shape: tuple, corruption: str, dtype=jnp.float32) -> Array:
    """The values written into corrupted coordinates. [shape]"""
    if corruption == "noise":
        return jax.random.uniform(key, shape, dtype, minval=-1.0, maxval=1.0)
    if corruption == "zero":
        return jnp.zeros(shape, dtype)
    raise ValueError(f"corruption must be one of {CORRUPTIONS}, got '{corruption}'")


def corrupt(key: PRNGKey, x: ArrayLike, rho: ArrayLike, corruption: str = "noise"
            ) -> tuple[Array, Array]:
    """Corrupts a rho fraction of each image of x. Returns (x_corrupted, mask), both x's shape."""
    x = jnp.asarray(x)
    k_mask, k_fill = jax.random.split(key)
    mask = corruption_mask(k_mask, x.shape, rho)  # [n, ...]
    fill = fill_values(k_fill, x.shape, corruption, x.dtype)  # [n, ...]
    return jnp.where(mask, fill, x), mask


class FreezeState(NamedTuple):
    """The frozen-coordinate mask, kept in the optimiser state (so it is checkpointed with it
    and is a device array, not a constant baked into the compiled step)."""

    mask: Any  # pytree of bool arrays matching the params: True = never updated


def freeze(mask: Any) -> optax.GradientTransformation:
    """KIP_rho (PAPER.md §2): zeroes the updates of masked (corrupted) coordinates.

    Chain it after the optimiser, `optax.chain(optax.adam(lr), freeze(mask))`, so frozen
    coordinates receive an exact zero update and stay bit-identical; Adam's moments still see
    the raw gradient, which does not matter because their updates are discarded.

    Args:
      mask: pytree matching the params; bool leaves (broadcastable to the leaf), True where
        the coordinate is frozen.
    """

    def init_fn(params: Any) -> FreezeState:
        del params
        # a fresh copy per init: a jitted step donates its state, which must not delete the
        # caller's mask (or another state's)
        return FreezeState(jax.tree_util.tree_map(lambda m: jnp.array(m, copy=True), mask))

    def update_fn(updates: Any, state: FreezeState, params: Any = None):
        del params
        updates = jax.tree_util.tree_map(
            lambda u, m: jnp.where(m, jnp.zeros_like(u), u), updates, state.mask)
        return updates, state

    return optax.GradientTransformation(init_fn, update_fn)
