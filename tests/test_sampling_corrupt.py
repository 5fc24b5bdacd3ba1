"""Class-balanced sampling and rho-corruption."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kip_runner.core.corrupt import corrupt, corruption_mask
from kip_runner.core.sampling import (check_balanced_feasible, class_balanced_indices,
                                      class_index, epoch_balanced_indices, random_indices,
                                      shuffle_rounds, swap_or_not)


@pytest.mark.parametrize("n", [10, 20, 37, 100])
def test_class_balanced_counts_are_exact(n):
    labels = jnp.asarray(np.random.default_rng(0).integers(0, 10, 1000))
    idx = np.asarray(jax.jit(class_balanced_indices, static_argnums=(2, 3))(
        jax.random.PRNGKey(1), labels, n, 10))
    assert len(set(idx.tolist())) == n
    counts = np.bincount(np.asarray(labels)[idx], minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == n
    assert sorted(counts.tolist()) == sorted([n // 10 + (c < n % 10) for c in range(10)])


def test_class_balanced_depends_on_key_only():
    labels = jnp.arange(100) % 10
    a = class_balanced_indices(jax.random.PRNGKey(0), labels, 20, 10)
    b = class_balanced_indices(jax.random.PRNGKey(0), labels, 20, 10)
    c = class_balanced_indices(jax.random.PRNGKey(1), labels, 20, 10)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(np.sort(a), np.sort(c))


def _uneven_labels():
    """1000 labels, class sizes 55..145 (uneven, like MNIST's 5421..6742)."""
    sizes = 55 + 10 * np.arange(10)
    return np.random.default_rng(0).permutation(np.repeat(np.arange(10), sizes))  # [1000]


epoch_sampler = jax.jit(epoch_balanced_indices, static_argnums=(3, 4))


@pytest.mark.parametrize("n", [10, 20, 37, 100, 550])
def test_epoch_balanced_counts_are_exact_without_duplicates(n):
    labels = _uneven_labels()
    classes = class_index(jnp.asarray(labels), 10)
    for step in (0, 1, 7, 123):
        idx = np.asarray(epoch_sampler(jax.random.PRNGKey(1), step, classes, n, 10))
        assert idx.dtype == np.int32 and len(set(idx.tolist())) == n
        counts = np.bincount(labels[idx], minlength=10)
        assert sorted(counts.tolist()) == sorted([n // 10 + (c < n % 10) for c in range(10)])


def test_epoch_balanced_walks_each_class_without_replacement():
    labels = _uneven_labels()
    classes = class_index(jnp.asarray(labels), 10)
    q = 5  # n = 50: class c has 55 + 10 c members -> 11 + 2 c slices of 5 per epoch
    per_epoch = (55 + 10 * np.arange(10)) // q
    batches = [np.asarray(epoch_sampler(jax.random.PRNGKey(2), s, classes, 10 * q, 10))
               for s in range(2 * per_epoch.max())]
    for c in range(10):
        mine = [b[labels[b] == c] for b in batches]
        epoch0 = np.concatenate(mine[:per_epoch[c]])
        assert len(set(epoch0.tolist())) == per_epoch[c] * q  # no repeat within an epoch
        epoch1 = np.concatenate(mine[per_epoch[c]:2 * per_epoch[c]])
        assert len(set(epoch1.tolist())) == per_epoch[c] * q
        assert not np.array_equal(epoch0, epoch1)  # a fresh permutation each epoch


def test_epoch_balanced_is_a_pure_function_of_key_and_step():
    classes = class_index(jnp.asarray(_uneven_labels()), 10)
    a = np.asarray(epoch_sampler(jax.random.PRNGKey(0), 5, classes, 40, 10))
    b = np.asarray(epoch_balanced_indices(jax.random.PRNGKey(0), jnp.int32(5), classes, 40, 10))
    np.testing.assert_array_equal(a, b)  # jitted or not, int or traced step
    for other in (epoch_sampler(jax.random.PRNGKey(0), 6, classes, 40, 10),
                  epoch_sampler(jax.random.PRNGKey(1), 5, classes, 40, 10)):
        assert not np.array_equal(np.sort(a), np.sort(np.asarray(other)))


def _swap_or_not(key, size, x):
    k_off, k_salt = jax.random.split(key)
    rounds = shuffle_rounds(size)
    offsets = jax.random.randint(k_off, (1, rounds), 0, size)  # [1, R]
    salts = jax.random.bits(k_salt, (1, rounds), jnp.uint32)  # [1, R]
    return swap_or_not(x[None], jnp.array([size]), offsets, salts)[0]


@pytest.mark.parametrize("size", [1, 2, 3, 10, 257, 6742])
def test_swap_or_not_is_a_permutation(size):
    out = np.asarray(_swap_or_not(jax.random.PRNGKey(size), size, jnp.arange(size)))
    assert sorted(out.tolist()) == list(range(size))


def test_swap_or_not_positions_are_uniform():
    # where position 0 and position 3 go, over 4000 keys: every target about equally often,
    # and the two never collide (a permutation)
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    out = np.asarray(jax.vmap(lambda k: _swap_or_not(k, 8, jnp.array([0, 3])))(keys))  # [K, 2]
    assert np.all(out[:, 0] != out[:, 1])
    for col in out.T:
        counts = np.bincount(col, minlength=8)
        assert np.all(np.abs(counts - 500) < 5 * np.sqrt(500)), counts


def test_random_indices_are_distinct():
    idx = np.asarray(random_indices(jax.random.PRNGKey(0), 50, 50))
    assert sorted(idx.tolist()) == list(range(50))


def test_infeasible_balanced_subset_raises():
    with pytest.raises(ValueError, match="per class"):
        check_balanced_feasible([5, 1, 5], 9)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.75, 0.9])
def test_mask_corrupts_exact_fraction_per_image(rho):
    mask = corruption_mask(jax.random.PRNGKey(0), (4, 8, 8, 3), rho)
    per_image = np.asarray(mask).reshape(4, -1).sum(1)
    assert (per_image == round(rho * 192)).all()


def test_corrupt_fills_noise_in_range_and_keeps_the_rest():
    x = jnp.full((3, 5, 5, 1), 7.0)
    xc, mask = corrupt(jax.random.PRNGKey(0), x, 0.5, "noise")
    assert np.all(np.asarray(xc)[~np.asarray(mask)] == 7.0)
    vals = np.asarray(xc)[np.asarray(mask)]
    assert vals.min() >= -1.0 and vals.max() <= 1.0
    xz, mz = corrupt(jax.random.PRNGKey(0), x, 0.5, "zero")
    assert np.all(np.asarray(xz)[np.asarray(mz)] == 0.0)


def test_rho_may_be_traced():
    f = jax.jit(lambda r: corruption_mask(jax.random.PRNGKey(0), (2, 10), r).sum())
    assert int(f(0.5)) == 10 and int(f(0.9)) == 18
