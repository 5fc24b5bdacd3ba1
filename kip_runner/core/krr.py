"""Kernel ridge-regression (PAPER.md §2): scale-invariant ridge, Cholesky solve, metrics.

The ridge is reg * tr(K_ss) / n_s (the paper's scale-invariant regularisation, reg = 1e-6),
so the predictions do not change when the kernel is rescaled.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jax.typing import ArrayLike

from kip_runner.core.types import Array

def regularize(k_ss: ArrayLike, reg: float) -> Array:
    """K_ss + reg * tr(K_ss)/n_s * I.  [n_s, n_s]"""
    k_ss = jnp.asarray(k_ss)
    n = k_ss.shape[0]
    return k_ss + reg * jnp.trace(k_ss) / n * jnp.eye(n, dtype=k_ss.dtype)  # [n_s, n_s]


def solve_pd(k_reg: ArrayLike, y: ArrayLike) -> Array:
    """(K_reg)^-1 y by Cholesky; jit-safe (NaN on failure). k_reg [n, n], y [n, C] -> [n, C]."""
    factor = jsl.cho_factor(k_reg, lower=True)
    return jsl.cho_solve(factor, y)  # [n, C]


# What happens when K_ss + ridge does not factor at the requested ridge (docs/precision.md):
#   jitter: retry the Cholesky factorisation with the ridge raised tenfold at a time, at most
#           MAX_JITTER_STEPS times, and report the ridge that worked (method "cholesky+jitter");
#   strict: fail at once.
# The estimator stays KRR either way: only its ridge changes, and callers record that ridge.
SOLVE_POLICIES = ("jitter", "strict")
MAX_JITTER_STEPS = 6


class SolveError(ValueError):
    """K_ss + ridge is not positive definite at this precision under the solve policy."""


class Factor(NamedTuple):
    chol: Array  # [n_s, n_s] lower Cholesky factor of K_ss + reg_effective tr(K_ss)/n_s I
    method: str  # "cholesky" (the requested ridge) or "cholesky+jitter" (a larger ridge)
    reg: float  # the effective scale-invariant ridge (== the requested reg unless jittered)


class KrrFit(NamedTuple):
    alpha: Array  # [n_s, C]  (K_ss + ridge)^-1 y_s
    method: str  # "cholesky" or "cholesky+jitter"
    reg: float  # the effective scale-invariant ridge


_cholesky = jax.jit(lambda k: jsl.cho_factor(k, lower=True)[0])


def factorize(k_ss: ArrayLike, reg: float, policy: str = "jitter") -> Factor:
    """Cholesky factor of K_ss + reg tr(K_ss)/n_s I under the solve policy (host-side check).

    The factor is computed in K_ss's own precision: pass a float64 K_ss for a float64 solve.

    Raises:
      ValueError: K_ss has non-finite entries, or an unknown policy.
      SolveError: no ridge allowed by the policy gives a finite factor.
    """
    if policy not in SOLVE_POLICIES:
        raise ValueError(f"solve policy must be one of {', '.join(SOLVE_POLICIES)}, "
                         f"got '{policy}'")
    k_ss = jnp.asarray(k_ss)
    if not bool(jnp.all(jnp.isfinite(k_ss))):
        raise ValueError("the support kernel matrix has non-finite entries "
                         "(check the input data and kernel hyper-parameters)")
    base = reg if reg > 0 else float(jnp.finfo(k_ss.dtype).eps)
    steps = range(1, MAX_JITTER_STEPS + 1) if policy == "jitter" else ()
    tries = [reg] + [float(f"{base * 10.0 ** k:.12g}") for k in steps]  # 1e-5, not 9.99..e-06
    for i, r in enumerate(tries):
        chol = _cholesky(regularize(k_ss, r))  # [n_s, n_s]
        if bool(jnp.all(jnp.isfinite(chol)) & jnp.all(jnp.diagonal(chol) > 0)):
            return Factor(chol, "cholesky" if i == 0 else "cholesky+jitter", float(r))
    dtype = jnp.dtype(k_ss.dtype).name
    raise SolveError(
        f"K_ss + ridge ({k_ss.shape[0]}x{k_ss.shape[0]}, {dtype}) is not positive definite at "
        f"reg={reg:g}" + (f" nor at reg={tries[-1]:g}" if len(tries) > 1 else "")
        + ("; use x64=true" if dtype != "float64" else "") + " or a larger reg"
        + ("" if policy == "jitter" else ", or solve=jitter"))


def fit(k_ss: ArrayLike, y_s: ArrayLike, reg: float, policy: str = "jitter") -> KrrFit:
    """Solves (K_ss + reg tr(K_ss)/n I) alpha = y_s by Cholesky, in K_ss's precision.

    Under policy="jitter" a K_ss that does not factor at `reg` is solved at the smallest
    tenfold-larger ridge that factors, and the fit says so (method, reg): never a silent
    change of estimator.

    Raises:
      ValueError / SolveError: see `factorize`.
    """
    factor = factorize(k_ss, reg, policy)
    y_s = jnp.asarray(y_s, factor.chol.dtype)  # [n_s, C]
    alpha = jsl.cho_solve((factor.chol, True), y_s)  # [n_s, C]
    return KrrFit(alpha, factor.method, factor.reg)


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
