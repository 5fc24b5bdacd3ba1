"""KIP, Algorithm 1 of the paper (PAPER.md §2): learn a support set (X_s, y_s) whose KRR
predictor fits a class-balanced target batch sampled from the training set each step.

    L(X_s, y_s) = 1/2 ||y_t - K_ts (K_ss + reg tr(K_ss)/n_s I)^-1 y_s||^2  (mean over targets)

`make_kip_step` returns one jitted `step(state, loop_key) -> (state, metrics)` per kernel:
it derives the step key as fold_in(loop_key, state.step) (so a resumed run replays the same
randomness), samples the target batch on device (core.sampling.class_balanced_indices),
optionally augments it (core.augment), and applies Adam chained with core.corrupt.freeze (the
KIP_rho mask; with learn_labels=False the labels are "frozen" the same way). The support batch
is the whole support set. Static choices (kernel, augmentation, batch size) are closed over;
the training data are passed as device arrays, never baked into the compiled step.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from kip_runner.core import krr
from kip_runner.core.augment import AugmentArgs, augment
from kip_runner.core.corrupt import freeze
from kip_runner.core.sampling import class_balanced_indices
from kip_runner.core.types import Array, KernelFn, PRNGKey


class KipState(NamedTuple):
    """Everything a KIP run needs to continue (and what a checkpoint stores)."""

    step: Array  # [] int32, number of steps taken
    params: dict  # {"x": [n_s, H, W, C], "y": [n_s, C]}
    opt_state: Any  # optax state of chain(adam, freeze)


class TargetData(NamedTuple):
    """The training set the target batches are drawn from (device arrays)."""

    x: Array  # [N, H, W, C]
    y: Array  # [N, C] centred one-hot
    labels: Array  # [N] int32 classes
    sq_norms: Optional[Array] = None  # [N] |x|^2, precomputed for dot-product kernels


def target_data(x: ArrayLike, y: ArrayLike, labels: ArrayLike, dtype=None) -> TargetData:
    """Device arrays of the training set with precomputed squared norms."""
    x = jnp.asarray(x, dtype)
    flat = x.reshape(x.shape[0], -1)  # [N, d]
    return TargetData(x, jnp.asarray(y, x.dtype), jnp.asarray(labels, jnp.int32),
                      jnp.sum(flat * flat, -1))  # [N]


# ---- dot-product kernels: k(x1, x2) = f(x1.x2, |x1|^2, |x2|^2) -------------------------------
# For FC NTK/NNGP (ntk parameterisation), RBF and linear kernels the target side of the step
# needs only the [n_t, n_s] Gram block x_t.x_s^T and the targets' norms, which are precomputed
# once for the whole training set. The formulas are neural-tangents' (Dense + ABRelu(0, 1)),
# checked against core.kernels.make_kernel_fn in the tests.

@jax.custom_jvp
def _safe_sqrt(x: Array) -> Array:
    return jnp.sqrt(jnp.maximum(x, 0.0))


@_safe_sqrt.defjvp
def _safe_sqrt_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    root = _safe_sqrt(x)
    # zero derivative where the argument is ~0 (identical inputs), as neural-tangents does
    return root, jnp.where(x > 1e-30, x_dot / (2 * jnp.maximum(root, 1e-30)), 0.0)


@jax.custom_jvp
def _angle(y: Array, x: Array) -> Array:
    """arctan2(y, x) for y >= 0, in [0, pi]; pi/2 at (0, 0) as in neural-tangents.

    XLA on CPU evaluates arctan2 with scalar libm calls (~25 ns an element, measured 14.5 ms
    for the [6000, 100] block, more than the x_t.x_s^T matmul), so float32 uses the Cephes
    atanf polynomial (range-reduced, ~1e-7 relative error), which vectorises; float64 keeps
    jnp.arctan2. The derivative is exact (custom JVP).
    """
    if x.dtype == jnp.float64:
        return jnp.where((x == 0) & (y == 0), jnp.pi / 2, jnp.arctan2(y, x))
    ax, ay = jnp.abs(x), jnp.abs(y)
    hi, lo = jnp.maximum(ax, ay), jnp.minimum(ax, ay)
    a = lo / jnp.maximum(hi, 1e-37)  # in [0, 1]
    big = a > 0.41421356  # tan(pi/8): reduce to |z| <= tan(pi/8)
    z = jnp.where(big, (a - 1.0) / (a + 1.0), a)
    zz = z * z
    t = ((((8.05374449538e-2 * zz - 1.38776856032e-1) * zz + 1.99777106478e-1) * zz
          - 3.33329491539e-1) * zz * z + z)
    t = jnp.where(big, t + jnp.pi / 4, t)  # atan(lo / hi) in [0, pi/4]
    t = jnp.where(ay > ax, jnp.pi / 2 - t, t)  # atan(y / |x|) in [0, pi/2]
    t = jnp.where(x < 0, jnp.pi - t, t)
    return jnp.where(hi == 0, jnp.pi / 2, t).astype(x.dtype)


@_angle.defjvp
def _angle_jvp(primals, tangents):
    (y, x), (y_dot, x_dot) = primals, tangents
    denom = jnp.maximum(x * x + y * y, 1e-30)
    return _angle(y, x), (x * y_dot - y * x_dot) / denom


GramKernel = Callable[[Array, Array, Array], Array]


def gram_kernel(arch: str, depth: int, kind: str, parameterization: str, dim: int,
                w_var: float = 2.0, b_var: float = 1e-4, gamma: float = 1.0
                ) -> Optional[GramKernel]:
    """k as a function of (gram [n1,n2], sq_norms1 [n1], sq_norms2 [n2]); None when the kernel
    is not a dot-product kernel handled here (conv, Myrtle, standard parameterisation)."""
    if arch == "linear":
        return lambda g, n1, n2: g
    if arch == "rbf":
        def rbf(g: Array, n1: Array, n2: Array) -> Array:
            sq = n1[:, None] + n2[None, :] - 2.0 * g  # [n1, n2]
            return jnp.exp(-gamma * jnp.maximum(sq, 0.0) / dim)
        return rbf
    if arch != "fc" or parameterization != "ntk":
        return None

    def fc(g: Array, n1: Array, n2: Array) -> Array:
        nngp = w_var * g / dim + b_var  # [n1, n2] first Dense
        c1, c2 = w_var * n1 / dim + b_var, w_var * n2 / dim + b_var  # [n1], [n2]
        ntk = nngp
        for _ in range(depth):
            root = _safe_sqrt(c1[:, None] * c2[None, :] - nngp * nngp)  # [n1, n2]
            angle = _angle(root, nngp)  # [n1, n2]
            dot_sigma = 0.5 - angle / (2 * jnp.pi)
            nngp = root / (2 * jnp.pi) + dot_sigma * nngp  # ReLU
            ntk = ntk * dot_sigma
            c1, c2 = c1 / 2, c2 / 2
            nngp = w_var * nngp + b_var  # next Dense (the last one is the readout)
            c1, c2 = w_var * c1 + b_var, w_var * c2 + b_var
            ntk = nngp + w_var * ntk
        return ntk if kind == "ntk" else nngp
    return fc


def kip_loss(kernel_fn: KernelFn, x_support: ArrayLike, y_support: ArrayLike,
             x_target: ArrayLike, y_target: ArrayLike, reg: float) -> tuple[Array, Array]:
    """The KRR loss of the support on the target batch, and the batch accuracy.

    x_support [n_s,H,W,C], y_support [n_s,C], x_target [n_t,H,W,C], y_target [n_t,C]
    Returns (loss [], accuracy []).
    """
    dtype = jnp.result_type(x_support)  # the caller's precision, not the global x64 flag
    k_ss = kernel_fn(x_support, None).astype(dtype)  # [n_s, n_s]
    k_ts = kernel_fn(x_target, x_support).astype(dtype)  # [n_t, n_s]
    return krr_loss(k_ss, k_ts, y_support, y_target, reg)


def gram_kip_loss(gram_fn: GramKernel, x_support: ArrayLike, y_support: ArrayLike,
                  x_target: ArrayLike, y_target: ArrayLike, reg: float,
                  target_sq_norms: Optional[ArrayLike] = None) -> tuple[Array, Array]:
    """kip_loss for a dot-product kernel: only x_t.x_s^T [n_t, n_s] touches the targets.

    target_sq_norms [n_t] may be given (precomputed); otherwise computed from x_target.
    """
    xs = jnp.reshape(x_support, (x_support.shape[0], -1))  # [n_s, d]
    xt = jnp.reshape(x_target, (x_target.shape[0], -1))  # [n_t, d]
    ns = jnp.sum(xs * xs, -1)  # [n_s]
    nt = jnp.sum(xt * xt, -1) if target_sq_norms is None else target_sq_norms  # [n_t]
    k_ss = gram_fn(xs @ xs.T, ns, ns)  # [n_s, n_s]
    k_ts = gram_fn(xt @ xs.T, nt, ns)  # [n_t, n_s]
    return krr_loss(k_ss, k_ts, y_support, y_target, reg)


def krr_loss(k_ss: Array, k_ts: Array, y_support: ArrayLike, y_target: ArrayLike,
             reg: float) -> tuple[Array, Array]:
    """(loss [], accuracy []) from the kernel blocks k_ss [n_s, n_s], k_ts [n_t, n_s]."""
    k_ss = 0.5 * (k_ss + k_ss.T)  # exact symmetry keeps the float32 Cholesky well posed
    alpha = krr.solve_pd(krr.regularize(k_ss, reg), y_support)  # [n_s, C]
    pred = k_ts @ alpha  # [n_t, C]
    loss = 0.5 * jnp.mean(jnp.sum((y_target - pred) ** 2, -1))
    return loss, krr.accuracy(pred, y_target)


def make_optimizer(lr: float, frozen: dict) -> optax.GradientTransformation:
    """Adam followed by the freeze mask (PAPER.md §2: Adam; KIP_rho: never update masked
    coordinates). `frozen` = {"x": bool [n_s,H,W,C], "y": bool [n_s,C] or []}."""
    return optax.chain(optax.adam(lr), freeze(frozen))


def init_state(x_support: ArrayLike, y_support: ArrayLike,
               tx: optax.GradientTransformation) -> KipState:
    """The state at step 0. x_support [n_s,H,W,C], y_support [n_s,C]"""
    params = {"x": jnp.asarray(x_support), "y": jnp.asarray(y_support)}
    return KipState(jnp.zeros((), jnp.int32), params, tx.init(params))


def frozen_mask(corrupted: ArrayLike, n_classes: int, learn_labels: bool) -> dict:
    """The freeze pytree: corrupted pixels, and all labels unless they are learned.

    corrupted [n_s,H,W,C] bool -> {"x": [n_s,H,W,C], "y": [n_s, C]}
    """
    corrupted = jnp.asarray(corrupted, bool)
    y = jnp.full((corrupted.shape[0], n_classes), not learn_labels)  # [n_s, C]
    return {"x": corrupted, "y": y}


def make_kip_step(kernel_fn: KernelFn, tx: optax.GradientTransformation, *, reg: float,
                  target_batch: int, n_classes: int,
                  augment_args: Optional[AugmentArgs] = None,
                  target_sharding: Optional[jax.sharding.Sharding] = None,
                  gram_fn: Optional[GramKernel] = None,
                  ) -> Callable[[KipState, PRNGKey, TargetData], tuple[KipState, dict]]:
    """Builds the jitted KIP step for one kernel.

    Args:
      kernel_fn: k(x1, x2) -> [n1, n2] (pure, traceable).
      tx: the optimiser (make_optimizer).
      reg: scale-invariant ridge (PAPER.md §2, 1e-6).
      target_batch: n_t, class-balanced targets per step (static).
      n_classes: C (static).
      augment_args: augment the target batch each step when given.
      target_sharding: sharding of the target batch's leading axis (multi-device: the target
        side of the kernel, the dominant cost, is then split across devices); None = default.
      gram_fn: the same kernel as a dot-product kernel (gram_kernel); when given, the step
        computes only x_t.x_s^T and reuses the precomputed target norms (data.sq_norms).

    Returns:
      step(state, loop_key, data) -> (state, {"loss", "acc"}); jitted once, state donated.
      The step key is fold_in(loop_key, state.step).
    """

    def loss_fn(params: dict, x_t: Array, y_t: Array, n_t: Optional[Array]):
        if gram_fn is not None:
            return gram_kip_loss(gram_fn, params["x"], params["y"], x_t, y_t, reg, n_t)
        return kip_loss(kernel_fn, params["x"], params["y"], x_t, y_t, reg)

    def step(state: KipState, loop_key: PRNGKey, data: TargetData):
        key = jax.random.fold_in(loop_key, state.step)
        k_target, k_augment = jax.random.split(key)
        idx = class_balanced_indices(k_target, data.labels, target_batch, n_classes)  # [n_t]
        x_t, y_t = data.x[idx], data.y[idx]  # [n_t, H, W, C], [n_t, C]
        n_t = None if data.sq_norms is None else data.sq_norms[idx]  # [n_t]
        # Materialise the gathered batch once: otherwise XLA:CPU may fuse the gather into both
        # matmuls (forward and gradient), which then run as slow loop fusions.
        x_t, y_t = jax.lax.optimization_barrier((x_t, y_t))
        if augment_args is not None:
            x_t = augment(k_augment, x_t, augment_args)  # [n_t, H, W, C]
            n_t = None  # norms change under augmentation
        if target_sharding is not None:
            x_t = jax.lax.with_sharding_constraint(x_t, target_sharding)
            y_t = jax.lax.with_sharding_constraint(y_t, target_sharding)
            if n_t is not None:
                n_t = jax.lax.with_sharding_constraint(n_t, target_sharding)
        (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, x_t, y_t,
                                                                       n_t)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return KipState(state.step + 1, params, opt_state), {"loss": loss, "acc": acc}

    return jax.jit(step, donate_argnums=0)
