"""Shared type aliases and protocols of the core."""

from typing import NamedTuple, Optional, Protocol

import jax
from jax.typing import ArrayLike

Array = jax.Array
PRNGKey = jax.Array


class KernelFn(Protocol):
    """k(x1, x2) -> [n1, n2]. Inputs are images [n, H, W, C] (flattened where needed)."""

    def __call__(self, x1: ArrayLike, x2: Optional[ArrayLike] = None) -> Array: ...


class SupportSet(NamedTuple):
    """A (possibly learned) support set."""

    x: Array  # [n_s, H, W, C]
    y: Array  # [n_s, n_classes]
