"""Index sampling with explicit PRNG keys (PAPER.md §2, §8).

Class-balanced sampling is the default for every natural subset (baselines, support init,
target batches): PAPER.md §8 measured that Table A1's "random subsets" are class-balanced.
All samplers are jittable (static output size), so target batches are drawn on device.

KIP's target batches (`epoch_balanced_indices`) walk through each class in epochs, without
replacement: step s takes the next slice of a per-(class, epoch) permutation. That
permutation is a keyed swap-or-not shuffle (Hoang, Morris & Rogaway, CRYPTO 2012) evaluated
only at the slice's positions, so a step costs O(batch) work and no sort of the training set
(`class_balanced_indices` argsorts all N labels: ~20 ms a step for MNIST on 2 CPU cores), and
the batch is a pure function of (key, step): a resumed run replays the same batches without
any sampler state in the checkpoint.
"""

from __future__ import annotations

from typing import NamedTuple

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


class ClassIndex(NamedTuple):
    """The training set grouped by class, computed once (class_index) for the samplers."""

    order: Array  # [N] int32 example indices sorted by class (stable)
    starts: Array  # [C] int32 first position of each class in `order`
    counts: Array  # [C] int32 examples per class


def class_index(labels: ArrayLike, n_classes: int) -> ClassIndex:
    """Groups the examples by class. labels [N] int -> ClassIndex ([N], [C], [C])."""
    labels = jnp.asarray(labels, jnp.int32)
    order = jnp.argsort(labels, stable=True).astype(jnp.int32)  # [N]
    counts = jnp.bincount(labels, length=n_classes).astype(jnp.int32)  # [C]
    return ClassIndex(order, jnp.cumsum(counts) - counts, counts)


def _fmix32(h: Array) -> Array:
    """MurmurHash3's 32-bit finaliser: a cheap, well-mixing bijection of uint32 (vectorises)."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def swap_or_not(x: ArrayLike, sizes: ArrayLike, offsets: ArrayLike, salts: ArrayLike
                ) -> Array:
    """G keyed permutations of [0, sizes[g]), evaluated at x[g] (Hoang-Morris-Rogaway).

    Round i pairs x with partner = (offsets[g, i] - x) mod sizes[g] and swaps the two when a
    keyed hash of max(x, partner) has its top bit set. Each round is an involution of
    [0, size), so any number of rounds is a bijection, for every size (no cycle walking),
    and a round costs a few integer ops per element (no division, no sort).

    Args:
      x: int32 positions [G, m], 0 <= x[g] < sizes[g].
      sizes: int32 [G] domain sizes.
      offsets: int32 [G, R] round offsets, uniform in [0, sizes).
      salts: uint32 [G, R] round hash keys.

    Returns:
      int32 [G, m], the permuted positions.
    """
    x = jnp.asarray(x, jnp.int32)
    size = jnp.asarray(sizes, jnp.int32)[:, None]  # [G, 1]
    # Unrolled, with the round keys broadcast along rows: XLA:CPU fuses all rounds into one
    # vectorised loop. A lax.fori_loop, or per-element key lookups, ran 10-20x slower.
    for i in range(offsets.shape[1]):
        d = offsets[:, i, None] - x  # [G, m] in (-size, size)
        partner = jnp.where(d < 0, d + size, d)  # [G, m] (offset - x) mod size
        hi = jnp.maximum(x, partner).astype(jnp.uint32)  # [G, m] the pair's name
        swap = (_fmix32(hi ^ salts[:, i, None]) >> 31) == 1  # [G, m]
        x = jnp.where(swap, partner, x)  # [G, m]
    return x


def shuffle_rounds(n_max: int) -> int:
    """Swap-or-not rounds for domains up to n_max: 6 log2(n_max), HMR's full-security
    count (after r rounds an element has stayed put with probability 2^-r)."""
    return 6 * max(int(n_max - 1).bit_length(), 4)


def epoch_balanced_indices(key: PRNGKey, step: ArrayLike, classes: ClassIndex, n: int,
                           n_classes: int) -> Array:
    """The target batch of `step`: class-balanced, epoch-wise without replacement.

    Class c (n_c members) is cut into m_c = n_c // ceil(n / C) slices of ceil(n / C)
    positions. Step s uses slice s mod m_c of the class's permutation for epoch s // m_c,
    (derived from `key`, c and the epoch), taking its first quota_c positions; quotas are
    n // C, plus one on n % C classes drawn afresh each step. So within a batch there are no
    duplicates, per-class counts differ by at most one, and within an epoch of a class no
    example repeats; the n_c mod ceil(n / C) positions left over in an epoch are skipped in
    that epoch only (a fresh permutation each epoch).

    Args:
      key: the sampler stream's key (constant over a run).
      step: int32 [] step counter.
      classes: class_index of the training labels.
      n: batch size (static).
      n_classes: C (static).

    Returns:
      int32 indices [n], grouped by class. Every class must have at least ceil(n / C)
      members (checked by callers on the host).
    """
    step = jnp.asarray(step, jnp.int32)
    n_total = classes.order.shape[0]
    rounds = shuffle_rounds(n_total)
    q_max = -(-n // n_classes)
    k_epochs, k_quota = jax.random.split(key)
    quotas = class_quotas(jax.random.fold_in(k_quota, step), n, n_classes)  # [C]
    per_epoch = jnp.maximum(classes.counts // q_max, 1)  # [C] slices (steps) per epoch
    epoch, sliced = step // per_epoch, step % per_epoch  # [C], [C]

    def round_keys(c, e, count):
        k = jax.random.fold_in(jax.random.fold_in(k_epochs, c), e)
        k_off, k_salt = jax.random.split(k)
        return (jax.random.randint(k_off, (rounds,), 0, count),  # [R]
                jax.random.bits(k_salt, (rounds,), jnp.uint32))  # [R]

    offsets, salts = jax.vmap(round_keys)(jnp.arange(n_classes), epoch,
                                          classes.counts)  # [C, R], [C, R]
    position = sliced[:, None] * q_max + jnp.arange(q_max)[None, :]  # [C, q_max] < m_c q_max <= n_c
    shuffled = swap_or_not(position, classes.counts, offsets, salts)  # [C, q_max]
    # A class smaller than q_max (callers check on the host) wraps around, with duplicates.
    # lax.cond rather than jnp.where: a conditional is also a fusion boundary, which keeps
    # the lookup below out of the shuffle's loop (a gather in it scalarises all rounds:
    # measured 6 ms instead of 0.7; XLA:CPU drops optimization_barrier before fusion).
    shuffled = jax.lax.cond(jnp.all(classes.counts >= q_max), lambda s: s,
                            lambda s: s % classes.counts[:, None], shuffled)  # [C, q_max]
    chosen = classes.order[classes.starts[:, None] + shuffled].reshape(-1)  # [C q_max]
    if n == n_classes * q_max:
        return chosen  # [n] every class takes its whole slice
    slot_class = jnp.repeat(jnp.arange(n_classes), quotas, total_repeat_length=n)  # [n]
    slot_start = (jnp.cumsum(quotas) - quotas)[slot_class]  # [n]
    return chosen[slot_class * q_max + jnp.arange(n) - slot_start]  # [n] first quota_c each


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
