"""Where the conv and Myrtle kernels spend their time on CPU: each piece of the covariance
propagation jitted (core.xla.jit) and timed apart, on the shapes of the A/B cases (Conv1: a
k_ts block of 1000 targets x 100 support images, float32; Myrtle-5: a 10 x 10 label-solve tile,
float64), next to a plain elementwise pass over an array of the same size (the memory-traffic
yardstick). Medians of --reps calls; meaningful only as ratios within one run on an otherwise
idle machine (the load average is printed).

    .venv/bin/python bench/profile_kernel_parts.py          # -> stdout, one JSON line per piece
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from kip_runner.core import kernels as K  # noqa: E402
from kip_runner.core import xla  # noqa: E402


def median_ms(f, *args, reps: int) -> float:
    f = xla.jit(f)
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - t)
    return round(1e3 * float(np.median(times)), 1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print(json.dumps({"load": os.getloadavg(), "jax": jax.__version__}))

    def row(case, piece, ms):
        print(json.dumps({"case": case, "piece": piece, "ms": ms}), flush=True)

    # Conv1 k_ts block, float32: [1000, 100, 28, 28]
    xt = jnp.asarray(rng.normal(size=(1000, 28, 28, 1)), jnp.float32)
    xs = jnp.asarray(rng.normal(size=(100, 28, 28, 1)), jnp.float32)
    conv = K.make_kernel_fn("conv", 1, "ntk")
    row("conv1", "k_ts forward", median_ms(conv, xt, xs, reps=args.reps))
    row("conv1", "k_ts VJP", median_ms(lambda a, b: jax.vjp(lambda b: conv(a, b), b)[1](
        jnp.ones((1000, 100), jnp.float32))[0], xt, xs, reps=args.reps))
    pt, ps = K.patches(xt), K.patches(xs)  # the first layer's window, on the inputs
    cov = xla.jit(lambda a, b: K.input_cov(a, b, "diag"))(pt, ps)  # [784, 1000, 100]
    row("conv1", "input covariance of patches", median_ms(
        lambda a, b: K.input_cov(a, b, "diag").nngp, pt, ps, reps=args.reps))
    row("conv1", "3x3 window (Conv2+ layers)", median_ms(
        lambda t: K._window_mean(t, 1, (28, 28)), cov.nngp, reps=args.reps))
    act = K.affine(cov, 2.0, 1e-4, "ntk", 9, False, True)
    row("conv1", "ReLU map + readout + pixel mean", median_ms(
        lambda c: K.mean_spatial(K.affine(K.relu(c, K.Ops()), 2.0, 1e-4, "ntk", 1, False,
                                          True)).ntk, act, reps=args.reps))
    row("conv1", "yardstick: a + b", median_ms(lambda a, b: a + b, cov.nngp, cov.nngp,
                                               reps=args.reps))

    # Myrtle-5 label-solve tile, float64: [10, 10, 28, 28, 28, 28]
    x1 = jnp.asarray(rng.normal(size=(10, 28, 28, 1)))
    x2 = jnp.asarray(rng.normal(size=(10, 28, 28, 1)))
    myrtle = K.make_kernel_fn("myrtle", 5, "ntk")
    row("myrtle5", "tile", median_ms(myrtle, x1, x2, reps=args.reps))
    p1, p2 = K.patches(x1), K.patches(x2)
    full = xla.jit(lambda a, b: K.input_cov(a, b, "full"))(p1, p2)
    row("myrtle5", "input covariance of patches", median_ms(
        lambda a, b: K.input_cov(a, b, "full").nngp, p1, p2, reps=args.reps))
    row("myrtle5", "3x3 window (full layout)", median_ms(lambda t: K._window_mean(t, 4),
                                                         full.nngp, reps=args.reps))
    ones = jnp.ones_like(full.nngp)
    row("myrtle5", "ReLU arc-cosine map", median_ms(
        lambda s, p: K.arccos(s, p, K.Ops())[0], 0.1 * full.nngp, ones, reps=args.reps))
    row("myrtle5", "float64 arctan2 alone", median_ms(jnp.arctan2, ones, full.nngp,
                                                      reps=args.reps))
    row("myrtle5", "yardstick: a + b", median_ms(lambda a, b: a + b, full.nngp, ones,
                                                 reps=args.reps))
    print(json.dumps({"load_end": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
