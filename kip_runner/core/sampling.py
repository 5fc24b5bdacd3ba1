"""Index sampling with explicit PRNG keys (PAPER.md §2, §8).

Class-balanced sampling is the default for every natural subset (baselines, support init,
target batches): PAPER.md §8 measured that Table A1's "random subsets" are class-balanced.
Both samplers are jittable (static output size), so target batches are drawn on device.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from kip_runner.core.types import Array, PRNGKey


def class_quotas(key: PRNGKey, n: int, n_classes: int) -> Array:
    """Per-class counts summing to n: n // C each, the n % C extras on random classes. [C]"""
    extra_rank = jax.random.permutation(key, n_classes)  # [C]
    return n // n_classes + (extra_rank < n % n_classes).astype(jnp.int32)  # [C]


def class_balanced_indices(key: PRNGKey, labels: ArrayLike, n: int, n_classes: int) -> Array:
    """n distinct indices with per-class counts differing by at most one.

    Args:
      key: PRNG key.
      labels: int class labels [N], values in [0, n_classes).
      n: number of indices (static).
      n_classes: C (static).

    Returns:
      int32 indices [n], grouped by class, random within class. Every class must have at
      least ceil(n / C) members (checked by callers on the host).
    """
    labels = jnp.asarray(labels)
    k_order, k_quota = jax.random.split(key)
    jitter = jax.random.uniform(k_order, labels.shape)  # [N]
    order = jnp.argsort(labels.astype(jnp.float32) + jitter)  # [N] grouped by class
    counts = jnp.bincount(labels, length=n_classes)  # [C]
    starts = jnp.cumsum(counts) - counts  # [C]
    quotas = class_quotas(k_quota, n, n_classes)  # [C]
    slot_class = jnp.repeat(jnp.arange(n_classes), quotas, total_repeat_length=n)  # [n]
    slot_start = (jnp.cumsum(quotas) - quotas)[slot_class]  # [n]
    offset = jnp.arange(n) - slot_start  # [n]
    return order[starts[slot_class] + offset].astype(jnp.int32)  # [n]


def random_indices(key: PRNGKey, n_total: int, n: int) -> Array:
    """n distinct uniformly random indices out of n_total. [n]"""
    return jax.random.choice(key, n_total, (n,), replace=False).astype(jnp.int32)


def sample_indices(key: PRNGKey, labels: ArrayLike, n: int, n_classes: int,
                   balanced: bool = True) -> Array:
    """Class-balanced (default) or plain random subset indices. [n]"""
    if balanced:
        return class_balanced_indices(key, labels, n, n_classes)
    return random_indices(key, jnp.shape(labels)[0], n)


def check_balanced_feasible(class_counts, n: int) -> None:
    """Raises ValueError when some class has fewer than ceil(n / C) examples."""
    n_classes = len(class_counts)
    need = -(-n // n_classes)
    short = [c for c, k in enumerate(class_counts) if k < need]
    if short:
        raise ValueError(f"a class-balanced subset of {n} needs {need} examples per class, "
                         f"but class(es) {short} have fewer; lower the size or use "
                         f"sampling=random")
