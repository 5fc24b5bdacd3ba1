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
floor with and without the K_ss matmuls (matmul_floor.py --with-kss).
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kernels", default="fc1,rbf,linear")
    p.add_argument("--support", type=int, default=100)
    p.add_argument("--target", type=int, default=6000)
    p.add_argument("--reps", type=int, default=40)
    p.add_argument("--augment", action="store_true", help="augment the target batch (KIP (a))")
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args()
    load_start = " ".join(f"{v:.2f}" for v in os.getloadavg())
    ds = load_dataset("mnist", os.environ.get("KIP_DATA_DIR", str(REPO.parent / "shared/data")))
    data = kip.target_data(ds.x_train, ds.targets(), ds.y_train, jnp.float32)
    idx = np.asarray(sample_indices(jax.random.PRNGKey(0), ds.y_train, args.support, 10))
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
    chol = jax.jit(lambda k, y: kip._solve_sym_pd_bwd(kip._solve_sym_pd_fwd(k, y)[1], y))
    rows.append({"part": "Cholesky of K_ss + 3 solves alone", "kernel": "-",
                 "ms": median_ms(lambda: chol(k_reg, y_s), args.reps)})
    dim = int(np.prod(ds.x_train.shape[1:]))
    for name in args.kernels.split(","):
        kcfg = KERNELS[name]
        tx = kip.make_optimizer(0.01, kip.frozen_mask(np.zeros((args.support, 28, 28, 1), bool),
                                                      10, False))
        state = kip.init_state(jnp.asarray(ds.x_train[idx]), jnp.asarray(ds.targets()[idx]), tx)
        step = kip.make_kip_step(None, tx, reg=1e-6, target_batch=args.target, n_classes=10,
                                 augment_args=aug_args, gram_fn=gram_fn_of(kcfg, dim))
        side, y_t = step.first(state, key, data)
        second = jax.jit(step.second.__wrapped__)  # no donation: the same state every call
        rows += [
            {"part": "first call", "kernel": name,
             "ms": median_ms(lambda: step.first(state, key, data), args.reps)},
            {"part": "second call", "kernel": name,
             "ms": median_ms(lambda: second(state, side, y_t), args.reps)},
            {"part": "whole step", "kernel": name,
             "ms": median_ms(lambda: second(state, *step.first(state, key, data)), args.reps)}]
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
