"""Probe (issue #13): the distill step's second jitted call at support 1000 / 2000 MNIST targets,
composed as kipctl runs it, against its loss + gradient alone (value_and_grad, no Adam) and
against a forward call that returns the VJP residuals followed by a backward + Adam call.
Prints JSON (ms, medians of 20 calls); run it on an otherwise idle machine:

    .venv/bin/python bench/probe_second_call.py   (results/distill/probe_second_call.json: 3 runs)
"""
import os, sys, time, json
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jax, jax.numpy as jnp, numpy as np, optax
from kip_runner.core import kip
from kip_runner.core.sampling import sample_indices
from kip_runner.data import load_dataset
from kip_runner.config.schema import KernelConfig
from kip_runner.pipelines.distill import gram_fn_of
def med(fn, reps=20):
    jax.block_until_ready(fn()); t=[]
    for _ in range(reps):
        t0=time.perf_counter(); jax.block_until_ready(fn()); t.append(time.perf_counter()-t0)
    return round(1e3*float(np.median(t)),2)
ns, nt = 1000, 2000
ds = load_dataset("mnist", os.environ.get("KIP_DATA_DIR", "../shared/data"))
data = kip.target_data(ds.x_train, ds.targets(), ds.y_train, jnp.float32)
idx = np.asarray(sample_indices(jax.random.PRNGKey(0), ds.y_train, ns, 10))
key = jax.random.PRNGKey(1)
out = {}
for kname, kcfg in (("fc1", KernelConfig()), ("rbf", KernelConfig(name="rbf", arch="rbf"))):
    gram = gram_fn_of(kcfg, 784)
    tx = kip.make_optimizer(0.01, kip.frozen_mask(np.zeros((ns, 28, 28, 1), bool), 10, False))
    state = kip.init_state(jnp.asarray(ds.x_train[idx]), jnp.asarray(ds.targets()[idx]), tx)
    step = kip.make_kip_step(None, tx, reg=1e-6, target_batch=nt, n_classes=10, gram_fn=gram)
    side, y_t = step.first(state, key, data)
    second = jax.jit(step.second.__wrapped__)
    loss = lambda p, sd, yt: kip.gram_kip_loss_given(gram, p["x"], p["y"], sd, yt, 1e-6)
    fwd = jax.jit(lambda p, sd, yt: jax.vjp(lambda q: loss(q, sd, yt), p, has_aux=True))
    @jax.jit
    def bwd(vjp_fn, st):
        (g,) = vjp_fn(jnp.ones((), jnp.float32))
        upd, o = tx.update(g, st.opt_state, st.params)
        return optax.apply_updates(st.params, upd), o
    def split():
        l, f, a = fwd(state.params, side, y_t)
        return bwd(f, state)
    vg = jax.jit(lambda p, sd, yt: jax.value_and_grad(lambda q: loss(q, sd, yt)[0])(p))
    out[kname] = {"second call (composed)": med(lambda: second(state, side, y_t)),
                  "forward+residuals call": med(lambda: fwd(state.params, side, y_t)),
                  "split: forward call then backward+Adam call": med(split),
                  "value_and_grad only (no Adam)": med(lambda: vg(state.params, side, y_t))}
out["load"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
print(json.dumps(out, indent=1))
