"""kipctl report over a mixed tree of run directories."""

import json

import pandas as pd
import pytest

from kip_runner.pipelines.report import build_report, main
from kip_runner.runs.rundir import write_json

pytestmark = pytest.mark.integration


def fake_run(root, name, command, config, status="done", metrics=None, reason=None):
    d = root / name
    write_json(d / "run.json", {"command": command, "status": status, "config": config,
                                "reason": reason})
    if status != "running":
        write_json(d / "summary.json", {"command": command, "status": status,
                                        "metrics": metrics or {}})
    return d


def test_grouping_and_failed_runs_listed_apart(tmp_path, capsys):
    base = {"dataset": {"name": "mnist"}, "kernel": {"name": "fc1", "kind": "ntk"}}
    for seed, acc in enumerate([0.8, 0.9]):
        fake_run(tmp_path, f"krr{seed}", "eval-krr", {**base, "support": 10, "seed": seed},
                 metrics={"accuracy_mean": acc})
    fake_run(tmp_path, "krr100", "eval-krr", {**base, "support": 100, "seed": 0},
             metrics={"accuracy_mean": 0.95})
    fake_run(tmp_path, "sub/distill", "distill", {**base, "support": 10, "seed": 0},
             metrics={"test_accuracy": 0.89})
    fake_run(tmp_path, "ls", "label-solve", {**base, "support": 10},
             metrics={"test_accuracy": 0.61})
    fake_run(tmp_path, "bad", "eval-krr", {**base, "support": 10, "seed": 9},
             status="failed", reason="boom", metrics={"accuracy_mean": 0.0})
    fake_run(tmp_path, "live", "distill", {**base, "support": 10}, status="running")

    grouped, other = build_report([tmp_path])
    krr10 = grouped[(grouped.command == "eval-krr") & (grouped.support == 10)].iloc[0]
    assert krr10.n_runs == 2 and krr10.accuracy_mean == pytest.approx(0.85)
    assert krr10.accuracy_mean_std == pytest.approx(0.05)  # the failed 0.0 is not averaged in
    assert set(grouped.command) == {"eval-krr", "distill", "label-solve"}
    assert sorted(other.status) == ["failed", "running"]

    assert main([str(tmp_path), "by=command,support", "values=accuracy_mean,test_accuracy",
                 f"out={tmp_path / 'rep'}"]) == 0
    csv = pd.read_csv(tmp_path / "rep" / "report.csv")
    assert list(csv.columns[:3]) == ["command", "support", "n_runs"]
    assert (tmp_path / "rep" / "report.tex").read_text().startswith("\\begin{table}")
    assert "boom" in (tmp_path / "rep" / "not_done.md").read_text()
    assert "2 run(s) not done" in capsys.readouterr().out


def test_report_errors_are_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert main([str(tmp_path)]) == 2
    fake_run(tmp_path, "r", "eval-krr", {"support": 10}, metrics={"accuracy_mean": 1.0})
    assert main([str(tmp_path), "by=nonexistent"]) == 2
    assert main([str(tmp_path), "colour=red"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("kipctl: error:") for line in err)


def test_report_over_real_cli_runs(kipctl, tmp_path):
    sweep = tmp_path / "sweep"
    kipctl("eval-krr", "-m", "dataset=synthetic", "support=20,500", f"hydra.sweep.dir={sweep}")
    out = kipctl("report", str(sweep), "format=csv")
    assert out.returncode == 0, out.stderr
    assert "1 run(s) not done" in out.stdout
    rows = pd.read_csv(sweep / "report" / "report.csv")
    assert rows.n_runs.tolist() == [1]
    info = json.loads(next(sweep.glob("*/run.json")).read_text())
    assert info["config"]["dataset"]["name"] == "synthetic"
