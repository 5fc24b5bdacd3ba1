"""Where a dot-product kernel's KIP step spends its time: the step's two jitted calls timed
apart (first: target sampling and gather, augmentation, x_t x_s^T and the recorded
transcendentals; second: k_ts and its partials, K_ss, the solve, the gradient and Adam), plus
the target sampling and gather alone, for several kernels in one process, and the two-matmul
floor after them. Issue #13 asks where FC1's time over RBF goes.

Timings are medians over --reps calls, each waited for (block_until_ready); like every speed
figure here they mean something only as ratios within one run on an otherwise idle machine.

    .venv/bin/python bench/profile_step.py --kernels fc1,rbf --support 100 --target 6000
    .venv/bin/python bench/profile_step.py --kernels fc1 --support 1000 --target 2000 --augment

It also times the parts no matmul floor counts: the augmentation of the gathered batch alone
(--augment) and the Cholesky factorisation of K_ss with the solves of one step, and runs the
floor with and without the K_ss matmuls (matmul_floor.py --with-kss). --parts also times the
second call's pieces alone (K_ss and its VJP, the k_ts block and its VJP, the solve and its VJP,
the Adam update, and the matmuls among them), to show what the step spends beyond its matmuls.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as kipctl and bench_distill.py run

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from kip_runner.config.schema import KernelConfig  # noqa: E402
from kip_runner.core import kip  # noqa: E402
from kip_runner.core.augment import AugmentArgs, augment  # noqa: E402
from kip_runner.core.sampling import class_index, epoch_balanced_indices, sample_indices  # noqa: E402,E501
from kip_runner.data import load_dataset  # noqa: E402
from kip_runner.pipelines.distill import gram_fn_of  # noqa: E402

KERNELS = {"fc1": KernelConfig(), "rbf": KernelConfig(name="rbf", arch="rbf"),
           "linear": KernelConfig(name="linear", arch="linear")}


def median_ms(fn, reps: int) -> float:
    jax.block_until_ready(fn())  # compile / warm
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return round(1e3 * float(np.median(times)), 2)


# kip.solve_sym_pd and its VJP: the Cholesky factorisation and the 3 [n_s, C] solves of a step
solve_and_vjp = jax.jit(lambda k, y: jax.vjp(kip.solve_sym_pd, k, y)[1](jnp.ones_like(y)))


def mnist_case(support: int):
    """(ds, data, idx): MNIST from KIP_DATA_DIR (default ../shared/data beside the repo), its
    float32 TargetData, and the class-balanced support indices [support] of every profile."""
    ds = load_dataset("mnist", os.environ.get("KIP_DATA_DIR", str(REPO.parent / "shared/data")))
    data = kip.target_data(ds.x_train, ds.targets(), ds.y_train, jnp.float32)
    idx = np.asarray(sample_indices(jax.random.PRNGKey(0), ds.y_train, support, 10))
    return ds, data, idx


def step_case(ds, data: kip.TargetData, idx: np.ndarray, kcfg: KernelConfig, target: int,
              aug_args=None):
    """(tx, state, step, gram_fn) of kipctl's step for MNIST support ds.x_train[idx]."""
    gram_fn = gram_fn_of(kcfg, int(np.prod(ds.x_train.shape[1:])))
    tx = kip.make_optimizer(0.01, kip.frozen_mask(
        np.zeros((len(idx),) + ds.x_train.shape[1:], bool), 10, False))
    state = kip.init_state(jnp.asarray(ds.x_train[idx]), jnp.asarray(ds.targets()[idx]), tx)
    step = kip.make_kip_step(None, tx, reg=1e-6, target_batch=target, n_classes=10,
                             augment_args=aug_args, gram_fn=gram_fn)
    return tx, state, step, gram_fn


def second_call_parts(name: str, gram_fn, state, side, tx, reps: int) -> list[dict]:
    """The second call's pieces, each jitted alone with its VJP, at the step's shapes: what the
    second call costs beyond its matmuls. Cotangents are ones (their values do not matter)."""
    xs = state.params["x"].reshape(state.params["x"].shape[0], -1)  # [n_s, d]

    def k_ss(x):  # as the step computes it: its gram's VJP is one matmul (symmetric cotangent)
        n = jnp.sum(x * x, -1)
        return gram_fn(kip.sym_self_gram(x), n, n)  # [n_s, n_s]
    k_ss_vjp = jax.jit(lambda x: jax.vjp(k_ss, x)[1](jnp.ones((x.shape[0],) * 2, x.dtype)))
    kss_mm = jax.jit(lambda x, g: (x @ x.T, g @ x))  # its two matmuls alone
    block = kip.target_gram_block(gram_fn)
    k_ts_vjp = jax.jit(lambda x, sd: jax.vjp(lambda x_: block(x_, sd), x)[1](
        jnp.ones(sd.gram.shape, x.dtype)))
    k_ts_mm = jax.jit(lambda g, xt: g.T @ xt)  # its one matmul alone
    k_reg = k_ss(xs) + 1e-3 * jnp.eye(xs.shape[0], dtype=xs.dtype)
    grads = jax.tree_util.tree_map(jnp.ones_like, state.params)
    adam = jax.jit(lambda g, o, p: tx.update(g, o, p))
    g_ss = jnp.ones((xs.shape[0],) * 2, xs.dtype)
    return [{"part": part, "kernel": name, "ms": median_ms(fn, reps)} for part, fn in (
        ("second call: K_ss and its VJP", lambda: k_ss_vjp(xs)),
        ("second call: K_ss's two matmuls alone", lambda: kss_mm(xs, g_ss)),
        ("second call: k_ts block and its VJP", lambda: k_ts_vjp(xs, side)),
        ("second call: k_ts's gradient matmul alone", lambda: k_ts_mm(side.gram, side.x)),
        ("second call: solve and its VJP", lambda: solve_and_vjp(k_reg, state.params["y"])),
        ("second call: Adam update", lambda: adam(grads, state.opt_state, state.params)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kernels", default="fc1,rbf,linear")
    p.add_argument("--support", type=int, default=100)
    p.add_argument("--target", type=int, default=6000)
    p.add_argument("--reps", type=int, default=40)
    p.add_argument("--augment", action="store_true", help="augment the target batch (KIP (a))")
    p.add_argument("--parts", action="store_true",
                   help="also time the second call's pieces alone (K_ss and its VJP, the k_ts "
                        "block and its VJP, the solve and its VJP, the Adam update)")
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args()
    load_start = " ".join(f"{v:.2f}" for v in os.getloadavg())
    ds, data, idx = mnist_case(args.support)
    key = jax.random.PRNGKey(1)
    classes = data.classes if data.classes is not None else class_index(data.labels, 10)
    gather = jax.jit(lambda step: data.x.at[epoch_balanced_indices(
        key, step, classes, args.target, 10)].get(mode="fill"))  # the step's sampling + gather
    rows = [{"part": "target sampling + gather alone", "kernel": "-",
             "ms": median_ms(lambda: gather(jnp.int32(3)), args.reps)}]
    aug_args = AugmentArgs() if args.augment else None
    if args.augment:
        batch = gather(jnp.int32(3))  # [n_t, 28, 28, 1]
        aug = jax.jit(lambda k: augment(k, batch, aug_args))
        rows.append({"part": "augmentation alone", "kernel": "-",
                     "ms": median_ms(lambda: aug(key), args.reps)})
    a = np.random.default_rng(0).normal(size=(args.support, args.support)).astype(np.float32)
    k_reg = jnp.asarray(a @ a.T / args.support + np.eye(args.support, dtype=np.float32))
    y_s = jnp.ones((args.support, 10), jnp.float32)
    rows.append({"part": "Cholesky of K_ss + 3 solves alone", "kernel": "-",
                 "ms": median_ms(lambda: solve_and_vjp(k_reg, y_s), args.reps)})
    for name in args.kernels.split(","):
        tx, state, step, gram_fn = step_case(ds, data, idx, KERNELS[name], args.target, aug_args)
        side, y_t = step.first(state, key, data)
        second = jax.jit(step.second.__wrapped__)  # no donation: the same state every call
        rows += [
            {"part": "first call", "kernel": name,
             "ms": median_ms(lambda: step.first(state, key, data), args.reps)},
            {"part": "second call", "kernel": name,
             "ms": median_ms(lambda: second(state, side, y_t), args.reps)},
            {"part": "whole step", "kernel": name,
             "ms": median_ms(lambda: second(state, *step.first(state, key, data)), args.reps)}]
        if args.parts:
            rows += second_call_parts(name, gram_fn, state, side, tx, args.reps)
    for extra, label in (([], "two-matmul floor (matmul_floor.py)"),
                         (["--with-kss"], "floor with the K_ss matmuls (--with-kss)")):
        floor = subprocess.run([sys.executable, str(REPO.parent / "shared" / "bench" /
                                                    "matmul_floor.py"), "--support",
                                str(args.support), "--target", str(args.target), *extra],
                               capture_output=True, text=True, check=True)
        rows.append({"part": label, "kernel": "-",
                     "ms": round(json.loads(floor.stdout.strip().splitlines()[-1])["ms"], 2)})
    out = {"support": args.support, "target": args.target, "augment": args.augment,
           "reps": args.reps,
           "load_start": load_start, "load": " ".join(f"{v:.2f}" for v in os.getloadavg()),
           "rows": rows}
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
