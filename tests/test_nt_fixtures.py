"""kipctl's kernels against neural-tangents 0.6.5's values (tests/fixtures/nt/kernels.npz,
written by tools/nt_fixtures.py under the old pinned stack; neural-tangents is not needed here).

Every architecture × kind × parameterisation on an MNIST- and a CIFAR-shaped pair of batches
with duplicate rows, an all-zero image and a near-collinear pair (see the generator):
  float64 kernels: ≤ 1e-10 of the matrix's largest entry, at every pair of distinct images;
  float32 kernels: ≤ 1e-5 at every pair (Myrtle: on the 8x8x3 pair of vjp_small.npz);
  float64 VJPs with respect to x1: ≤ 1e-8 of the largest entry (Myrtle: on an 8x8x3 pair,
  tests/fixtures/nt/vjp_small.npz, where they cost a fraction of the MNIST shape's).
Pairs within float64's rounding of collinear are held to what float64 can determine instead. The
ReLU's θ = atan2(√(Σ₁₁Σ₂₂ − Σ₁₂²), Σ₁₂) comes from a difference that cancels: a rounding ε of the
covariances moves θ by ~ε/θ₀, so below θ₀ ~ 1e-6 (sin²θ₀ < 1e-12 between the inputs) float64 alone
moves the NTK by more than 1e-10 (measured on the fixture's θ₀ = 1e-7 pair: kipctl's own kernel
jitted and eager differ by 2e-9, and from neural-tangents by up to 3e-8; the NNGP is flat in θ
and agrees to 1e-15). At exact duplicates neural-tangents' θ is ~1e-8 rather than 0 (it sums
the cross and the self covariances with different operations): its NTK entry is up to 5e-8 off
the exact value, which kipctl gives (θ = 0, core.kernels.arccos), so there the entry must also
equal the self-kernel diagonal k(x, x) to 1e-13. Both kinds of pair: ≤ 1e-7 of neural-tangents.
"""

from pathlib import Path

import jax
import numpy as np
import pytest

from kip_runner.core.kernels import make_kernel_fn

FIXTURES = np.load(Path(__file__).parent / "fixtures" / "nt" / "kernels.npz")
W_VAR, B_VAR, WIDTH = FIXTURES["hyper"]
ARCHS = [("fc", 1), ("fc", 2), ("fc", 3), ("conv", 1), ("conv", 2), ("conv", 3),
         ("myrtle", 5), ("myrtle", 7), ("myrtle", 10)]
CASES = [(shape, arch, depth, param) for shape in ("mnist", "cifar") for arch, depth in ARCHS
         for param in ("ntk", "standard")]
KINDS = ("ntk", "nngp")  # both kinds in one jitted call: XLA shares their common recursion


def _kernels(arch, depth, param):
    return [make_kernel_fn(arch, depth, kind, param, int(WIDTH), float(W_VAR), float(B_VAR))
            for kind in KINDS]


def _duplicates(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[n1, n2] True where a[i] and b[j] are the same image."""
    return np.all(a.reshape(len(a), 1, -1) == b.reshape(1, len(b), -1), axis=-1)


def _near_collinear(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[n1, n2] True where the inputs' sin^2 of their angle is below 1e-12 (zero images: no)."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    dot, na, nb = a @ b.T, np.sum(a * a, -1), np.sum(b * b, -1)
    prod = na[:, None] * nb[None, :]
    return (prod > 0) & (prod - dot * dot < 1e-12 * prod)


def _key(shape, arch, depth, kind, param):
    return f"{shape}/{arch}{depth}/{kind}/{param}"


@pytest.mark.parametrize("shape,arch,depth,param", CASES)
def test_kernel_equals_neural_tangents_float64(shape, arch, depth, param):
    x1, x2 = FIXTURES[f"{shape}/x1"], FIXTURES[f"{shape}/x2"]
    ks = _kernels(arch, depth, param)
    outs = jax.jit(lambda a, b: [(k(a, b), k(a, None)) for k in ks])(x1, x2)
    for kind, (cross, self_) in zip(KINDS, outs):
        key = _key(shape, arch, depth, kind, param)
        diag = np.diagonal(np.asarray(self_))  # [n1] k(x, x): one covariance for both sides
        for got, ref, x2_ in ((np.asarray(cross), FIXTURES[key + "/cross"], x2),
                              (np.asarray(self_), FIXTURES[key + "/self"], x1)):
            assert got.dtype == np.float64
            dup, near = _duplicates(x1, x2_), _near_collinear(x1, x2_)
            assert dup.any() and (near & ~dup).any() == (x2_ is x2)  # the fixture's cases
            scale = np.max(np.abs(ref))
            err = np.abs(got - ref) / scale  # [n1, n2]
            assert np.max(np.where(near, 0.0, err)) <= 1e-10, key
            assert np.max(np.where(near, err, 0.0)) <= 1e-7, key
            i, j = np.nonzero(dup)
            np.testing.assert_allclose(got[i, j], diag[i], rtol=1e-13, atol=1e-13 * scale)


# float32: Myrtle on the small (8x8x3) fixture, eagerly (jitted, the 12 full-size Myrtle
# float32 cases compiled for ~90 s of the suite; the float64 cases above keep the full shapes)
SMALL = np.load(Path(__file__).parent / "fixtures" / "nt" / "vjp_small.npz")
F32_CASES = ([("mnist" if c[0] == "mnist" else "cifar", FIXTURES) + c[1:] for c in CASES
              if c[1] != "myrtle"] +
             [("small", SMALL) + c[1:] for c in CASES if c[0] == "mnist" and c[1] == "myrtle"])


@pytest.mark.parametrize("shape,fixtures,arch,depth,param", F32_CASES,
                         ids=[f"{c[0]}-{c[2]}{c[3]}-{c[4]}" for c in F32_CASES])
def test_kernel_equals_neural_tangents_float32(shape, fixtures, arch, depth, param):
    x1, x2 = (fixtures[f"{shape}/{k}"].astype(np.float32) for k in ("x1", "x2"))
    ks = _kernels(arch, depth, param)

    def outs(a, b):
        return [k(a, b) for k in ks]
    for kind, got in zip(KINDS, (outs if arch == "myrtle" else jax.jit(outs))(x1, x2)):
        ref = fixtures[_key(shape, arch, depth, kind, param) + "/cross"]
        assert got.dtype == np.float32
        assert np.max(np.abs(np.asarray(got) - ref)) / np.max(np.abs(ref)) <= 1e-5, kind


# Myrtle gradients are checked on the small (8x8x3) fixture: on the MNIST shape one Myrtle-10
# VJP took 30-35 s of the suite (tools/nt_fixtures.py --vjp-small)
VJP_CASES = ([("mnist", FIXTURES) + c[1:] for c in CASES if c[0] == "mnist" and
              c[1] != "myrtle"] +
             [("small", SMALL) + c[1:] for c in CASES if c[0] == "mnist" and c[1] == "myrtle"])


@pytest.mark.parametrize("shape,fixtures,arch,depth,param", VJP_CASES,
                         ids=[f"{c[0]}-{c[2]}{c[3]}-{c[4]}" for c in VJP_CASES])
def test_vjp_equals_neural_tangents(shape, fixtures, arch, depth, param):
    x1, x2 = fixtures[f"{shape}/x1"], fixtures[f"{shape}/x2"]
    ks = _kernels(arch, depth, param)
    if shape == "small":  # its kernel values too (the VJP's forward pass), eager as below
        for kind, got in zip(KINDS, [k(x1, x2) for k in ks]):
            ref = fixtures[_key(shape, arch, depth, kind, param) + "/cross"]
            near = _near_collinear(x1, x2)
            err = np.abs(np.asarray(got) - ref) / np.max(np.abs(ref))
            assert np.max(np.where(near, 0.0, err)) <= 1e-10, kind
    def vjps(a, b, c):
        return [jax.vjp(lambda a_: k(a_, b), a)[1](c)[0] for k in ks]
    # Myrtle: eager. Jitted, XLA compiled each deep Myrtle VJP for 15-35 s; op by op, the
    # primitives compile once for all Myrtle depths (12 VJPs: ~24 s in all, ~0.5 s each after
    # the first)
    if arch != "myrtle":
        vjps = jax.jit(vjps)
    for kind, got in zip(KINDS, vjps(x1, x2, fixtures[f"{shape}/cotangent"])):
        ref = fixtures[_key(shape, arch, depth, kind, param) + "/vjp_x1"]
        got = np.asarray(got)
        assert np.all(np.isfinite(got))
        assert np.max(np.abs(got - ref)) / np.max(np.abs(ref)) <= 1e-8, kind
