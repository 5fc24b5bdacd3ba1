"""kipctl's finite nets (core/nn.py) against neural-tangents 0.6.5's stax, with no NT installed.

tests/fixtures/nt/nets.npz was written once by tools/nt_fixtures_nets.py under the old stack
(jax 0.5.3, neural-tangents 0.6.5): per case, the stax init at a fixed key (float64, stored
rounded to float32), and stax's float64 outputs on fixed MNIST-, CIFAR- or small-shaped inputs.
"""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kip_runner.core import nn

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "nt" / "nets.npz"
with np.load(FIXTURE) as _f:
    CASES = str(_f["cases"]).split(",")
REL_TOL = 1e-6  # issue #24 item 3: net outputs <= 1e-6 relative in float64


@pytest.fixture(scope="module")
def fixtures():
    with np.load(FIXTURE) as f:
        yield {k: f[k] for k in f.files}


def _load_case(fixtures, case):
    """(net, x, NT's params in our pytree, our init's leaves at the same key)."""
    config = json.loads(str(fixtures[f"{case}/config"]))
    x = jnp.asarray(fixtures[f"x/{config.pop('input')}"], jnp.float64)  # [3, H, W, C]
    net = nn.make_net(**config)
    _, ours = net.init_fn(jnp.asarray(fixtures[f"{case}/key"]), (-1,) + x.shape[1:])
    our_leaves, treedef = jax.tree_util.tree_flatten(ours)
    stored = [fixtures[f"{case}/leaf_{i:03d}"] for i in range(len(our_leaves))]
    assert f"{case}/leaf_{len(our_leaves):03d}" not in fixtures, "NT has more parameter leaves"
    assert [v.shape for v in stored] == [v.shape for v in our_leaves]
    params = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(v, jnp.float64) for v in stored])
    return net, x, params, our_leaves


def _rel_err(ours, ref) -> float:
    return float(np.max(np.abs(np.asarray(ours) - ref)) / np.max(np.abs(ref)))


def test_fixture_provenance(fixtures):
    assert str(fixtures["nt_version"]) == "0.6.5"
    assert str(fixtures["jax_version"]) == "0.5.3"
    assert FIXTURE.stat().st_size < 2 * 2 ** 20


@pytest.mark.parametrize("case", CASES)
def test_outputs_equal_neural_tangents(fixtures, case):
    net, x, params, _ = _load_case(fixtures, case)
    out = net.apply_fn(params, x)  # [3, n_out]
    assert out.dtype == jnp.float64
    ref = fixtures[f"{case}/out"]
    assert out.shape == ref.shape
    assert _rel_err(out, ref) <= REL_TOL
    if f"{case}/out_stats2" in fixtures:  # WRN: BN statistics of the first 2 rows only
        out2 = net.apply_fn(params, x, stats_rows=2)  # [3, n_out]
        assert _rel_err(out2, fixtures[f"{case}/out_stats2"]) <= REL_TOL
        assert _rel_err(out2, ref) > 1e-3  # the statistics did change the output


@pytest.mark.parametrize("case", CASES)
def test_init_draws_neural_tangents_parameters_from_the_same_key(fixtures, case):
    # Same key-splitting order as stax (serial: split off the running key; parallel: split in
    # B; Dense/Conv: (W, b) keys), so eval-nn's seeds give the nets they gave under NT. A
    # failure with equal shapes means jax's PRNG stream changed, not the layer semantics.
    _, _, _, our_leaves = _load_case(fixtures, case)
    for i, leaf in enumerate(our_leaves):
        assert leaf.dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(leaf).astype(np.float32),
                                      fixtures[f"{case}/leaf_{i:03d}"], err_msg=f"leaf {i}")


@pytest.mark.parametrize("parameterization", nn.PARAMETERIZATIONS)
def test_init_distribution(parameterization):
    w_var, b_var, width, c_in = 2.0, 0.09, 512, 8
    key = jax.random.PRNGKey(7)
    fc = nn.make_net("fc", 1, width, w_var, b_var, parameterization, n_out=3)
    _, ((), (w1, b1), (), (wr, br)) = fc.init_fn(key, (-1, 16, 16, c_in))
    assert w1.shape == (16 * 16 * c_in, width) and b1.shape == (1, width)
    assert wr.shape == (width, 3) and br.shape == (1, 3)
    conv = nn.make_net("conv", 1, width, w_var, b_var, parameterization, n_out=3)
    _, ((wc, bc), (), (), _) = conv.init_fn(key, (-1, 4, 4, c_in))
    assert wc.shape == (3, 3, c_in, width) and bc.shape == (1, 1, 1, width)
    ntk = parameterization == "ntk"
    for w, fan_in in ((w1, 16 * 16 * c_in), (wc, 9 * c_in)):
        want = 1.0 if ntk else np.sqrt(w_var / fan_in)
        assert abs(float(jnp.std(w)) / want - 1) < 0.02 and abs(float(jnp.mean(w))) < 0.02 * want
    for b in (b1, bc):
        want = 1.0 if ntk else np.sqrt(b_var)
        assert abs(float(jnp.std(b)) / want - 1) < 0.15
    # The readout is NTK-parameterised in both: N(0, 1) entries.
    assert abs(float(jnp.std(wr)) - 1) < 0.1


def test_parameterizations_compute_the_same_function_at_matching_parameters():
    # W_standard = w_std / sqrt(fan_in) * W_ntk and b_standard = b_std * b_ntk give the same
    # outputs: the two differ only in where the scale lives (and so in the gradients).
    w_var, b_var = 1.7, 0.3
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 8, 8, 2), jnp.float64)  # [4, 8, 8, 2]
    ntk = nn.make_net("conv", 2, 5, w_var, b_var, "ntk", n_out=3)
    std = nn.make_net("conv", 2, 5, w_var, b_var, "standard", n_out=3)
    _, p = ntk.init_fn(jax.random.PRNGKey(1), x.shape)
    fan_ins = (9 * 2, 9 * 5)
    scaled = tuple((w * np.sqrt(w_var / f), b * np.sqrt(b_var))
                   for (w, b), f in zip((p[0], p[2]), fan_ins))
    q = (scaled[0], (), scaled[1], (), (), p[5])  # readout stays NTK in both
    np.testing.assert_allclose(std.apply_fn(q, x), ntk.apply_fn(p, x), rtol=1e-12, atol=1e-12)
