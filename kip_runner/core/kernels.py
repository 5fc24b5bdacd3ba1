"""Kernel zoo (PAPER.md §4): kipctl's own closed-form NNGP and NTK of FCm, Convm and Myrtle-N
ReLU networks, RBF and linear kernels, and blocked evaluation of large kernel matrices.

The neural kernels propagate a covariance through the layers of the infinite-width network:
  input:  Σ⁰(x, x') = x·x' / fan   (per pixel pair, over channels; over all features for FC)
  Dense / Conv (Lee et al. 2018; Novak et al. 2019): Σ' = σ_w² A(Σ) + σ_b², with A the identity
      for Dense and, for a 3×3 SAME convolution, the mean over the 9 filter taps of Σ at the
      same offset of both pixels, A(Σ)(p, q) = 1/9 Σ_δ Σ(p+δ, q+δ) (zero outside the image);
      NTK (Jacot et al. 2018; Arora et al. 2019): Θ' = Σ' + σ_w² A(Θ) ("ntk" parameterisation)
      or Θ' = fan_in A(Σ) + σ_w² A(Θ) + 1 ("standard", fan_in = the layer's input width,
      × 9 for a conv).
  ReLU (arc-cosine kernel, Cho & Saul 2009): with θ = atan2(√(Σ₁₁Σ₂₂ − Σ₁₂²), Σ₁₂),
      Σ' = (√(Σ₁₁Σ₂₂ − Σ₁₂²) + (π − θ) Σ₁₂) / 2π and Θ' = Θ (π − θ) / 2π.
  2×2 average pooling: Σ'(p, q) = 1/16 Σ over the two windows; global average pooling: the
      mean over all pixel pairs; Flatten of a conv stack: the mean over same-pixel pairs.

Three spatial layouts, none of which is ever transposed:
  flat  nngp [n1, n2],             var [n]             FC (after the input's flatten)
  diag  nngp [P, n1, n2],          var [P, n]          Convm with a flatten readout: only
                                                       same-pixel covariances are needed
  full  nngp [n1, n2, H, W, H, W], var [n, H, W, H, W] Myrtle (pooling mixes pixel pairs)
`var` is each input's covariance with itself (the ReLU needs its per-pixel diagonal).
diag is pixel-major, its P = H·W pixels merged into one leading axis: its input covariance is
one batched matmul over the pixels, whose VJP is another (pixel-last, it needed a transpose of
the [n1, n2, H, W] cotangent, or a window's VJP and a reduction of it), and the readout's mean
over that one axis is a split reduction (XLA:CPU reduced two leading [H, W] axes in one strided
loop: ~1.1 s for a Conv1 k_ts block against ~20-40 ms split). full keeps the pixels last,
where Myrtle's shifts and pooling are slices along the fastest axes.

The first conv layer's window is applied to the inputs, not to their covariance: A(Σ⁰)(p, q)
is the dot product of the 3×3 patches at p and q over 9C (`patches`, zero outside the image),
so the first layer is the input covariance of the patches, with no window over the
[n1, n2, ...] arrays.

FC, RBF and linear kernels are functions of the Gram matrix x1·x2ᵀ and the squared norms
(`gram_kernel`); the KIP step (core.kip) uses that form directly. Their transcendental
functions go through `Ops` so the step can compute them once and replay them (Record/Replay in
core.kip). Derivatives are exact and finite: √ and atan2 have custom JVPs that are zero where
the root vanishes (identical inputs) and at (0, 0) (zero images).
"""

from __future__ import annotations

import itertools
import math
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from kip_runner.core import xla
from kip_runner.core.types import Array, KernelFn

ARCHS = ("fc", "conv", "myrtle", "rbf", "linear")
KINDS = ("ntk", "nngp")
PARAMETERIZATIONS = ("ntk", "standard")
# Conv-block counts before each of the three pooling stages (PAPER.md §4, Shankar et al. 2020).
MYRTLE_BLOCKS = {5: (1, 1, 1), 7: (1, 2, 2), 10: (2, 3, 3)}
FILTER = 3  # conv filters are 3×3, stride 1, SAME padding (PAPER.md §4)
POOL = 2  # Myrtle's average pooling: 2×2 windows, stride 2, VALID


def validate_kernel_args(arch: str, depth: int, kind: str, parameterization: str,
                         width: int) -> None:
    """Raises ValueError with a one-line message for an unusable kernel description."""
    if arch not in ARCHS:
        raise ValueError(f"unknown kernel arch '{arch}'; choose one of {', '.join(ARCHS)}")
    if kind not in KINDS:
        raise ValueError(f"kernel kind must be ntk or nngp, got '{kind}'")
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be ntk or standard, got '{parameterization}'")
    if arch == "myrtle" and depth not in MYRTLE_BLOCKS:
        raise ValueError(f"Myrtle depth must be one of {sorted(MYRTLE_BLOCKS)}, got {depth}")
    if arch in ("fc", "conv") and depth < 1:
        raise ValueError(f"{arch} depth must be >= 1, got {depth}")
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")


# ---- transcendental functions with exact, finite derivatives ------------------------------

@jax.custom_jvp
def safe_sqrt(x: Array) -> Array:
    """sqrt(max(x, 0)); its derivative is 0 where the root is ~0 (identical inputs)."""
    return jnp.sqrt(jnp.maximum(x, 0.0))


@safe_sqrt.defjvp
def _safe_sqrt_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    root = safe_sqrt(x)
    return root, sqrt_tangent(root, x_dot)


def sqrt_tangent(root: Array, x_dot: Array) -> Array:
    """d sqrt(x) = x_dot / (2 sqrt(x)), zero where the root is ~0 (x <= 1e-30). The test is on
    the root itself, not on x: XLA may evaluate x for the test and for the root in different
    fused loops (other rounding), and a root of 0 next to an x > 1e-30 gave x_dot * 5e29 (a NaN
    loss at step 3 of float32 FC3 KIP with augmentation). Replayed roots are tested the same
    way (core.kip)."""
    return jnp.where(root > 1e-15, x_dot / (2 * jnp.maximum(root, 1e-15)), 0.0)


@jax.custom_jvp
def angle(y: Array, x: Array) -> Array:
    """arctan2(y, x) for y >= 0, in [0, pi]; pi/2 at (0, 0) (two zero images).

    XLA on CPU evaluates arctan2 with scalar libm calls (~25 ns an element, 14.5 ms for a
    [6000, 100] block, more than the x_t·x_sᵀ matmul), so float32 uses the Cephes atanf
    polynomial (range-reduced, ~1e-7 relative error), which vectorises; float64 keeps
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


@angle.defjvp
def _angle_jvp(primals, tangents):
    (y, x), (y_dot, x_dot) = primals, tangents
    return angle(y, x), angle_tangent(y, x, y_dot, x_dot)


def angle_tangent(y: Array, x: Array, y_dot: Array, x_dot: Array) -> Array:
    """d arctan2(y, x) = (x dy - y dx) / (x^2 + y^2), 0 at (0, 0)."""
    return (x * y_dot - y * x_dot) / jnp.maximum(x * x + y * y, 1e-30)


# arcsin(z) = z + z^3 Q(z^2) for |z| <= 1/sqrt(2): Q's coefficients (constant first), least-
# squares fits against a 40-digit arcsin (tools/fit_asin.py); max relative error 6.3e-8 in
# float32, 4.4e-16 in float64.
ASIN_Q = {
    "float32": (0.16666665508943118, 0.07500286503626274, 0.04452752555711682,
                0.032128657661731196, 0.009630242023739596, 0.06619364509479794,
                -0.08325053166377655, 0.09673604368418004),
    "float64": (0.1666666666666669, 0.07499999999972963, 0.04464285719133956,
                0.03038194101962668, 0.022372285451668677, 0.017349966203134476,
                0.014005087555919215, 0.011158179961942646, 0.012441922403650203,
                -0.004338438699996046, 0.04817631369561049, -0.07199092470244964,
                0.041084847783028226, 0.26974839154234137, -0.8346845782287263,
                1.260335137352458, -1.0094504751607754, 0.36599083334230254),
}


@jax.jit  # one call when a kernel runs eagerly (the fixture tests); inlined inside a jit
def asin_small(z: Array) -> Array:
    """arcsin(z) for |z| <= 1/sqrt(2), a polynomial (vectorises on CPU, unlike libm)."""
    coef = ASIN_Q["float64" if z.dtype == jnp.float64 else "float32"]
    zz = z * z
    q = jnp.asarray(coef[-1], z.dtype)
    for c in coef[-2::-1]:
        q = q * zz + c
    return z + z * zz * q


@jax.jit
def angle_sin_cos(s: Array, c: Array) -> Array:
    """θ in [0, π] from s = sin θ >= 0 and c = cos θ (s² + c² ≈ 1), π/2 at s = c = 0.

    arcsin of whichever of s, |c| is the smaller (<= 1/√2, where asin_small holds): θ = asin(s)
    or π − asin(s) where |c| > s, else π/2 − asin(c)."""
    use_s = s < jnp.abs(c)
    a = asin_small(jnp.where(use_s, s, c))
    return jnp.where(use_s, jnp.where(c >= 0, a, jnp.pi - a), jnp.pi / 2 - a)


@jax.custom_jvp
def scaled_angle(y: Array, x: Array, inv_norm: Array) -> Array:
    """arctan2(y, x) for y >= 0 given inv_norm = 1/√(x² + y²) (0 for x = y = 0, then π/2),
    through angle_sin_cos (vectorised in float64 too, where jnp.arctan2 is scalar libm). The
    derivative is arctan2's exact one (inv_norm only rescales: it has no tangent)."""
    return angle_sin_cos(jnp.minimum(y * inv_norm, 1.0), jnp.clip(x * inv_norm, -1.0, 1.0))


@scaled_angle.defjvp
def _scaled_angle_jvp(primals, tangents):
    (y, x, inv_norm), (y_dot, x_dot, _) = primals, tangents
    return scaled_angle(y, x, inv_norm), angle_tangent(y, x, y_dot, x_dot)


def _inv_sqrt(v: Array) -> Array:
    """1/√v, 0 where v <= 0 (a zero image's variance)."""
    ok = v > 0
    return jnp.where(ok, jax.lax.rsqrt(jnp.where(ok, v, 1.0)), 0.0)


def _relu_parts(nngp: Array, v1: Array, v2: Array) -> tuple[Array, Array]:
    """(root, dot) of the arc-cosine map (root_and_dot) from Σ₁₂ and broadcastable Σ₁₁, Σ₂₂,
    1/√(Σ₁₁Σ₂₂) from their inverse roots."""
    return root_and_dot(nngp, v1 * v2, Ops(), _inv_sqrt(v1) * _inv_sqrt(v2))


@jax.custom_vjp
def relu_map(nngp: Array, ntk: Array, v1: Array, v2: Array) -> tuple[Array, Array]:
    """ReLU's arc-cosine map of a cross covariance, (Σ', Θ') = (root/2π + Σ̇ Σ₁₂, Θ Σ̇), with
    Σ₁₁ = v1 and Σ₂₂ = v2 broadcastable to nngp's shape ([n1, 1, ...], [1, n2, ...]).

    The same map as `arccos`; its VJP is written in closed form (one elementwise pass over the
    per-pixel arrays, recomputing the map from its inputs, instead of autodiff's chain through
    √ and the angle with its saved intermediates): ∂Σ'/∂Σ₁₂ = Σ̇, ∂Σ'/∂P = ∂root/∂P/2π −
    Σ₁₂ ∂θ/∂P/2π, ∂Σ̇/∂· = −∂θ/∂·/2π with P = Σ₁₁Σ₂₂, ∂root = (∂P − 2Σ₁₂∂Σ₁₂)/2root and
    ∂θ = (Σ₁₂ ∂root − root ∂Σ₁₂)/(Σ₁₂² + root²): the derivatives safe_sqrt and angle give,
    zero where the root is (floored to) 0."""
    root, dot = _relu_parts(nngp, v1, v2)
    return root / (2 * jnp.pi) + dot * nngp, ntk * dot


def _relu_map_fwd(nngp, ntk, v1, v2):
    return relu_map(nngp, ntk, v1, v2), (nngp, ntk, v1, v2)


def _sum_to(t: Array, shape: tuple) -> Array:
    """t summed over the axes where `shape` broadcast (size 1)."""
    axes = tuple(i for i, (a, b) in enumerate(zip(t.shape, shape)) if b == 1 and a != 1)
    return jnp.sum(t, axes, keepdims=True) if axes else t


def _relu_map_bwd(res, cts):
    nngp, ntk, v1, v2 = res
    c_nngp, c_ntk = cts
    root, dot = _relu_parts(nngp, v1, v2)
    half_inv = jnp.where(root > 1e-15, 0.5 / jnp.maximum(root, 1e-15), 0.0)  # 1/2root
    den = jnp.maximum(nngp * nngp + root * root, 1e-30)
    dth_dnngp = (-2 * nngp * nngp * half_inv - root) / den
    dth_dprod = nngp * half_inv / den
    g = c_ntk * ntk  # cotangent of Σ̇ (times -2π per unit θ)
    two_pi = 2 * jnp.pi
    c_s = c_nngp * dot - g * dth_dnngp / two_pi  # ∂Σ'/∂Σ₁₂ = Σ̇ (the root and θ terms cancel)
    c_p = (c_nngp * (half_inv - nngp * dth_dprod) - g * dth_dprod) / two_pi
    return c_s, c_ntk * dot, _sum_to(c_p * v2, v1.shape), _sum_to(c_p * v1, v2.shape)


relu_map.defvjp(_relu_map_fwd, _relu_map_bwd)


class Ops:
    """Evaluates a kernel's transcendental functions (core.kip's Record / Replay subclass it to
    compute them once per KIP step)."""

    def sqrt(self, x: Array, floor: Array | float = 0.0) -> Array:
        """sqrt(x), and 0 where x <= floor (then with a zero derivative: safe_sqrt's tangent is
        0 where the root is 0, so a replayed root needs no floor)."""
        return safe_sqrt(jnp.where(x > floor, x, 0.0))

    def angle(self, y: Array, x: Array) -> Array:
        return angle(y, x)

    def exp(self, x: Array) -> Array:
        return jnp.exp(x)


# ---- covariance propagation ------------------------------------------------------------------

class Cov(NamedTuple):
    """Covariances of one layer's pre-activations for a pair of input batches (module doc):
    nngp [n1, n2, *S], ntk like nngp or None (not tracked, or zero at the input),
    var1 [n1, *S], var2 [n2, *S]; S = () flat, (H, W) diag, (H, W, H, W) full."""

    nngp: Array
    ntk: Optional[Array]
    var1: Array
    var2: Array


def patches(x: Array) -> Array:
    """[n, H, W, C] -> [n, H, W, 9C]: every pixel's 3×3 neighbourhood, zero outside the image
    (input_cov of patches is the first conv layer's windowed input covariance A(Σ⁰))."""
    h, w = x.shape[1:3]
    r = FILTER // 2
    xp = jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)))
    return jnp.concatenate([xp[:, dh:dh + h, dw:dw + w, :] for dh in range(FILTER)
                            for dw in range(FILTER)], -1)


def input_cov(x1: Array, x2: Optional[Array], layout: str) -> Cov:
    """Σ⁰ = x·x' / C per pixel pair (flat: x·x' / d over all features). x [n, H, W, C]."""
    c = x1.shape[-1]
    if layout == "flat":
        a = jnp.reshape(x1, (x1.shape[0], -1))  # [n1, d]
        b = a if x2 is None else jnp.reshape(x2, (x2.shape[0], -1))  # [n2, d]
        d = a.shape[1]
        v1 = jnp.sum(a * a, -1) / d  # [n1]
        v2 = v1 if x2 is None else jnp.sum(b * b, -1) / d  # [n2]
        return Cov((a @ b.T) / d, None, v1, v2)
    x2_ = x1 if x2 is None else x2
    if layout == "diag":  # pixel-major: a batched matmul over the pixels

        def pixel_major(x):  # [n, H, W, C] -> [P, n, C]
            return jnp.reshape(jnp.transpose(x, (1, 2, 0, 3)), (-1, x.shape[0], c))
        p1 = pixel_major(x1)
        p2 = p1 if x2 is None else pixel_major(x2_)
        v1 = jnp.sum(p1 * p1, -1) / c  # [P, n1]
        v2 = v1 if x2 is None else jnp.sum(p2 * p2, -1) / c  # [P, n2]
        return Cov(jnp.einsum("pac,pbc->pab", p1, p2) / c, None, v1, v2)  # [P, n1, n2]
    self_ = "ahwc,aijc->ahwij"  # full: batched over a, so written in place
    v1 = jnp.einsum(self_, x1, x1) / c  # [n1, *S]
    v2 = v1 if x2 is None else jnp.einsum(self_, x2_, x2_) / c  # [n2, *S]
    # the cross covariance batched over the pairs (a, b) of the (small) broadcast inputs: the
    # matmul then writes [n1, n2, H, W, H, W] in place; "ahwc,bijc->abhwij" wrote
    # [n1, H, W, n2, H, W] and transposed it (a float64 Myrtle-5 10x10 tile: ~2.94 -> ~2.75 s)
    n1, n2 = x1.shape[0], x2_.shape[0]
    a = jnp.broadcast_to(x1[:, None], (n1, n2) + x1.shape[1:])  # [n1, n2, H, W, C]
    b = jnp.broadcast_to(x2_[None], (n1, n2) + x2_.shape[1:])
    return Cov(jnp.einsum("abhwc,abijc->abhwij", a, b) / c, None, v1, v2)


def _n_spatial(cov: Cov) -> int:
    return cov.var1.ndim - 1  # 0 flat, 1 diag (one merged pixel axis), 4 full


def _window_mean(t: Array, n_spatial: int, image: tuple[int, ...] = ()) -> Array:
    """A(t): the mean over the 3×3 taps of a SAME convolution, the same offset applied to every
    pixel of the pixel tuple (n_spatial = 1: the first axis, P = H·W pixels of an image (H, W);
    4: (h, w, i, j), the last axes); zeros outside."""
    if n_spatial == 0:
        return t
    if n_spatial == 1:  # a box window: reduce_window, whose VJP is one more reduce_window (a
        # sum of 9 slices has 9 pads as its VJP: the Conv1 KIP step took 8.3 s, not 1.8)
        t4 = jnp.reshape(t, tuple(image) + t.shape[1:])  # [H, W, ...]
        out = jax.lax.reduce_window(t4, 0.0, jax.lax.add, (FILTER, FILTER) + (1,) * (t.ndim - 1),
                                    (1,) * t4.ndim, "SAME") / FILTER ** 2
        return jnp.reshape(out, t.shape)
    lead = t.ndim - n_spatial
    r = FILTER // 2
    tp = jnp.pad(t, [(0, 0)] * lead + [(r, r)] * n_spatial)
    sizes = t.shape[lead:]
    out = 0.0
    for dh in range(FILTER):
        for dw in range(FILTER):
            starts = (dh, dw) * (n_spatial // 2)
            idx = (Ellipsis,) + tuple(slice(s, s + n) for s, n in zip(starts, sizes))
            out = out + tp[idx]
    return out / FILTER ** 2


def affine(cov: Cov, w_var: float, b_var: float, parameterization: str, fan_in: int,
           conv: bool, track_ntk: bool, image: tuple[int, ...] = ()) -> Cov:
    """A Dense (conv=False) or 3×3 SAME Conv layer of fan_in inputs (channels × 9 for a conv);
    image: (H, W), for the diag layout's window.

    ntk: Σ' = w A(Σ) + b, Θ' = Σ' + w A(Θ);  standard: Θ' = fan_in A(Σ) + w A(Θ) + 1."""
    k = _n_spatial(cov) if conv else 0

    def window(t):
        return _window_mean(t, k, image)
    a_nngp = window(cov.nngp)
    nngp = w_var * a_nngp + b_var
    var1 = w_var * window(cov.var1) + b_var
    var2 = var1 if cov.var2 is cov.var1 else w_var * window(cov.var2) + b_var
    ntk = None
    if track_ntk:
        prev = 0.0 if cov.ntk is None else w_var * window(cov.ntk)
        ntk = nngp + prev if parameterization == "ntk" else fan_in * a_nngp + prev + 1.0
    return Cov(nngp, ntk, var1, var2)


def _pixel_var(var: Array, n_spatial: int) -> Array:
    """The per-pixel variances of `var` [n, *S]: itself for flat/diag, its diagonal for full
    ([n, H, W, H, W] -> [n, H, W])."""
    if n_spatial < 4:
        return var
    n, h, w = var.shape[:3]
    flat = jnp.reshape(var, (n, h * w, h * w))  # [n, HW, HW]
    return jnp.reshape(jnp.diagonal(flat, axis1=1, axis2=2), (n, h, w))  # [n, H, W]


def _outer(v1: Array, v2: Array, n_spatial: int) -> Array:
    """Σ₁₁Σ₂₂ broadcast to the cross layout: per pixel v1 [n1, H, W], v2 [n2, H, W] (full), or
    v1 [n1], v2 [n2] (flat)."""
    if n_spatial == 4:  # [n1, 1, H, W, 1, 1] * [1, n2, 1, 1, H, W]
        return v1[:, None, :, :, None, None] * v2[None, :, None, None, :, :]
    return v1[:, None] * v2[None, :]


def arccos(nngp: Array, prod: Array, ops: Ops, inv_root: Optional[Array] = None
           ) -> tuple[Array, Array]:
    """ReLU's arc-cosine map: (Σ', Σ̇) from Σ₁₂ = nngp and Σ₁₁Σ₂₂ = prod.

    The root √(Σ₁₁Σ₂₂ − Σ₁₂²) cancels catastrophically for (near-)identical inputs: when Σ₁₂
    and Σ₁₁ are summed in a different order (a matmul and a sum of squares), identical inputs
    give a gap of ~1e-16 Σ₁₁Σ₂₂ and θ ~ 1e-8 instead of 0 (5e-9 relative in the FC1 NTK, and a
    spurious derivative of the root). A gap below 16 ulps (of the dtype) of Σ₁₁Σ₂₂ is
    rounding noise and is taken as 0: identical inputs get θ = 0 and a zero root derivative
    whichever way their covariances were summed.

    inv_root: 1/√(Σ₁₁Σ₂₂) when the caller has it (Myrtle: from per-pixel variances); θ then
    comes from its sine and cosine (scaled_angle) instead of ops.angle.
    """
    root, dot = root_and_dot(nngp, prod, ops, inv_root)
    return root / (2 * jnp.pi) + dot * nngp, dot


def root_and_dot(nngp: Array, prod: Array, ops: Ops, inv_root: Optional[Array] = None
                 ) -> tuple[Array, Array]:
    """√(Σ₁₁Σ₂₂ − Σ₁₂²) (0 below the 16-ulp floor, `arccos`) and Σ̇ = (π − θ)/2π."""
    gap = prod - nngp * nngp
    root = ops.sqrt(gap, 16 * jnp.finfo(gap.dtype).eps * prod)
    theta = ops.angle(root, nngp) if inv_root is None else scaled_angle(root, nngp, inv_root)
    return root, 0.5 - theta / (2 * jnp.pi)


def relu(cov: Cov, ops: Ops) -> Cov:
    """ReLU: the arc-cosine map of every covariance (module doc)."""
    k = _n_spatial(cov)
    if k == 1:  # Convm: the closed-form VJP (relu_map); a Conv1 KIP step (support 100,
        # 1000 targets) 1.36 -> 1.03 s. Myrtle's full layout keeps autodiff through `arccos`:
        # relu_map made its float64 tile slower (4.6 -> 5.9 s, docs/kernels.md).
        zero = jnp.zeros((), cov.nngp.dtype)
        ntk_in = jnp.broadcast_to(zero, cov.nngp.shape) if cov.ntk is None else cov.ntk
        nngp, ntk = relu_map(cov.nngp, ntk_in, cov.var1[..., None], cov.var2[..., None, :])
        var1 = cov.var1 / 2  # same-pixel self covariance: θ = 0, Σ' = Σ / 2
        return Cov(nngp, None if cov.ntk is None else ntk, var1,
                   var1 if cov.var2 is cov.var1 else cov.var2 / 2)
    p1, p2 = _pixel_var(cov.var1, k), _pixel_var(cov.var2, k)
    if k < 4:  # flat: the caller's ops (core.kip's Record / Replay)
        nngp, dot = arccos(cov.nngp, _outer(p1, p2, k), ops)
        ntk = None if cov.ntk is None else cov.ntk * dot
        var1 = cov.var1 / 2  # same-pixel self covariance: θ = 0, Σ' = Σ / 2
        return Cov(nngp, ntk, var1, var1 if cov.var2 is cov.var1 else cov.var2 / 2)
    # full (Myrtle): θ from sine and cosine, 1/√(Σ₁₁Σ₂₂) from the per-pixel variances (a float64
    # 10x10 Myrtle-5 tile: jnp.arctan2's scalar libm calls were ~1.2 s of ~4.3 s)
    q1, q2 = _inv_sqrt(p1), _inv_sqrt(p2)  # [n1, H, W], [n2, H, W]
    nngp, dot = arccos(cov.nngp, _outer(p1, p2, k), ops, _outer(q1, q2, k))
    ntk = None if cov.ntk is None else cov.ntk * dot

    def self_map(var, p, q):  # full self covariance [n, H, W, H, W], p, q [n, H, W]
        return arccos(var, p[:, :, :, None, None] * p[:, None, None, :, :], Ops(),
                      q[:, :, :, None, None] * q[:, None, None, :, :])[0]
    var1 = self_map(cov.var1, p1, q1)
    return Cov(nngp, ntk, var1, var1 if cov.var2 is cov.var1 else self_map(cov.var2, p2, q2))


def _map(cov: Cov, f: Callable[[Array], Array]) -> Cov:
    var1 = f(cov.var1)
    return Cov(f(cov.nngp), None if cov.ntk is None else f(cov.ntk), var1,
               var1 if cov.var2 is cov.var1 else f(cov.var2))


@jax.jit  # a module-level jit: one call (one compile per shape) when run eagerly
def _pool_full(t: Array) -> Array:
    """[..., H, W, H, W] -> [..., H/2, W/2, H/2, W/2]: the mean over the POOL × POOL offsets of
    the (h, i) axes, then of the (w, j) axes, each a sum of POOL² strided slices (elementwise
    loops); the sum over a reshape's interleaved window axes was XLA:CPU's slowest op in a
    float64 Myrtle-5 tile (~0.7 s of ~4.3 s). Two passes of 4 slices instead of one of 16: as
    fast on the tile, half the HLO (each jitted CIFAR Myrtle-10 fixture test: 14-15 -> 13-14 s)."""
    h, w = t.shape[-4] // POOL, t.shape[-3] // POOL
    rows = sum(t[..., a:h * POOL:POOL, :, c:h * POOL:POOL, :]
               for a, c in itertools.product(range(POOL), repeat=2))  # [..., H/2, W, H/2, W]
    return sum(rows[..., :, b:w * POOL:POOL, :, d:w * POOL:POOL]
               for b, d in itertools.product(range(POOL), repeat=2)) / POOL ** 4


def avg_pool(cov: Cov) -> Cov:
    """2×2 average pooling, stride 2, VALID, of a full layout: Σ'(p, q) = mean of Σ over the
    4 × 4 pixel pairs of the two windows."""
    return _map(cov, _pool_full)


def mean_spatial(cov: Cov) -> Cov:
    """To the flat layout: Flatten of a diag layout (mean over same-pixel pairs) or global
    average pooling of a full layout (mean over all pixel pairs)."""
    k = _n_spatial(cov)
    axes = (0,) if k == 1 else tuple(range(-k, 0))  # diag: its pixel axis is the first
    return _map(cov, lambda t: jnp.mean(t, axis=axes))


# ---- architectures -------------------------------------------------------------------------

Layer = Callable[[Cov, Ops], Cov]


def network(arch: str, depth: int, kind: str, parameterization: str, width: int,
            in_channels: int, in_features: int, w_var: float, b_var: float,
            image: tuple[int, ...] = ()) -> list[Layer]:
    """The layers of FCm / Convm / Myrtle-N as covariance maps, readout included (always the
    ntk parameterisation, PAPER.md §4). in_features: H·W·C (the first Dense's fan-in);
    image: (H, W) (Convm's windows)."""
    track = kind == "ntk"

    def dense(fan_in, p=parameterization):
        return lambda c, ops: affine(c, w_var, b_var, p, fan_in, False, track)

    def conv(channels_in, window=True):  # window=False: the first layer, whose input
        # covariance is already windowed (input_cov of `patches`)
        return lambda c, ops: affine(c, w_var, b_var, parameterization,
                                     channels_in * FILTER ** 2, window, track, image)
    act = lambda c, ops: relu(c, ops)  # noqa: E731
    readout = dense(width, "ntk")
    if arch == "fc":
        layers = [dense(in_features), act]
        layers += [dense(width), act] * (depth - 1)
        return layers + [readout]
    if arch == "conv":
        layers = [conv(in_channels, False), act] + [conv(width), act] * (depth - 1)
    else:
        layers = [conv(in_channels, False), act]
        for n_blocks in MYRTLE_BLOCKS[depth]:
            layers += [conv(width), act] * n_blocks + [lambda c, ops: avg_pool(c)]
    # the readout of the Flatten (Convm) or global average pooling (Myrtle): the readout Dense
    # is affine, so it commutes with the spatial mean and goes first: the NTK is then one
    # reduction, of Σ' + σ_w² Θ, not one of Σ' and one of Θ
    return layers + [readout, lambda c, ops: mean_spatial(c)]


def propagate(layers: list[Layer], cov: Cov, kind: str, ops: Ops) -> Array:
    for layer in layers:
        cov = layer(cov, ops)
    return cov.ntk if kind == "ntk" else cov.nngp


GramKernel = Callable[..., Array]  # (gram [n1,n2], sq_norms1 [n1], sq_norms2 [n2], ops=Ops())


def gram_kernel(arch: str, depth: int, kind: str, parameterization: str, dim: int,
                w_var: float = 2.0, b_var: float = 1e-4, gamma: float = 1.0, width: int = 1024
                ) -> Optional[GramKernel]:
    """k as a function of (gram [n1,n2], sq_norms1 [n1], sq_norms2 [n2], ops=Ops()) for inputs
    of dim features: FC (either parameterisation), RBF, linear; None for conv and Myrtle.
    `ops` evaluates its transcendental functions (Ops, or core.kip's Record / Replay)."""
    if arch == "linear":
        return lambda g, n1, n2, ops=None: g
    if arch == "rbf":
        def rbf(g: Array, n1: Array, n2: Array, ops: Ops = Ops()) -> Array:
            sq = n1[:, None] + n2[None, :] - 2.0 * g  # [n1, n2]
            return ops.exp(-gamma * jnp.maximum(sq, 0.0) / dim)
        return rbf
    if arch != "fc":
        return None
    # in_channels does not enter an FC network (its input is flattened first)
    layers = network("fc", depth, kind, parameterization, width, 1, dim, w_var, b_var)

    def fc(g: Array, n1: Array, n2: Array, ops: Ops = Ops()) -> Array:
        v1 = n1 / dim  # [n1]
        return propagate(layers, Cov(g / dim, None, v1, v1 if n2 is n1 else n2 / dim),
                         kind, ops)
    return fc


def make_kernel_fn(arch: str, depth: int = 1, kind: str = "ntk", parameterization: str = "ntk",
                   width: int = 1024, w_var: float = 2.0, b_var: float = 1e-4,
                   gamma: float = 1.0) -> KernelFn:
    """Builds k(x1, x2) -> [n1, n2] for images x [n, H, W, C].

    Args:
      arch: fc | conv | myrtle | rbf | linear.
      depth: m of FCm / Convm, N of Myrtle-N.
      kind: ntk | nngp (neural kernels only).
      parameterization: ntk | standard (standard depends on `width`).
      width: hidden width / channels, used by the standard parameterisation.
      w_var, b_var: weight and bias variances sigma_w^2, sigma_b^2.
      gamma: RBF bandwidth, k = exp(-gamma ||x1 - x2||^2 / d).

    Returns:
      A pure function (x1, x2=None) -> [n1, n2] in the inputs' dtype; not jitted (callers jit
      at block level).
    """
    validate_kernel_args(arch, depth, kind, parameterization, width)
    if arch in ("fc", "rbf", "linear"):
        def dot_product(x1: ArrayLike, x2: Optional[ArrayLike] = None) -> Array:
            a = jnp.reshape(x1, (x1.shape[0], -1))  # [n1, d]
            b = a if x2 is None else jnp.reshape(x2, (x2.shape[0], -1))  # [n2, d]
            gram = gram_kernel(arch, depth, kind, parameterization, a.shape[1], w_var, b_var,
                               gamma, width)
            n1 = jnp.sum(a * a, -1)  # [n1]
            return gram(a @ b.T, n1, n1 if x2 is None else jnp.sum(b * b, -1))  # [n1, n2]
        return dot_product
    layout = "diag" if arch == "conv" else "full"

    def neural(x1: ArrayLike, x2: Optional[ArrayLike] = None) -> Array:
        x1 = jnp.asarray(x1)
        x2 = None if x2 is None else jnp.asarray(x2)
        layers = network(arch, depth, kind, parameterization, width, x1.shape[-1],
                         math.prod(x1.shape[1:]), w_var, b_var, x1.shape[1:3])
        cov = input_cov(patches(x1), None if x2 is None else patches(x2), layout)  # A(Σ⁰)
        return propagate(layers, cov, kind, Ops())  # [n1, n2]
    return neural


def _pad_rows(x: np.ndarray, multiple: int) -> np.ndarray:
    pad = (-x.shape[0]) % multiple
    if pad == 0:
        return x
    return np.concatenate([x, np.repeat(x[:1], pad, axis=0)], axis=0)


def kernel_matrix(kernel_fn: KernelFn, x1: ArrayLike, x2: Optional[ArrayLike] = None,
                  block_size: Optional[int] = None,
                  on_block: Optional[Callable[[int, int], None]] = None,
                  jitted: Optional[Callable] = None) -> np.ndarray:
    """k(x1, x2) computed in [block_size, block_size] tiles, assembled on the host.

    Rows are padded to a whole number of tiles so that one compiled tile serves every block;
    device memory is bounded by one tile. With x2=None the symmetric matrix is computed from
    its upper tiles only.

    Args:
      kernel_fn: k(x1, x2) -> [b1, b2].
      x1: [n1, ...]; x2: [n2, ...] or None (= x1).
      block_size: tile edge; None computes the whole matrix in one call.
      on_block: called with (done_tiles, total_tiles) after each tile (progress bars).
      jitted: an already-jitted kernel_fn to reuse across calls (saves a compile).

    Returns:
      np.ndarray [n1, n2].
    """
    fn = jitted if jitted is not None else xla.jit(kernel_fn)
    x1 = np.asarray(x1)
    symmetric = x2 is None
    x2 = x1 if symmetric else np.asarray(x2)
    n1, n2 = x1.shape[0], x2.shape[0]
    b1 = n1 if block_size is None else min(block_size, n1)
    b2 = n2 if block_size is None else min(block_size, n2)
    if symmetric:
        b1 = b2 = min(b1, b2)
    x1p, x2p = _pad_rows(x1, b1), _pad_rows(x2, b2)  # [n1', ...], [n2', ...]
    t1, t2 = x1p.shape[0] // b1, x2p.shape[0] // b2
    tiles = [(i, j) for i in range(t1) for j in range(t2) if not (symmetric and j < i)]
    out = None
    for done, (i, j) in enumerate(tiles, 1):
        tile = np.asarray(fn(x1p[i * b1:(i + 1) * b1], x2p[j * b2:(j + 1) * b2]))  # [b1, b2]
        if out is None:
            out = np.empty((x1p.shape[0], x2p.shape[0]), dtype=tile.dtype)  # [n1', n2']
        out[i * b1:(i + 1) * b1, j * b2:(j + 1) * b2] = tile
        if symmetric and i != j:
            out[j * b2:(j + 1) * b2, i * b1:(i + 1) * b1] = tile.T
        if on_block is not None:
            on_block(done, len(tiles))
    return out[:n1, :n2]
