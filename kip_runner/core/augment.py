"""Target-batch augmentation for KIP (a) (PAPER.md §2 "Variants"): random horizontal flips,
height/width shifts, rotations up to 10 degrees and channel shifts, applied per image to the
sampled target batch each step.

Pure JAX and jittable: one affine map per image (flip, rotation about the centre, shift) with
bilinear resampling; pixels mapped from outside the image are 0, which is the mean in the
standardised space. The randomness comes only from the key, so a step key reproduces it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates
from jax.typing import ArrayLike

from kip_runner.core.types import Array, PRNGKey


class AugmentArgs(NamedTuple):
    """Augmentation ranges (static)."""

    flip: bool = False  # random left-right flip with probability 1/2
    max_shift: float = 0.1  # shift up to this fraction of the height / width
    max_rotate: float = 10.0  # rotation up to this many degrees either way
    channel_shift: float = 0.0  # add U(-s, s) per image and channel (standardised units)


def check_augment_args(args: AugmentArgs) -> None:
    """Raises ValueError for ranges outside what the paper's augmentation means."""
    if not 0.0 <= args.max_shift < 1.0:
        raise ValueError(f"augmentation shift must lie in [0, 1), got {args.max_shift}")
    if not 0.0 <= args.max_rotate <= 180.0:
        raise ValueError(f"augmentation rotation must lie in [0, 180] degrees, got "
                         f"{args.max_rotate}")
    if args.channel_shift < 0.0:
        raise ValueError(f"augmentation channel shift must be >= 0, got {args.channel_shift}")


def _resample(img: Array, rows: Array, cols: Array) -> Array:
    """Bilinear sample of one image at source coordinates. img [H,W,C], rows/cols [H,W]"""
    per_channel = jax.vmap(
        lambda ch: map_coordinates(ch, [rows, cols], order=1, mode="constant", cval=0.0),
        in_axes=2, out_axes=2)
    return per_channel(img)  # [H, W, C]


def augment(key: PRNGKey, x: ArrayLike, args: AugmentArgs) -> Array:
    """Randomly flips, rotates, shifts and channel-shifts each image of x.

    Args:
      key: PRNG key (per step).
      x: images [n, H, W, C].
      args: AugmentArgs ranges.

    Returns:
      Augmented images [n, H, W, C], same dtype as x.
    """
    x = jnp.asarray(x)
    n, h, w, c = x.shape
    k_rot, k_shift, k_flip, k_chan = jax.random.split(key, 4)
    theta = jax.random.uniform(k_rot, (n,), x.dtype, -1.0, 1.0) * (
        args.max_rotate * math.pi / 180.0)  # [n]
    shift = jax.random.uniform(k_shift, (n, 2), x.dtype, -1.0, 1.0) * (
        args.max_shift * jnp.array([[h, w]], x.dtype))  # [n, 2]
    if args.flip:
        sign = jnp.where(jax.random.bernoulli(k_flip, 0.5, (n,)), -1.0, 1.0).astype(x.dtype)
    else:
        sign = jnp.ones((n,), x.dtype)  # [n]
    ci, cj = (h - 1) / 2.0, (w - 1) / 2.0
    ii, jj = jnp.meshgrid(jnp.arange(h, dtype=x.dtype), jnp.arange(w, dtype=x.dtype),
                          indexing="ij")  # [H, W]
    # Output pixel p comes from source R(-theta) (p - c - t) + c, with columns mirrored:
    #   rows = cos (i - ci) - sin s (j - cj) + [ci - cos t_i + sin s t_j]
    #   cols = sin (i - ci) + cos s (j - cj) + [cj - sin t_i - cos s t_j]     (s = +-1 flip)
    # i.e. per-image coefficients [n, 2, 3] times a fixed basis [3, H*W]. Written as a matmul
    # on purpose: XLA:CPU does not fuse a dot's output into its consumers, so the coordinates
    # are computed once; as elementwise code it fused the random draw, cos and sin into each
    # of the 4 corner gathers, evaluating them per gathered element (optimization_barrier is
    # expanded away on CPU and does not prevent that).
    cos, sin = jnp.cos(theta), jnp.sin(theta)  # [n], [n]
    t_i, t_j = shift[:, 0], shift[:, 1]  # [n], [n]
    coef = jnp.stack([
        jnp.stack([cos, -sin * sign, ci - cos * t_i + sin * sign * t_j], -1),
        jnp.stack([sin, cos * sign, cj - sin * t_i - cos * sign * t_j], -1)], 1)  # [n, 2, 3]
    basis = jnp.stack([(ii - ci).ravel(), (jj - cj).ravel(),
                       jnp.ones(h * w, x.dtype)])  # [3, H*W]
    coords = jnp.einsum("nkb,bp->nkp", coef, basis,
                        precision=jax.lax.Precision.HIGHEST).reshape(n, 2, h, w)  # [n,2,H,W]
    out = jax.vmap(_resample)(x, coords[:, 0], coords[:, 1])  # [n, H, W, C]
    if args.channel_shift > 0.0:
        out = out + jax.random.uniform(k_chan, (n, 1, 1, c), x.dtype, -1.0, 1.0) * (
            args.channel_shift)  # [n, H, W, C]
    return out.astype(x.dtype)
