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
    assert "boom" in (tmp_path / "rep" / "report-not_done.md").read_text()
    out = capsys.readouterr().out
    assert "2 run(s) not done" in out
    # the last line is a sentence: what the table holds and where it went
    rows = len(csv)
    assert out.strip().splitlines()[-1] == (
        f"report: {rows} rows x {len(csv.columns)} columns (2 run(s) not done, left out) -> "
        f"{tmp_path / 'rep' / 'report'}.md, .csv, .tex")


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


def test_paper_table_a7_from_corrupt_sweep_results(tmp_path, capsys):
    rows = []
    for data, accs in (("natural", [0.92, 0.94]), ("kip", [0.95, 0.95])):
        for seed, acc in enumerate(accs):
            rows.append(dict(data=data, support=1000, rho=0.0, evaluator="nn", loss="mse",
                             seed=seed, test_accuracy=acc, test_mse=0.1, status="done",
                             dataset="mnist", run_dir="x"))
    rows.append(dict(rows[0], loss="xent", test_accuracy=0.1))  # other table (A8): ignored
    rows.append(dict(rows[0], status="failed", test_accuracy=0.0))  # failed: ignored
    (tmp_path / "sweep").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "sweep" / "results.csv", index=False)
    fake_run(tmp_path, "sweep", "corrupt-sweep", {"dataset": {"name": "mnist"}},
             metrics={"n_cells": 4})
    assert main([str(tmp_path / "sweep"), "paper=table-a7", "format=csv"]) == 0
    rep = pd.read_csv(tmp_path / "sweep" / "report" / "report.csv")
    nat = rep[(rep.method == "Natural") & (rep.rho == 0.0) & (rep.support == 1000)].iloc[0]
    assert nat.n == 2 and nat.ours == "93.00±1.00" and nat.paper == "92.80±0.40"
    assert nat.delta == pytest.approx(0.2)
    kip = rep[(rep.method == "KIP (a)") & (rep.rho == 0.0)].iloc[0]
    assert kip.delta == pytest.approx(95.0 - 94.5)
    empty = rep[(rep.method == "KIP (a+l)") & (rep.rho == 0.9)].iloc[0]
    assert pd.isna(empty.n) and empty.paper == "94.60±1.90"
    assert main([str(tmp_path / "sweep"), "paper=table-a99"]) == 2
    assert "paper= takes one of table-1" in capsys.readouterr().err


def test_paper_table_1_maps_runs_to_methods(tmp_path):
    cfg = {"dataset": {"name": "mnist"}, "kernel": {"name": "fc1", "kind": "ntk"},
           "support": 10}
    fake_run(tmp_path, "d", "distill", {**cfg, "augment": False, "learn_labels": False},
             metrics={"test_accuracy": 0.893})
    fake_run(tmp_path, "al", "distill", {**cfg, "augment": True, "learn_labels": True},
             metrics={"test_accuracy": 0.85})
    fake_run(tmp_path, "ls", "label-solve", {**cfg, "support": 100},
             metrics={"test_accuracy": 0.87})
    assert main([str(tmp_path), "paper=table-1", f"out={tmp_path / 'rep'}"]) == 0
    rep = pd.read_csv(tmp_path / "rep" / "report.csv").set_index(["method", "support"])
    assert rep.loc[("KRR FC1, KIP", 10), "delta"] == pytest.approx(89.3 - 89.30)
    assert rep.loc[("KRR FC1, KIP (a+l)", 10), "delta"] == pytest.approx(85.0 - 85.46)
    assert rep.loc[("KRR FC1, LS", 100), "paper"] == "87.20±0.71"


@pytest.mark.parametrize("dataset,table,label", [
    ("mnist", "table-1", "NN FC1, KIP (FC1 kernel)"), ("cifar10", "table-2", "NN FC1, KIP")])
def test_paper_nn_row_of_a_distilled_support(tmp_path, dataset, table, label):
    """eval-nn on a distill run's support.npz is the "NN FC1, KIP" row, named as each table
    names it (Table 1 adds the training kernel)."""
    cfg = {"dataset": {"name": dataset}, "kernel": {"name": "fc1", "kind": "ntk"},
           "support": 10}
    kip = fake_run(tmp_path, "kip", "distill", cfg, metrics={"test_accuracy": 0.9})
    (kip / "support.npz").write_bytes(b"")  # exists; source_info reads the run.json
    fake_run(tmp_path, "nn", "eval-nn",
             {"dataset": {"name": dataset}, "net": {"name": "fc1"}, "support": 1000,
              "data": str(kip / "support.npz")},
             metrics={"test_accuracy_mean": 0.80})
    # the run's two network inits are two evaluations: n and the std are over them
    pd.DataFrame({"seed": [0, 1], "split": ["test", "test"],
                  "test_accuracy": [0.78, 0.82]}).to_csv(tmp_path / "nn" / "metrics.csv",
                                                         index=False)
    assert main([str(tmp_path), f"paper={table}", f"out={tmp_path / 'rep'}"]) == 0
    rep = pd.read_csv(tmp_path / "rep" / "report.csv").set_index(["method", "support"])
    assert rep.loc[(label, 10), "n"] == 2
    assert rep.loc[(label, 10), "ours"] == "80.00±2.00"
    # one KIP run is one evaluation: no std shown
    assert rep.loc[(label.replace("NN", "KRR").split(" (")[0], 10), "ours"] == "90.00"


def test_paper_nn_row_refuses_an_eval_nn_run_without_its_per_init_rows(tmp_path, capsys):
    cfg = {"dataset": {"name": "mnist"}, "kernel": {"name": "fc1", "kind": "ntk"},
           "support": 10}
    kip = fake_run(tmp_path, "kip", "distill", cfg, metrics={"test_accuracy": 0.9})
    (kip / "support.npz").write_bytes(b"")
    fake_run(tmp_path, "nn", "eval-nn", {"dataset": {"name": "mnist"}, "net": {"name": "fc1"},
                                         "data": str(kip / "support.npz")},
             metrics={"test_accuracy_mean": 0.80})
    assert main([str(tmp_path), "paper=table-1", f"out={tmp_path / 'rep'}"]) != 0
    err = capsys.readouterr().err
    assert "metrics.csv" in err and "re-run" in err and "Traceback" not in err
    assert not (tmp_path / "rep" / "report.csv").exists()


def test_long_caption_is_an_option_not_a_path(tmp_path):
    """A caption longer than a file name may be (255 bytes) is still caption=..."""
    fake_run(tmp_path, "r", "eval-krr", {"kernel": {"name": "rbf"}, "support": 10},
             metrics={"accuracy_mean": 0.5})
    caption = "Table X (" + "a long caption; " * 40 + ")"
    assert main([str(tmp_path), f"caption={caption}", f"out={tmp_path / 'rep'}"]) == 0
    assert (tmp_path / "rep" / "report.md").read_text().splitlines()[0] == caption
