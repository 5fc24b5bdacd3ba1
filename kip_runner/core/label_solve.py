"""Closed-form Label Solve (PAPER.md §3): the support labels that minimise the KIP loss.

With the support images X_s fixed, the KRR loss 1/2 ||y_t - K_ts (K_ss + λI)^-1 y_s||^2 is
quadratic in y_s, and its min-norm minimiser is

    y_s* = Φ₀(A) y_t,   A = K_ts (K_ss + λI)^-1   [n_t, n_s],   λ = reg · tr(K_ss) / n_s

(Φ₀ = Moore-Penrose pseudo-inverse; λ is the scale-invariant ridge of `krr.regularize`).

Numerics: A is formed by a Cholesky *solve* against K_ss + λI (never an explicit inverse;
krr.factorize's solve policy, which records any raised ridge), and Φ₀(A) y_t by an SVD
least-squares solve (`lstsq`, the numpy pinv cutoff rcond = eps · max(n_t, n_s)). For many
targets, A never has to be held in memory: the row blocks [A_b | y_b] are folded into
the triangular factor R of a QR factorisation (`qr_init` /
`qr_update`, optax-style pure state in, state out), and

    Q R = [A | y_t]   =>   argmin_y ||A y - y_t|| = argmin_y ||R₁ y - R₂||,

with the same minimum-norm solution because Q has orthonormal columns (R₁ = R[:, :n_s],
R₂ = R[:, n_s:]); the singular values of R₁ are those of A, so the cutoff is the same as a
direct solve. Memory is O((n_s + C)²) plus one block, whatever n_t. The same factor gives the
exact target loss of any labels (`qr_loss`), with no second pass over the targets.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jax.typing import ArrayLike

from kip_runner.core.krr import factorize
from kip_runner.core.types import Array


def _rcond(n_targets: int, n_support: int, dtype) -> float:
    """numpy's lstsq/pinv cutoff for an [n_t, n_s] matrix: eps · max(n_t, n_s)."""
    return float(jnp.finfo(dtype).eps) * max(n_targets, n_support)


class Operator(NamedTuple):
    """a(k_ts) = k_ts (K_ss + λI)^-1 for one factorised K_ss (see `make_operator`)."""

    chol: Array  # [n_s, n_s] Cholesky factor of K_ss + λI
    method: str  # "cholesky" or "cholesky+jitter" (krr.factorize's solve policy)
    reg: float  # the effective scale-invariant ridge

    def __call__(self, k_ts: ArrayLike) -> Array:
        """k_ts [b, n_s] -> A_b [b, n_s]."""
        return _apply(self.chol, jnp.asarray(k_ts, self.chol.dtype))


@jax.jit
def _apply(chol: Array, k_ts: Array) -> Array:
    # K_reg is symmetric, so k_ts K_reg^-1 = (K_reg^-1 k_ts^T)^T.
    return jsl.cho_solve((chol, True), k_ts.T).T  # [b, n_s]


def make_operator(k_ss: ArrayLike, reg: float, policy: str = "jitter") -> Operator:
    """Factorises K_ss + λI once (Cholesky, in K_ss's precision) and returns the operator.

    Args:
      k_ss: support kernel [n_s, n_s] (symmetric PSD).
      reg: scale-invariant ridge; λ = reg · tr(K_ss) / n_s.
      policy: krr.SOLVE_POLICIES; under "jitter" a K_ss that does not factor at `reg` is
        factorised at the smallest tenfold-larger ridge that works, recorded in the result.

    Raises:
      ValueError: K_ss has non-finite entries; krr.SolveError: no allowed ridge factors.
    """
    factor = factorize(k_ss, reg, policy)
    return Operator(factor.chol, factor.method, factor.reg)


def solve_labels(k_ss: ArrayLike, k_ts: ArrayLike, y_t: ArrayLike, reg: float) -> Array:
    """y_s* = pinv(K_ts (K_ss + λI)^-1) y_t, in memory (small problems, tests).

    Args:
      k_ss: [n_s, n_s]; k_ts: [n_t, n_s]; y_t: target labels [n_t, C]; reg: see above.

    Returns:
      The min-norm minimiser of the KIP loss over the support labels [n_s, C].
    """
    a = make_operator(k_ss, reg)(k_ts)  # [n_t, n_s]
    y_t = jnp.asarray(y_t, a.dtype)  # [n_t, C]
    return jnp.linalg.lstsq(a, y_t, rcond=_rcond(*a.shape, a.dtype))[0]  # [n_s, C]


def qr_init(n_support: int, n_classes: int, dtype=jnp.float32) -> Array:
    """The empty triangular factor of [A | y_t] (no target rows yet). [0, n_s + C]"""
    return jnp.zeros((0, n_support + n_classes), dtype)  # [0, n_s + C]


@jax.jit
def _qr_r(m: Array) -> Array:
    return jnp.linalg.qr(m, mode="r")  # [min(rows, n_s + C), n_s + C]


def qr_update(r: ArrayLike, a_block: ArrayLike, y_block: ArrayLike) -> Array:
    """Folds target rows into the factor: R' with R'^T R' = R^T R + [A_b|y_b]^T [A_b|y_b].

    Args:
      r: current factor [m, n_s + C] (from `qr_init` or a previous update).
      a_block: A rows of these targets [b, n_s]; y_block: their labels [b, C].

    Returns:
      The new factor [min(m + b, n_s + C), n_s + C]. Each call costs O((m + b)(n_s + C)²):
      callers batch blocks until m + b is at least about n_s + C.
    """
    r = jnp.asarray(r)
    block = jnp.concatenate([jnp.asarray(a_block, r.dtype),
                             jnp.asarray(y_block, r.dtype)], 1)  # [b, n_s + C]
    stacked = jnp.concatenate([r, block], 0)  # [m + b, n_s + C]
    return _qr_r(stacked)


def qr_solve(r: ArrayLike, n_support: int, n_targets: int) -> Array:
    """The min-norm least-squares labels from the factor of [A | y_t].

    Args:
      r: factor [m, n_s + C] after all target rows; n_support: n_s; n_targets: n_t (for the
        pinv cutoff, so the answer matches a direct lstsq on A).

    Returns:
      y_s* [n_s, C].
    """
    r = jnp.asarray(r)
    r1, r2 = r[:, :n_support], r[:, n_support:]  # [m, n_s], [m, C]
    return jnp.linalg.lstsq(r1, r2, rcond=_rcond(n_targets, n_support, r.dtype))[0]


def qr_loss(r: ArrayLike, y_s: ArrayLike, n_targets: int) -> Array:
    """The KIP loss 1/2 mean_t ||y_t - A y_s||² of labels y_s [n_s, C], from the factor. []

    Exact because ||[A | y_t] [y_s; -I]||_F = ||R [y_s; -I]||_F (Q has orthonormal columns).
    """
    r = jnp.asarray(r)
    y_s = jnp.asarray(y_s, r.dtype)
    n_s = y_s.shape[0]
    resid = r[:, :n_s] @ y_s - r[:, n_s:]  # [m, C]
    return 0.5 * jnp.sum(resid ** 2) / n_targets
