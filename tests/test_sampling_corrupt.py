"""Class-balanced sampling and rho-corruption."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kip_runner.core.corrupt import corrupt, corruption_mask
from kip_runner.core.sampling import (check_balanced_feasible, class_balanced_indices,
                                      random_indices)


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
