"""Probe (issue #13): the distill step's second jitted call at support 1000 / 2000 MNIST targets,
composed as kipctl runs it, against its loss + gradient alone (value_and_grad, no Adam) and
against a forward call that returns the VJP residuals followed by a backward + Adam call.
Prints JSON (ms, medians of 20 calls); run it on an otherwise idle machine:

    .venv/bin/python bench/probe_second_call.py   (results/distill/probe_second_call.json: 3 runs)
"""

from __future__ import annotations

import json
import os
import sys

from profile_step import KERNELS, median_ms, mnist_case, step_case  # bench/: this directory

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from kip_runner.core import kip  # noqa: E402


def main() -> int:
    n_s, n_t, reps = 1000, 2000, 20
    ds, data, idx = mnist_case(n_s)
    key = jax.random.PRNGKey(1)
    out = {}
    for name in ("fc1", "rbf"):
        tx, state, step, gram = step_case(ds, data, idx, KERNELS[name], n_t)
        side, y_t = step.first(state, key, data)
        second = jax.jit(step.second.__wrapped__)  # no donation: the same state every call

        def loss(p, sd, yt):
            return kip.gram_kip_loss_given(gram, p["x"], p["y"], sd, yt, 1e-6)
        fwd = jax.jit(lambda p, sd, yt: jax.vjp(lambda q: loss(q, sd, yt), p, has_aux=True))

        @jax.jit
        def bwd(vjp_fn, st):
            (g,) = vjp_fn(jnp.ones((), jnp.float32))
            upd, o = tx.update(g, st.opt_state, st.params)
            return optax.apply_updates(st.params, upd), o

        def split():
            _, vjp_fn, _ = fwd(state.params, side, y_t)
            return bwd(vjp_fn, state)
        vg = jax.jit(lambda p, sd, yt: jax.value_and_grad(lambda q: loss(q, sd, yt)[0])(p))
        out[name] = {
            "second call (composed)": median_ms(lambda: second(state, side, y_t), reps),
            "forward+residuals call": median_ms(lambda: fwd(state.params, side, y_t), reps),
            "split: forward call then backward+Adam call": median_ms(split, reps),
            "value_and_grad only (no Adam)": median_ms(lambda: vg(state.params, side, y_t),
                                                       reps)}
    out["load"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
