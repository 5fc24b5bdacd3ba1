"""Kernel ridge-regression (PAPER.md §2): scale-invariant ridge, Cholesky solve, metrics.

The ridge is reg * tr(K_ss) / n_s (the paper's scale-invariant regularisation, reg = 1e-6),
so the predictions do not change when the kernel is rescaled.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jax.typing import ArrayLike

from kip_runner.core.types import Array

log = logging.getLogger(__name__)


def regularize(k_ss: ArrayLike, reg: float) -> Array:
    """K_ss + reg * tr(K_ss)/n_s * I.  [n_s, n_s]"""
    k_ss = jnp.asarray(k_ss)
    n = k_ss.shape[0]
    return k_ss + reg * jnp.trace(k_ss) / n * jnp.eye(n, dtype=k_ss.dtype)  # [n_s, n_s]


def solve_pd(k_reg: ArrayLike, y: ArrayLike) -> Array:
    """(K_reg)^-1 y by Cholesky; jit-safe (NaN on failure). k_reg [n, n], y [n, C] -> [n, C]."""
    factor = jsl.cho_factor(k_reg, lower=True)
    return jsl.cho_solve(factor, y)  # [n, C]


class KrrFit(NamedTuple):
    alpha: Array  # [n_s, C]  (K_ss + ridge)^-1 y_s
    method: str  # "cholesky" or "lstsq" (fallback when K_ss + ridge is not numerically PD)


def fit(k_ss: ArrayLike, y_s: ArrayLike, reg: float) -> KrrFit:
    """Solves (K_ss + reg tr(K_ss)/n I) alpha = y_s, checking the result host-side.

    Falls back to an SVD least-squares solve when the Cholesky factor is not finite
    (a kernel that is PSD only up to round-off with a tiny ridge).

    Raises:
      ValueError: K_ss has non-finite entries, or no solve gives a finite answer.
    """
    k_ss = jnp.asarray(k_ss)
    if not bool(jnp.all(jnp.isfinite(k_ss))):
        raise ValueError("the support kernel matrix has non-finite entries "
                         "(check the input data and kernel hyper-parameters)")
    k_reg = regularize(k_ss, reg)  # [n_s, n_s]
    alpha = jax.jit(solve_pd)(k_reg, y_s)  # [n_s, C]
    if bool(jnp.all(jnp.isfinite(alpha))):
        return KrrFit(alpha, "cholesky")
    log.warning("Cholesky solve of K_ss + ridge failed (not positive definite at this "
                "precision); falling back to least squares. Consider x64=true or a larger reg.")
    alpha = jnp.linalg.lstsq(k_reg, y_s)[0]  # [n_s, C]
    if not bool(jnp.all(jnp.isfinite(alpha))):
        raise ValueError("KRR solve failed: K_ss + ridge is singular even for least squares; "
                         "increase reg")
    return KrrFit(alpha, "lstsq")


def predict(k_ts: ArrayLike, alpha: ArrayLike) -> Array:
    """K_ts alpha.  k_ts [n_t, n_s], alpha [n_s, C] -> [n_t, C]"""
    return jnp.asarray(k_ts) @ jnp.asarray(alpha)  # [n_t, C]


def accuracy(pred: ArrayLike, y: ArrayLike) -> Array:
    """Fraction of rows whose argmax matches.  pred, y [n, C] -> []"""
    return jnp.mean(jnp.argmax(pred, -1) == jnp.argmax(y, -1))


def mse(pred: ArrayLike, y: ArrayLike) -> Array:
    """Mean squared error over all entries.  pred, y [n, C] -> []"""
    return jnp.mean((jnp.asarray(pred) - jnp.asarray(y)) ** 2)


def kip_loss(k_ss: ArrayLike, k_ts: ArrayLike, y_s: ArrayLike, y_t: ArrayLike,
             reg: float) -> Array:
    """The KRR loss 1/2 ||y_t - K_ts (K_ss + ridge)^-1 y_s||^2 (mean over targets; jit-safe).

    k_ss [n_s, n_s], k_ts [n_t, n_s], y_s [n_s, C], y_t [n_t, C] -> []
    """
    pred = k_ts @ solve_pd(regularize(k_ss, reg), y_s)  # [n_t, C]
    return 0.5 * jnp.mean(jnp.sum((y_t - pred) ** 2, -1))
