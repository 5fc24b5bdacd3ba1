"""DP-KIP (issue #26): the accountant's noise against an independent call of dp_accounting,
per-example clipping bounding each target's contribution, the Poisson batch, and the command
(a DP run's spent epsilon in summary / run.json / the support's meta; init=image refused)."""

import json

import dp_accounting
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from dp_accounting import pld

from kip_runner.core import dp
from kip_runner.core.kernels import make_kernel_fn
from kip_runner.core.kip import kip_loss
from kip_runner.runs.support import load_support
from kip_runner.config.schema import DatasetConfig, DistillConfig, DpOptions
from kip_runner.errors import KipctlError
from tests.conftest import run_kipctl


def _fresh_epsilon(noise, q, steps, delta):
    acc = pld.PLDAccountant()  # an independent accountant object, composed here
    acc.compose(dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(noise)), steps))
    return acc.get_epsilon(delta)


@pytest.mark.parametrize("eps,q,steps", [(1.0, 0.02, 50), (8.0, 0.125, 100)])
def test_calibrated_noise_is_the_smallest_that_meets_epsilon(eps, q, steps):
    noise = dp.calibrate_noise(eps, 1e-5, q, steps)
    assert _fresh_epsilon(noise, q, steps, 1e-5) <= eps * (1 + 1e-6)  # the fine grid agrees
    assert _fresh_epsilon(noise * 0.97, q, steps, 1e-5) > eps  # not over-noised
    # replace-one is weaker than add/remove (<= 2x by group privacy)
    rep = dp.spent_epsilon(noise, q, steps, 1e-5, "replace_one")
    assert eps * (1 - 1e-3) <= rep <= 2 * eps + 1e-6
    with pytest.raises(ValueError):
        dp.calibrate_noise(0.0, 1e-5, q, steps)


def _problem(seed=0, n=13, m=6):
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    kfn = make_kernel_fn("fc", 1, "ntk", "ntk", 2.0, 0.1)
    params = {"x": jax.random.normal(keys[0], (m, 4, 4, 1)),
              "y": jax.nn.one_hot(jnp.arange(m) % 3, 3) - 1 / 3}
    x = jax.random.normal(keys[1], (n, 4, 4, 1)) * 2.0
    y = jax.nn.one_hot(jax.random.randint(keys[2], (n,), 0, 3), 3) - 1 / 3

    def loss(p, xt, yt):
        return kip_loss(kfn, p["x"], p["y"], xt, yt, 1e-6)[0]
    return loss, params, x, y


def test_clipped_sum_matches_explicit_per_example_gradients_and_bounds_each():
    loss, params, x, y = _problem()
    trainable = {"x": jnp.ones_like(params["x"]), "y": jnp.zeros_like(params["y"])}
    clip, count = 0.05, 11  # rows 11, 12 are padding and must not count
    total, norms = jax.jit(dp.clipped_gradient_sum, static_argnums=(0, 5, 7))(
        loss, params, x, y, jnp.asarray(count), clip, trainable, 4)
    expect = np.zeros(params["x"].shape)
    grad_one = jax.jit(jax.grad(loss))  # one compile for every [1, ...] example
    for i in range(count):
        g = grad_one(params, x[i:i + 1], y[i:i + 1])
        n = float(jnp.linalg.norm(g["x"]))  # labels frozen: not in the norm
        assert norms[i] == pytest.approx(n, rel=1e-5)
        expect += np.asarray(g["x"]) * min(1.0, clip / n)
    assert np.all(np.asarray(norms[count:]) == 0)
    assert (np.asarray(norms[:count]) > clip).sum() >= 3  # the test exercises clipping
    np.testing.assert_allclose(total["x"], expect, rtol=1e-5, atol=1e-9)
    assert np.all(np.asarray(total["y"]) == 0)
    # replacing one target moves the sum by at most 2 clip, removing it by at most clip
    x2 = x.at[3].set(x[3] * -5.0 + 1.0)
    total2, _ = dp.clipped_gradient_sum(loss, params, x2, y, jnp.asarray(count), clip,
                                        trainable, 4)
    total3, _ = dp.clipped_gradient_sum(loss, params, x, y, jnp.asarray(3), clip, trainable, 4)
    total4, _ = dp.clipped_gradient_sum(loss, params, x, y, jnp.asarray(4), clip, trainable, 4)
    assert float(jnp.linalg.norm(total2["x"] - total["x"])) <= 2 * clip * (1 + 1e-6)
    assert float(jnp.linalg.norm(total4["x"] - total3["x"])) <= clip * (1 + 1e-6)


def test_poisson_batch_rate_and_capacity():
    n, q = 5000, 0.02
    cap = dp.batch_capacity(n, q)
    assert 100 + 10 * np.sqrt(100 * 0.98) < cap <= n
    counts = []
    for s in range(40):
        idx, count, kept = dp.poisson_batch(jax.random.PRNGKey(s), n, q, cap)
        c = int(count)
        assert int(kept) == c and len(np.unique(np.asarray(idx[:c]))) == c
        counts.append(c)
    assert abs(np.mean(counts) - n * q) < 4 * np.sqrt(n * q / 40)  # the rate is q


@pytest.mark.integration
def test_dp_distill_records_the_guarantee_and_image_init_is_refused(tmp_path):
    run = tmp_path / "run"
    args = ("distill", "dataset=synthetic", "support=10", "target_batch=50", "steps=4",
            "init=noise", "dp.epsilon=2", "eval_every=0")
    out = run_kipctl(*args, f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr
    m = json.loads((run / "summary.json").read_text())["metrics"]
    noise = dp.calibrate_noise(2.0, 1e-5, m["dp/sample_rate"], 4)
    assert m["dp/noise_multiplier"] == pytest.approx(noise)
    assert m["dp/epsilon"] <= 2.0 + 1e-3 and m["dp/delta"] == 1e-5
    meta = load_support(run / "support.npz", 10).meta["dp"]
    assert meta["epsilon"] == pytest.approx(m["dp/epsilon"]) and meta["steps"] == 4
    info = json.loads((run / "run.json").read_text())
    assert info["config"]["dp"]["epsilon"] == 2.0  # the target
    assert info["dp"]["epsilon"] == pytest.approx(m["dp/epsilon"])  # the spent budget
    assert info["dp"]["epsilon_replace_one"] == pytest.approx(m["dp/epsilon_replace_one"])
    with pytest.raises(KipctlError, match="init=noise"):  # the CLI prints it as one line
        DistillConfig(dataset=DatasetConfig(name="synthetic"), init="image",
                      dp=DpOptions(epsilon=2.0))
