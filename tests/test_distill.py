"""Integration tier for `kipctl distill`: the run-dir contract, resume (also after kill -9),
refusal of a foreign checkpoint, the non-finite guard, bad inputs, multi-device sharding; and
a slow real-MNIST band check."""

import json
import re
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from kip_runner.runs.support import load_support
from tests.conftest import REPO, assert_one_line_error, requires_data, run_kipctl

pytestmark = pytest.mark.integration
SYN = ("dataset=synthetic", "support=20", "target_batch=100")
FAST = {"JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}  # STYLE.md: integration runs compile less


def distill(*args):
    return run_kipctl("distill", *args, env=FAST)


def _summary(run):
    return json.loads((run / "summary.json").read_text())


def _one_error_line(out):
    assert_one_line_error(out, "")
    return out.stderr.strip()


def test_distill_contract_resume_and_foreign_checkpoint(kipctl, tmp_path):
    run = tmp_path / "run"
    out = distill(*SYN, "steps=3", "eval_every=2", "ckpt_every=2", "log_every=1",
                 "rho=0.5", "learn_labels=true", f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr
    for name in ("run.json", "summary.json", "metrics.jsonl", "metrics.csv", "support.npz",
                 "distill.log", "checkpoints/LATEST", "checkpoints/step_000002.npz",
                 "checkpoints/step_000003.npz"):
        assert (run / name).exists(), name
    assert (run / "checkpoints/LATEST").read_text().strip() == "step_000003.npz"
    m = _summary(run)["metrics"]
    assert {"test_accuracy", "test_mse", "train_loss", "steps", "seconds_per_step"} <= set(m)
    assert m["steps"] == 3 and 0.0 <= m["test_accuracy"] <= 1.0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert "test_accuracy" in rows[2] and "loss" in rows[1]
    assert len(pd.read_csv(run / "metrics.csv")) == 4
    sup = load_support(run / "support.npz", 10, (8, 8, 1))
    assert sup.images.shape == (20, 8, 8, 1) and sup.mask.mean() == pytest.approx(0.5)
    assert sup.meta["rho"] == 0.5 and sup.meta["dataset"] == "synthetic"
    assert sup.meta["kernel"]["name"] == "fc1" and len(sup.meta["mean"]) == 1
    # eval-krr reads it
    ev = kipctl("eval-krr", "dataset=synthetic", f"source={run / 'support.npz'}",
                f"hydra.run.dir={tmp_path / 'ev'}")
    assert ev.returncode == 0, ev.stderr
    # Same command with more steps resumes from LATEST (steps is not in the fingerprint).
    out = distill(*SYN, "steps=5", "eval_every=2", "ckpt_every=2", "log_every=1",
                 "rho=0.5", "learn_labels=true", f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr
    m = _summary(run)["metrics"]
    assert m["resumed_from"] == 3 and m["steps"] == 5
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3, 4, 5]
    # A checkpoint written by another config is refused with one line.
    other = tmp_path / "other"
    (other / "checkpoints").mkdir(parents=True)
    for f in (run / "checkpoints").iterdir():
        (other / "checkpoints" / f.name).write_bytes(f.read_bytes())
    out = distill(*SYN, "steps=5", "rho=0.5", f"hydra.run.dir={other}")
    assert "was written by a different config" in _one_error_line(out)


def test_kill_9_then_rerun_equals_an_uninterrupted_run(tmp_path):
    args = [*SYN, "steps=600", "ckpt_every=50", "eval_every=0", "log_every=50"]
    clean = tmp_path / "clean"
    assert run_kipctl("distill", *args, f"hydra.run.dir={clean}", env=FAST).returncode == 0
    run = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(REPO), **FAST)
    proc = subprocess.Popen([sys.executable, "-m", "kip_runner", "distill", *args,
                             f"hydra.run.dir={run}"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = run / "checkpoints" / "LATEST"

    def latest_step() -> int:
        try:
            return int(latest.read_text().strip()[5:11])
        except (OSError, ValueError):
            return 0
    deadline = time.time() + 120
    # wait for a second checkpoint, so that an older one is there when the newest is damaged
    while latest_step() < 100 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # only the process this test started
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    killed_at = latest_step()
    assert 100 <= killed_at < 600
    # Damage the newest checkpoint: the rerun resumes from the newest readable one, warning once.
    newest = run / "checkpoints" / latest.read_text().strip()
    newest.write_bytes(newest.read_bytes()[:100])
    out = run_kipctl("distill", *args, f"hydra.run.dir={run}", env=FAST)
    assert out.returncode == 0, out.stderr
    said = [line for line in (out.stdout + out.stderr).splitlines() if "skipping" in line]
    assert len(said) == 1 and newest.name in said[0], said
    resumed = _summary(run)["metrics"]["resumed_from"]
    assert killed_at - 50 <= resumed < killed_at
    a, b = np.load(clean / "support.npz"), np.load(run / "support.npz")
    assert np.array_equal(a["images"], b["images"]) and np.array_equal(a["labels"], b["labels"])
    # at most ckpt_keep (3) checkpoints are kept, the final state among them
    for folder in (clean, run):
        kept = sorted(p.name for p in (folder / "checkpoints").glob("step_*.npz"))
        assert kept == ["step_000500.npz", "step_000550.npz", "step_000600.npz"], kept


def test_no_readable_checkpoint_is_one_line(tmp_path):
    run = tmp_path / "run"
    args = [*SYN, "ckpt_every=2", "eval_every=0", f"hydra.run.dir={run}"]
    assert distill(*args, "steps=4").returncode == 0
    for f in (run / "checkpoints").glob("step_*.npz"):
        f.write_bytes(b"not a zip")
    line = _one_error_line(distill(*args, "steps=6"))  # continues the run: needs a checkpoint
    assert "no readable checkpoint" in line and "step_000004.npz" in line, line


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(kipctl, tmp_path):
    run = tmp_path / "run"
    out = distill(*SYN, "lr=1e30", "steps=20", "ckpt_every=1", "eval_every=0",
                 f"hydra.run.dir={run}")
    line = _one_error_line(out)
    # the step at which lr=1e30 overflows depends on the kernel's float32 rounding (step 2 on
    # neural-tangents, 3 on kipctl's kernels); the message must name it, and the last kept
    # checkpoint must be the step before it
    found = re.search(r"non-finite KIP loss \(\w+\) at step (\d+);", line)
    assert found and 1 < int(found[1]) < 20, line
    assert (run / "checkpoints/LATEST").read_text().strip() == f"step_{int(found[1]) - 1:06d}.npz"
    assert json.loads((run / "run.json").read_text())["status"] == "failed"


def test_kernel_family_augment_noise_init_and_eval_kernel(tmp_path):
    run = tmp_path / "run"
    out = distill(*SYN, "steps=6", "kernel=family_fc_conv", "kernel.members=[fc1,conv1]",
                  "augment=true", "init=noise", "eval_every=3", "eval_kernel=rbf",
                  "log_every=1", f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["kernel"] for r in rows if "kernel" in r} == {"fc1", "conv1"}  # seed 0 draws both
    m = _summary(run)["metrics"]
    assert m["eval_kernel"] == "rbf" and m["kernel"] == "family_fc_conv" and m["steps"] == 6
    assert np.isfinite(m["train_loss"])
    # the augmentation that ran is in the support's meta (synthetic data is grayscale: 5 %)
    aug = load_support(run / "support.npz", 10).meta["augmentation"]
    assert aug == {"flip": False, "max_shift": 0.05, "max_rotate": 10.0, "channel_shift": 0.0}


@pytest.mark.parametrize("override,msg", [
    ("support=5", "smaller than the number of classes"),
    ("rho=1.0", "rho must lie in [0, 1)"),
    ("init=zeros", "init must be image or noise"),
    ("kernel.arch=family", "needs a non-empty members list"),
    ("kernel=family_fc_conv kernel.members=[fc1,lstm2]", "unknown family member 'lstm2'"),
    ("lr=-1", "lr must be > 0"),
    ("eval_kernel=fc2 eval_kernel.arch=family eval_kernel.members=[fc1]",
     "eval_kernel must be a single kernel"),
])
def test_bad_input_is_one_line(kipctl, tmp_path, override, msg):
    run = tmp_path / "run"
    out = kipctl("distill", "dataset=synthetic", *override.split(), f"hydra.run.dir={run}")
    assert msg in _one_error_line(out)
    assert not run.exists()


def test_infeasible_target_batch_is_one_line(kipctl, tmp_path):
    out = kipctl("distill", "dataset=synthetic", "target_batch=1000",
                 f"hydra.run.dir={tmp_path / 'r'}")
    assert "exceeds the 400 training examples" in _one_error_line(out)


MULTI_DEVICE = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from kip_runner.core import kip
    from kip_runner.core.kernels import make_kernel_fn
    from kip_runner.data import load_dataset
    from kip_runner.pipelines.distill import target_sharding
    from jax.sharding import NamedSharding, PartitionSpec
    assert jax.device_count() == 2, jax.devices()
    ds = load_dataset("synthetic", None)
    data = kip.TargetData(jnp.asarray(ds.x_train), jnp.asarray(ds.targets()),
                          jnp.asarray(ds.y_train, jnp.int32))
    out = []
    for sharded in (False, True):
        tx = kip.make_optimizer(0.01, kip.frozen_mask(np.zeros((20, 8, 8, 1), bool), 10, True))
        state = kip.init_state(ds.x_train[:20], ds.targets()[:20], tx)
        sharding, mesh = target_sharding(200) if sharded else (None, None)
        d = data
        if mesh is not None:
            rep = NamedSharding(mesh, PartitionSpec())
            d, state = jax.device_put(data, rep), jax.device_put(state, rep)
        step = kip.make_kip_step(make_kernel_fn("fc", 1), tx, reg=1e-6, target_batch=200,
                                 n_classes=10, target_sharding=sharding)
        for _ in range(3):
            state, m = step(state, jax.random.PRNGKey(0), d)
        out.append((np.asarray(state.params["x"]), float(m["loss"])))
    # float32 sums in another order: Adam (lr 0.01, 3 steps) amplifies ~1e-7 gradient
    # differences of near-zero gradient entries into at most a few 1e-5 of a pixel
    assert np.allclose(out[0][0], out[1][0], atol=3e-4), abs(out[0][0] - out[1][0]).max()
    assert abs(out[0][1] - out[1][1]) < 1e-4 * abs(out[0][1])
    print("OK", out[0][1], out[1][1])
""")


def test_sharded_over_two_cpu_devices_matches_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", MULTI_DEVICE], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-2000:]


@pytest.mark.slow
@requires_data
def test_real_mnist_distill_band(kipctl, tmp_path):
    run = tmp_path / "run"
    out = kipctl("distill", "dataset=mnist", "kernel=fc1", "support=10", "steps=100",
                 "target_batch=2000", "eval_every=0", f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr
    m = _summary(run)["metrics"]
    # natural 10-image FC1 KRR is ~50%; 100 KIP steps reach ~75-80% (1000 steps: ~89%)
    assert 0.65 < m["test_accuracy"] < 0.95 and m["steps"] == 100
