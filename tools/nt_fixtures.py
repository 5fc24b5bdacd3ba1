"""Reference fixtures from neural-tangents 0.6.5 for kipctl's own kernels (tests/fixtures/nt).

Run once, under the OLD pinned stack only (neural-tangents does not import on current JAX):

    python3 -m venv /tmp/nt-venv
    /tmp/nt-venv/bin/pip install jax==0.5.3 jaxlib==0.5.3 neural-tangents==0.6.5 \\
        'tf2jax<0.3.7' optax
    /tmp/nt-venv/bin/python tools/nt_fixtures.py --out tests/fixtures/nt

It imports neither kip_runner nor anything of kipctl: every network is written here with
neural-tangents' stax, as the paper's kernels are defined (PAPER.md §4). It writes
`kernels.npz`: for an MNIST-shaped and a CIFAR-shaped input pair (x1 [4, H, W, C],
x2 [3, H, W, C]) with an exact duplicate across the two batches (x2[0] = x1[0]) and within x1
(x1[3] = x1[0]), an all-zero image (x1[1]) and a near-collinear pair (x2[1] = 1.000001 x1[2]
+ 1e-7 noise), the float64 kernel k(x1, x2) and k(x1, x1) of every architecture (FC1-3,
Conv1-3, Myrtle-5/7/10) × kind (ntk, nngp) × parameterisation (ntk, standard), and, on the
MNIST shape, the float64 VJP of k(x1, x2) with respect to x1 for a fixed cotangent that is zero
at the duplicate and near-collinear pairs: at identical inputs the kernel has a kink (the root
√(Σ₁₁Σ₂₂ − Σ₁₂²) is a cone there), so its derivative is a convention, and next to them it is
float64 rounding (neural-tangents' own derivative there comes from a root of ~1e-8 that rounding
made). The finite networks' fixtures are written by tools/nt_fixtures_nets.py.

`--vjp-small` writes `vjp_small.npz` instead: the Myrtle-5/7/10 kernels and VJPs on a small
(8x8x3) pair built the same way. tests/test_nt_fixtures.py checks Myrtle gradients there: on
the MNIST shape one Myrtle-10 VJP took 30-35 s of the test suite, at 8x8 the same code paths
(convolutions, three 2x2 poolings, global pooling; three channels) take a fraction of that.
The MNIST-shaped Myrtle VJPs stay in kernels.npz as written.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np

# neural_tangents/__init__ imports its TensorFlow-backed `experimental` subpackage: not needed
sys.modules.setdefault("neural_tangents.experimental",
                       types.ModuleType("neural_tangents.experimental"))

import jax  # noqa: E402
import neural_tangents  # noqa: E402
from neural_tangents import stax  # noqa: E402

jax.config.update("jax_enable_x64", True)

ARCHS = [("fc", 1), ("fc", 2), ("fc", 3), ("conv", 1), ("conv", 2), ("conv", 3),
         ("myrtle", 5), ("myrtle", 7), ("myrtle", 10)]
MYRTLE_BLOCKS = {5: (1, 1, 1), 7: (1, 2, 2), 10: (2, 3, 3)}
SHAPES = {"mnist": (28, 28, 1), "cifar": (32, 32, 3)}
W_VAR, B_VAR, WIDTH = 2.0, 1e-4, 64


def body(arch: str, depth: int, parameterization: str, width: int = WIDTH,
         w_var: float = W_VAR, b_var: float = B_VAR) -> list:
    """FCm / Convm / Myrtle-N up to the readout, in stax (also tools/nt_fixtures_nets.py's)."""
    w_std, b_std = w_var ** 0.5, b_var ** 0.5

    def conv():
        return stax.Conv(width, (3, 3), strides=(1, 1), padding="SAME", W_std=w_std,
                         b_std=b_std, parameterization=parameterization)
    if arch == "fc":
        out = [stax.Flatten()]
        for _ in range(depth):
            out += [stax.Dense(width, W_std=w_std, b_std=b_std,
                               parameterization=parameterization), stax.Relu()]
    elif arch == "conv":
        out = []
        for _ in range(depth):
            out += [conv(), stax.Relu()]
        out += [stax.Flatten()]
    else:
        out = [conv(), stax.Relu()]
        for n_blocks in MYRTLE_BLOCKS[depth]:
            for _ in range(n_blocks):
                out += [conv(), stax.Relu()]
            out += [stax.AvgPool((2, 2), strides=(2, 2))]
        out += [stax.GlobalAvgPool()]
    return out


def layers(arch: str, depth: int, parameterization: str) -> list:
    """The kernel's network: body and a width-1 readout (always the ntk parameterisation)."""
    readout = stax.Dense(1, W_std=W_VAR ** 0.5, b_std=B_VAR ** 0.5, parameterization="ntk")
    return body(arch, depth, parameterization) + [readout]


def inputs(shape: tuple, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=(4,) + shape)
    x2 = rng.normal(size=(3,) + shape)
    x1[1] = 0.0  # an all-zero image
    x1[3] = x1[0]  # a duplicate row within x1
    x2[0] = x1[0]  # a duplicate across the batches
    x2[1] = 1.000001 * x1[2] + 1e-7 * rng.normal(size=shape)  # near-collinear with x1[2]
    return x1, x2


SMALL = (8, 8, 3)


def vjp_small(path: Path) -> None:
    """Myrtle kernels (cross, self) and VJPs on the small shape -> path/vjp_small.npz."""
    out: dict[str, np.ndarray] = {
        "versions": np.array([f"jax {jax.__version__}",
                              f"neural-tangents {neural_tangents.__version__}"]),
        "hyper": np.array([W_VAR, B_VAR, WIDTH])}
    x1, x2 = inputs(SMALL, 7)
    out["small/x1"], out["small/x2"] = x1, x2
    cot = np.random.default_rng(107).normal(size=(4, 3))
    cot[0, 0] = cot[3, 0] = cot[2, 1] = 0.0  # duplicates and the near-collinear pair
    out["small/cotangent"] = cot
    for arch, depth in [a for a in ARCHS if a[0] == "myrtle"]:
        for param in ("ntk", "standard"):
            _, _, kernel_fn = stax.serial(*layers(arch, depth, param))
            for kind in ("ntk", "nngp"):
                key = f"small/{arch}{depth}/{kind}/{param}"
                out[key + "/cross"] = np.asarray(kernel_fn(x1, x2, kind))
                _, vjp = jax.vjp(lambda a: kernel_fn(a, x2, kind), x1)
                out[key + "/vjp_x1"] = np.asarray(vjp(cot)[0])
                print(key, flush=True)
    path.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path / "vjp_small.npz", **out)
    print(f"wrote {path / 'vjp_small.npz'} ({(path / 'vjp_small.npz').stat().st_size} bytes)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="tests/fixtures/nt")
    ap.add_argument("--vjp-small", action="store_true",
                    help="write only vjp_small.npz (Myrtle kernels and VJPs at 8x8x3)")
    args = ap.parse_args()
    if args.vjp_small:
        vjp_small(Path(args.out))
        return
    out: dict[str, np.ndarray] = {
        "versions": np.array([f"jax {jax.__version__}",
                              f"neural-tangents {neural_tangents.__version__}"]),
        "hyper": np.array([W_VAR, B_VAR, WIDTH])}
    for seed, (name, shape) in enumerate(SHAPES.items()):
        x1, x2 = inputs(shape, seed)
        out[f"{name}/x1"], out[f"{name}/x2"] = x1, x2
        cot = np.random.default_rng(100 + seed).normal(size=(4, 3))
        cot[0, 0] = cot[3, 0] = cot[2, 1] = 0.0  # duplicates and the near-collinear pair
        out[f"{name}/cotangent"] = cot
        for arch, depth in ARCHS:
            for param in ("ntk", "standard"):
                _, _, kernel_fn = stax.serial(*layers(arch, depth, param))
                for kind in ("ntk", "nngp"):
                    key = f"{name}/{arch}{depth}/{kind}/{param}"
                    out[key + "/cross"] = np.asarray(kernel_fn(x1, x2, kind))
                    out[key + "/self"] = np.asarray(kernel_fn(x1, None, kind))
                    if name == "mnist":
                        _, vjp = jax.vjp(lambda a: kernel_fn(a, x2, kind), x1)
                        out[key + "/vjp_x1"] = np.asarray(vjp(cot)[0])
                    print(key, flush=True)
    path = Path(args.out)
    path.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path / "kernels.npz", **out)
    print(f"wrote {path / 'kernels.npz'} ({(path / 'kernels.npz').stat().st_size} bytes)")


if __name__ == "__main__":
    main()
