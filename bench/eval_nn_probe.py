"""Diagnostic for results/eval_nn/README.md: how much of a finite FC1's test error comes from
its random function at initialisation? Trains one FC1 (Adam, MSE, natural MNIST subset) and
prints, every 50 steps: train loss, train/test accuracy of f, test accuracy of the centred
predictor f - f_0 (the init function subtracted), and the std of f on the test set.

Usage: PYTHONPATH=. python bench/eval_nn_probe.py [n_support] [width] [lr] [steps]
"""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from kip_runner.core import nn
from kip_runner.data import load_dataset

n, width, lr, steps = (int(sys.argv[1]) if len(sys.argv) > 1 else 100,
                       int(sys.argv[2]) if len(sys.argv) > 2 else 512,
                       float(sys.argv[3]) if len(sys.argv) > 3 else 1e-3,
                       int(sys.argv[4]) if len(sys.argv) > 4 else 300)
ds = load_dataset("mnist", os.environ.get("KIP_DATA_DIR", "../shared/data"), n_test=2000)
x = jnp.asarray(ds.x_train[:n])  # [n,28,28,1] (first n training images)
y = jnp.asarray(ds.targets("train")[:n])  # [n,10]
xt, yt = jnp.asarray(ds.x_test), jnp.asarray(ds.targets("test"))  # [2000,...], [2000,10]
net = nn.make_net("fc", 1, width, n_out=10)
tx = nn.make_optimizer(os.environ.get("PROBE_OPT", "adam"))
params0 = nn.init_params(net, jax.random.split(jax.random.PRNGKey(0), 1), (-1, 28, 28, 1))
st = nn.init_state(tx, jax.tree_util.tree_map(jnp.copy, params0), lr)
step, predict = nn.make_train_step(net, "mse", tx), nn.make_predict(net)
f0_test = predict(params0, xt)  # [1,2000,10]
print(f"n={n} width={width} lr={lr} ({os.environ.get('PROBE_OPT', 'adam')}, MSE, float32)")
print("step train_loss train_acc test_acc test_acc_centred test_std")
for t in range(steps + 1):
    if t % 50 == 0:
        p, q = predict(st.params, x), predict(st.params, xt)
        print(t, f"{float(nn.mse_loss(p[0], y)):.4f}",
              f"{float(nn.accuracy_per_seed(p, y)[0]):.4f}",
              f"{float(nn.accuracy_per_seed(q, yt)[0]):.4f}",
              f"{float(nn.accuracy_per_seed(q - f0_test, yt)[0]):.4f}",
              f"{float(jnp.std(q)):.4f}", flush=True)
    if t < steps:
        st, _ = step(st, x, y, jnp.asarray(0.0), jax.random.PRNGKey(t))
