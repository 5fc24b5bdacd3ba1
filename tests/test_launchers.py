"""Hydra multirun through every supported launcher plugin, on a tiny synthetic config.

Each launcher runs jobs in other processes (joblib/loky workers, submitit subprocesses, Ray
workers), so these tests also check that the jobs find the config schemas and write the
run-dir contract into the shared sweep directory.
"""

import json

import pytest

pytestmark = pytest.mark.integration


def statuses(sweep):
    return sorted(json.loads(p.read_text())["status"] for p in sweep.glob("*/run.json"))


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local", "ray"])
def test_launcher_runs_every_job(kipctl, tmp_path, launcher):
    pytest.importorskip({"joblib": "hydra_plugins.hydra_joblib_launcher",
                         "submitit_local": "hydra_plugins.hydra_submitit_launcher",
                         "ray": "hydra_plugins.hydra_ray_launcher"}[launcher])
    sweep = tmp_path / "sweep"
    # Two jobs keep the suite fast; results/launchers/ records the 4-job acceptance sweeps.
    out = kipctl("eval-krr", "-m", "dataset=synthetic", "kernel=rbf", "support=10,20",
                 "seeds=2", f"hydra/launcher={launcher}", f"hydra.sweep.dir={sweep}",
                 env={"RAY_DEDUP_LOGS": "0"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert statuses(sweep) == ["done"] * 2
    supports = sorted(json.loads(p.read_text())["config"]["support"]
                      for p in sweep.glob("*/run.json"))
    assert supports == [10, 20]


def test_failed_job_is_recorded_and_the_sweep_continues(kipctl, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "sweep"
    out = kipctl("eval-krr", "-m", "dataset=synthetic", "support=20,500",
                 "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}")
    assert out.returncode != 0
    assert statuses(sweep) == ["done", "failed"]
