"""Integration tier: the kipctl CLI as a subprocess, the run-dir contract, error lines."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kip_runner.runs.support import save_support
from tests.conftest import REPO, assert_one_line_error, requires_data

pytestmark = pytest.mark.integration


def test_help_lists_subcommands(kipctl):
    out = kipctl("--help")
    assert out.returncode == 0 and "eval-krr" in out.stdout


def test_subcommand_help_lists_only_usable_options(kipctl):
    out = kipctl("eval-krr", "--help")
    assert out.returncode == 0, out.stderr
    listing = out.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    groups = dict(line.split(": ", 1) for line in listing.splitlines() if ": " in line)
    assert set(groups) == {"dataset", "kernel", "net", "eval_kernel"}
    assert "mnist" in groups["dataset"] and "fc1" in groups["kernel"]
    assert "_schema" not in out.stdout


def test_a_typo_inside_a_group_still_fails_against_its_schema(kipctl, tmp_path):
    out = kipctl("eval-krr", "dataset=synthetic", "kernel.typo_key=1",
                 f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line_error(out, "typo_key")


def test_unknown_subcommand_prints_usage_and_exits_2(kipctl):
    out = kipctl("frobnicate")
    assert out.returncode == 2
    assert "unknown subcommand 'frobnicate'" in out.stderr and "usage:" in out.stderr


def test_eval_krr_writes_the_run_dir_contract(kipctl, tmp_path):
    run = tmp_path / "run"
    out = kipctl("eval-krr", "dataset=synthetic", "support=20", "seeds=3",
                 f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr
    for name in (".hydra/config.yaml", "eval-krr.log", "run.json", "metrics.csv",
                 "summary.json"):
        assert (run / name).exists(), name
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "done" and info["config"]["support"] == 20
    assert info["env"]["jax"] and info["fingerprint"]
    last = out.stdout.strip().splitlines()[-1]  # one readable line, the dict is in summary.json
    assert last.startswith("eval-krr: ") and last.endswith(f"-> {run}"), last
    assert "% KRR test accuracy (fc1 ntk, 20 natural images, 3 seed(s), float64" in last
    summary = json.loads((run / "summary.json").read_text())
    assert summary["command"] == "eval-krr" and summary["status"] == "done"
    m = summary["metrics"]
    assert m["n_seeds"] == 3 and 0.2 < m["accuracy_mean"] <= 1.0  # chance is 0.1
    df = pd.read_csv(run / "metrics.csv")
    assert len(df) == 3 and {"seed", "kernel", "support", "rho", "split", "accuracy",
                             "mse"} <= set(df.columns)
    assert np.isclose(df.accuracy.mean(), m["accuracy_mean"])


def test_eval_krr_reads_a_support_file_in_kip_convnet_schema(kipctl, tmp_path):
    from kip_runner.data import load_dataset
    ds = load_dataset("synthetic", None)
    path = tmp_path / "kip.npz"
    np.savez(path, images=ds.x_train[:30], labels=ds.y_train[:30])  # integer labels
    out = kipctl("eval-krr", "dataset=synthetic", "kernel=rbf", f"source={path}",
                 f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 0, out.stderr
    m = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    assert m["n_seeds"] == 1 and m["accuracy_mean"] > 0.2
    save_support(tmp_path / "s.npz", ds.x_train[:30, :4], ds.targets()[:30])
    bad = kipctl("eval-krr", "dataset=synthetic", f"source={tmp_path / 's.npz'}",
                 f"hydra.run.dir={tmp_path / 'run2'}")
    assert bad.returncode == 2 and "wrong dataset" in bad.stderr


def test_a_support_file_with_nan_or_inf_is_refused_naming_the_file(kipctl, tmp_path):
    from kip_runner.data import load_dataset
    ds = load_dataset("synthetic", None)
    images, labels = ds.x_train[:30].copy(), ds.targets()[:30].copy()
    images[3, 0, 0, 0], images[7, 1, 1, 0], labels[2, 0] = np.nan, np.inf, np.nan
    path = tmp_path / "diverged.npz"
    save_support(path, images, labels)
    run = tmp_path / "run"
    out = kipctl("eval-krr", "dataset=synthetic", f"source={path}", f"hydra.run.dir={run}")
    assert_one_line_error(out, f"{path}: 2 non-finite (NaN/inf) values in its images")
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    assert not (run / "metrics.csv").exists()


@pytest.mark.parametrize("override,msg", [
    ("kernel=unknown", "Could not find 'kernel/unknown'"),
    ("typo_key=1", "typo_key"),
    ("support=notanint", "could not be converted to Integer"),
    ("rho=1.0", "rho must lie in [0, 1)"),
    ("support=5", "smaller than the number of classes"),
    ("kernel.width=[1", "no viable alternative at input '[1'"),  # override grammar
    ("dataset.n_train=x", "could not be converted to Integer"),  # nested wrong type
])
def test_bad_input_is_one_line_and_leaves_nothing(kipctl, tmp_path, override, msg):
    run = tmp_path / "run"
    out = kipctl("eval-krr", "dataset=synthetic", override, f"hydra.run.dir={run}")
    assert_one_line_error(out, msg)
    assert not run.exists()


def test_an_internal_error_exits_1_with_one_line_and_a_traceback(tmp_path):
    """A bug (here an internal ImportError: the pipeline module does not import) is not the
    user's fault: exit 1, one line that points to traceback.txt, no traceback on stderr."""
    run = tmp_path / "run"
    code = ("import sys; sys.modules['kip_runner.pipelines.eval_krr'] = None; "  # -> ImportError
            "from kip_runner.cli import main; sys.exit(main(sys.argv[1:]))")
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code, "eval-krr", "dataset=synthetic",
                          f"hydra.run.dir={run}"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 1, out.stderr
    assert len(lines) == 1 and lines[0].startswith("kipctl: error: ModuleNotFoundError: import "
                                                   "of kip_runner.pipelines.eval_krr halted"), \
        out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    tb = run / "traceback.txt"
    assert str(tb) in lines[0]
    assert "Traceback" in tb.read_text() and "kip_runner.pipelines.eval_krr" in tb.read_text()


def test_missing_data_and_support_file_fail_with_one_line(kipctl, tmp_path):
    for override in (f"dataset.data_dir={tmp_path / 'nope'}", f"source={tmp_path / 'x.npz'}"):
        out = kipctl("eval-krr", "dataset=mnist", override, f"hydra.run.dir={tmp_path / 'r'}")
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert out.returncode == 2 and len(lines) == 1, out.stderr
        status = json.loads((tmp_path / "r" / "run.json").read_text())
        assert status["status"] == "failed" and status["reason"]


def test_cfg_job_and_multirun(kipctl, tmp_path):
    out = kipctl("eval-krr", "dataset=synthetic", "--cfg", "job")
    assert out.returncode == 0 and "support: 100" in out.stdout
    sweep = tmp_path / "sweep"
    out = kipctl("eval-krr", "-m", "dataset=synthetic", "kernel=rbf,fc1", "support=10,20",
                 f"hydra.sweep.dir={sweep}")
    assert out.returncode == 0, out.stderr
    runs = sorted(p.parent for p in sweep.glob("*/summary.json"))
    assert len(runs) == 4
    assert all(json.loads((r / "run.json").read_text())["status"] == "done" for r in runs)


def test_multirun_failed_job_does_not_stop_the_others(kipctl, tmp_path):
    sweep = tmp_path / "sweep"
    out = kipctl("eval-krr", "-m", "dataset=synthetic", "support=20,500",
                 f"hydra.sweep.dir={sweep}")
    assert out.returncode == 2
    statuses = sorted(json.loads(p.read_text())["status"] for p in sweep.glob("*/run.json"))
    assert statuses == ["done", "failed"]


@pytest.mark.slow
@requires_data
def test_real_mnist_natural_rbf_band(kipctl, tmp_path):
    out = kipctl("eval-krr", "dataset=mnist", "kernel=rbf", "support=100", "seeds=2",
                 f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 0, out.stderr
    m = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    # Table A1 reports RBF 100 natural MNIST at about 80%; this band only guards regressions.
    assert 0.70 < m["accuracy_mean"] < 0.90 and m["n_test"] == 10000


def test_rerun_in_a_done_run_dir_recomputes_nothing(kipctl, tmp_path):
    run = tmp_path / "run"
    args = ("eval-krr", "dataset=synthetic", "support=20", f"hydra.run.dir={run}")
    assert kipctl(*args).returncode == 0
    before = (run / "summary.json").read_text()
    info = json.loads((run / "run.json").read_text())
    again = kipctl(*args)
    assert again.returncode == 0 and "nothing to recompute" in again.stdout + again.stderr
    assert (run / "summary.json").read_text() == before
    assert json.loads((run / "run.json").read_text()) == info
    other = kipctl("eval-krr", "dataset=synthetic", "support=30", f"hydra.run.dir={run}")
    assert other.returncode == 2 and "different config" in other.stderr


def _write_lock(run, pid, host=None):
    import socket
    run.mkdir(parents=True)
    (run / ".kipctl.lock").write_text(json.dumps(
        {"pid": pid, "host": host or socket.gethostname(), "started": "2026-12-04T10:00:00"}))


def test_a_run_dir_in_use_stops_the_second_process_touching_nothing(kipctl, tmp_path):
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        run = tmp_path / "run"
        _write_lock(run, owner.pid)
        out = kipctl("eval-krr", "dataset=synthetic", "support=20", f"hydra.run.dir={run}")
        assert_one_line_error(out, f"{run} is in use by kipctl pid {owner.pid}")
        assert sorted(p.name for p in run.iterdir()) == [".kipctl.lock"]  # no .hydra, no log
        other = tmp_path / "other"
        _write_lock(other, 12345, host="elsewhere")
        out = kipctl("eval-krr", "dataset=synthetic", "support=20", f"hydra.run.dir={other}")
        assert_one_line_error(out, f"delete {other / '.kipctl.lock'}")
    finally:
        owner.kill()
        owner.wait()


def test_a_stale_lock_is_taken_over_with_a_warning_and_released(kipctl, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "run"
    _write_lock(run, dead.pid)
    out = kipctl("eval-krr", "dataset=synthetic", "support=20", "seeds=1",
                 f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr
    assert f"kipctl: warning: taking over the stale lock of pid {dead.pid}" in out.stderr
    assert json.loads((run / "run.json").read_text())["status"] == "done"
    assert not (run / ".kipctl.lock").exists()


def test_a_lock_naming_no_process_is_treated_as_unreadable(tmp_path):
    """A lock without a positive int pid names no process (os.kill(-1, 0) would test every
    process): refused while fresh, taken over with a warning once stale."""
    from kip_runner.runs import lock
    run = tmp_path / "run"
    run.mkdir()
    path = run / lock.LOCK_NAME
    path.write_text(json.dumps({"host": "here"}))  # no pid
    with pytest.raises(lock.LockHeld, match="being claimed by another kipctl process"):
        lock.acquire(run)
    os.utime(path, (0, 0))  # older than STALE_UNREADABLE_S
    warnings = []
    assert lock.acquire(run, warn=warnings.append) == path
    assert len(warnings) == 1 and warnings[0].startswith("taking over an unreadable lock")
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release(path)
    assert not path.exists()
