"""Benchmark of the KIP step (kipctl distill's inner loop) on real MNIST.

For each case it reports the compile time (first call), ms/step (median and mean of the
following calls, each waited for, exactly as the distill loop does) and the peak RSS of a
fresh process running only that case. Cases run one after the other, each in its own
subprocess, so their RSS does not mix. The machine load (`uptime`) is recorded before and
after every case: on a shared machine timings are only comparable at similar load.

    .venv/bin/python bench/bench_distill.py            # all cases -> results/distill/bench.*
    .venv/bin/python bench/bench_distill.py --steps 20 --cases fc1-100
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# name -> (kernel option, support, target batch, timed steps)
CASES = {
    "fc1-10": ("fc1", 10, 6000, 40),
    "fc1-100": ("fc1", 100, 6000, 40),
    "rbf-10": ("rbf", 10, 6000, 40),
    "rbf-100": ("rbf", 100, 6000, 40),
    "conv1-100": ("conv1", 100, 1000, 5),
    # not a step: the two [6000,784]x[784,100] matmuls every exact FC/RBF step needs
    # (x_t x_s^T forward, g^T x_t for the support gradient), jitted alone: the floor
    "matmul-floor-100": ("fc1", 100, 6000, 40),
}


def load() -> str:
    return os.getloadavg().__repr__()


def matmul_floor(name: str, n_s: int, n_t: int, steps: int) -> dict:
    """ms of the two matmuls alone (random f32 data of MNIST's shape)."""
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    xt = jax.random.normal(k1, (n_t, 784), jnp.float32)  # [n_t, d]
    xs = jax.random.normal(k2, (n_s, 784), jnp.float32)  # [n_s, d]
    g = jax.random.normal(k3, (n_t, n_s), jnp.float32)  # [n_t, n_s]
    f = jax.jit(lambda xt, xs, g: (xt @ xs.T, g.T @ xt))  # [n_t, n_s], [n_s, d]
    t0 = time.perf_counter()
    jax.block_until_ready(f(xt, xs, g))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        jax.block_until_ready(f(xt, xs, g))
        times.append(time.perf_counter() - t0)
    return {"case": name, "kernel": "-", "support": n_s, "target_batch": n_t,
            "timed_steps": steps, "compile_s": round(compile_s, 3),
            "ms_per_step_median": round(1e3 * float(np.median(times)), 2),
            "ms_per_step_mean": round(1e3 * float(np.mean(times)), 2),
            "ms_per_step_min": round(1e3 * float(np.min(times)), 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "devices": len(jax.devices()), "dtype": "float32", "path": "two matmuls only"}


def one(name: str, steps_override: int | None, nt_kernel: bool = False) -> dict:
    """Runs one case in this process and returns its figures."""
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    sys.path.insert(0, str(REPO))
    from kip_runner.config.schema import KernelConfig  # noqa: PLC0415
    from kip_runner.core import kip  # noqa: PLC0415
    from kip_runner.core.kernels import make_kernel_fn  # noqa: PLC0415
    from kip_runner.core.sampling import sample_indices  # noqa: PLC0415
    from kip_runner.data import load_dataset  # noqa: PLC0415
    from kip_runner.pipelines.distill import gram_fn_of, target_sharding  # noqa: PLC0415

    kernel, n_s, n_t, steps = CASES[name]
    steps = steps_override or steps
    if name.startswith("matmul-floor"):
        return matmul_floor(name, n_s, n_t, steps)
    depth = 1
    kcfg = {"fc1": KernelConfig(), "rbf": KernelConfig(name="rbf", arch="rbf"),
            "conv1": KernelConfig(name="conv1", arch="conv", width=128)}[kernel]
    ds = load_dataset("mnist", os.environ.get("KIP_DATA_DIR", str(REPO.parent / "shared/data")))
    data = kip.target_data(ds.x_train, ds.targets(), ds.y_train, jnp.float32)
    idx = np.asarray(sample_indices(jax.random.PRNGKey(0), ds.y_train, n_s, 10))
    tx = kip.make_optimizer(0.01, kip.frozen_mask(np.zeros((n_s,) + ds.x_train.shape[1:],
                                                           bool), 10, False))
    state = kip.init_state(jnp.asarray(ds.x_train[idx]), jnp.asarray(ds.targets()[idx]), tx)
    sharding, _ = target_sharding(n_t)
    gram_fn = None if nt_kernel else gram_fn_of(kcfg, int(np.prod(ds.x_train.shape[1:])))
    step = kip.make_kip_step(make_kernel_fn(**{**kcfg.kernel_args(), "depth": depth}), tx,
                             reg=1e-6, target_batch=n_t, n_classes=10, target_sharding=sharding,
                             gram_fn=gram_fn)
    key = jax.random.PRNGKey(1)
    t0 = time.perf_counter()
    state, m = step(state, key, data)
    float(m["loss"])
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        state, m = step(state, key, data)
        float(m["loss"])
        times.append(time.perf_counter() - t0)
    return {"case": name, "kernel": kernel, "support": n_s, "target_batch": n_t,
            "timed_steps": steps, "compile_s": round(compile_s, 3),
            "ms_per_step_median": round(1e3 * float(np.median(times)), 2),
            "ms_per_step_mean": round(1e3 * float(np.mean(times)), 2),
            "ms_per_step_min": round(1e3 * float(np.min(times)), 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "final_loss": float(m["loss"]), "devices": len(jax.devices()),
            "dtype": "float32",
            "path": "neural-tangents kernel" if nt_kernel or gram_fn is None else "gram"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--steps", type=int, default=None, help="timed steps per case")
    p.add_argument("--out", default=str(REPO / "results" / "distill" / "bench"))
    p.add_argument("--nt-kernel", action="store_true",
                   help="use the neural-tangents kernel_fn instead of the dot-product path")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.steps, args.nt_kernel)))
        return 0
    rows = []
    for name in args.cases.split(","):
        before = load()
        cmd = [sys.executable, __file__, "--one", name] + (
            ["--steps", str(args.steps)] if args.steps else []) + (
            ["--nt-kernel"] if args.nt_kernel else [])
        # as kipctl runs it: one OpenBLAS thread unless set (kip_runner/__init__.py)
        blas = os.environ.get("OPENBLAS_NUM_THREADS", "1")
        out = subprocess.run(cmd, capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=str(REPO),
                                      OPENBLAS_NUM_THREADS=blas))
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return 1
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row.update(load_before=before, load_after=load(), openblas_threads=blas)
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"command": " ".join([Path(sys.executable).name] + sys.argv),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(),
            "note": "2-core machine shared with other workers; load = os.getloadavg()"}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "cases": rows}, indent=2)
                                        + "\n")
    cols = ["case", "path", "support", "target_batch", "compile_s", "ms_per_step_median",
            "ms_per_step_mean", "peak_rss_mb", "load_before", "load_after"]
    md = [f"# distill step benchmark ({meta['date']})", "", f"`{meta['command']}`", "",
          meta["note"], "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
