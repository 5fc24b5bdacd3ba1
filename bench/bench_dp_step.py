"""DP-KIP step cost against the plain KIP step (issue #26 item 4), measured in one run.

Both steps on real MNIST, FC1 NTK, float32, noise init, the same expected target batch (the
plain step: a class-balanced batch of exactly that size; DP: a Poisson batch with that mean,
per-target gradients clipped, noised). `ratio` = DP ms/step / plain ms/step; the load average
is recorded before and after (run on an otherwise idle machine: absolute times swing 2x).

    .venv/bin/python bench/bench_dp_step.py --out results/dp/bench_step.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from kip_runner.config.schema import DatasetConfig
from kip_runner.core import dp, kip
from kip_runner.core.kernels import make_kernel_fn
from kip_runner.pipelines.common import dataset_from_config

FC1 = dict(arch="fc", depth=1, kind="ntk", parameterization="ntk", w_var=2.0, b_var=1e-4)


def timed(step, state, key, data, n):
    state, m = step(state, key, data)  # compile
    jax.block_until_ready(m)
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        state, m = step(state, key, data)
        jax.block_until_ready(m)
        t.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(t)), state


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    data_dir = os.environ.get("KIP_DATA_DIR", "../shared/data")
    ds = dataset_from_config(DatasetConfig(name="mnist", data_dir=data_dir))
    data = kip.target_data(ds.x_train, ds.targets("train"), ds.y_train, np.float32)
    kfn = make_kernel_fn(**FC1)
    rows = [{"load_before": os.getloadavg()[0]}]
    for support, batch in ((10, 1000), (100, 1000), (100, 100)):
        x0 = np.asarray(jax.random.uniform(jax.random.PRNGKey(0), (support, 28, 28, 1),
                                           jnp.float32, -1, 1))
        y0 = (np.eye(10)[np.arange(support) % 10] - 0.1).astype(np.float32)
        frozen = kip.frozen_mask(np.zeros(x0.shape, bool), 10, False)
        tx = kip.make_optimizer(0.01, frozen)
        plain = kip.make_kip_step(kfn, tx, reg=1e-6, target_batch=batch, n_classes=10,
                                  gram_fn=kip.gram_kernel("fc", 1, "ntk", "ntk", 784, 2.0,
                                                          1e-4))
        ms_plain, _ = timed(plain, kip.init_state(x0, y0, tx), jax.random.PRNGKey(1), data,
                            a.steps)
        q = batch / len(ds.y_train)
        args = dp.DpArgs(1.0, 0.1, q, dp.batch_capacity(len(ds.y_train), q), 100)
        trainable = jax.tree_util.tree_map(lambda f: jnp.asarray(~f, jnp.float32), frozen)
        dstep = dp.make_dp_kip_step(kfn, tx, reg=1e-6, n_train=len(ds.y_train), dp=args,
                                    trainable=trainable)
        ms_dp, _ = timed(dstep, kip.init_state(x0, y0, tx), jax.random.PRNGKey(1), data,
                         a.steps)
        rows.append({"support": support, "expected_batch": batch, "plain_ms": ms_plain,
                     "dp_ms": ms_dp, "ratio": ms_dp / ms_plain})
        print(rows[-1], flush=True)
    rows.append({"load_after": os.getloadavg()[0], "cpus": os.cpu_count(),
                 "jax": jax.__version__})
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
