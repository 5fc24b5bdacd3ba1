"""tools/curves.py: distill run dirs -> one CSV of test-accuracy curves."""

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "curves.py"


def _curves():
    spec = importlib.util.spec_from_file_location("curves", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run_dir(path: Path, command: str = "distill") -> Path:
    path.mkdir(parents=True)
    cfg = {"kernel": {"name": "rbf"}, "support": 10, "augment": True, "learn_labels": False,
           "target_batch": 2000, "lr": None}
    (path / "run.json").write_text(json.dumps({"command": command, "status": "done",
                                               "config": cfg, "env": {"git_sha": "abc"}}))
    rows = [{"step": 0, "test_accuracy": 0.5}, {"step": 10, "loss": 0.3, "acc": 0.4},
            {"step": 250, "loss": 0.2, "test_accuracy": 0.8125}]
    (path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_curves_keeps_only_evaluated_steps_in_percent(tmp_path):
    run = _run_dir(tmp_path / "rbf-a")
    out = tmp_path / "out" / "curves.csv"
    _curves().main([str(out), str(run)])
    df = pd.read_csv(out)
    assert list(df["step"]) == [0, 250]
    assert list(df["test_accuracy"]) == [50.0, 81.25]
    assert set(df["kernel"]) == {"rbf"} and set(df["augment"]) == {True}


def test_curves_refuses_dirs_it_cannot_read(tmp_path):
    with pytest.raises(SystemExit, match="no run.json"):
        _curves().main([str(tmp_path / "o.csv"), str(tmp_path)])
    with pytest.raises(SystemExit, match="not distill"):
        _curves().main([str(tmp_path / "o.csv"), str(_run_dir(tmp_path / "ls", "label-solve"))])
    with pytest.raises(SystemExit, match="no metrics.csv"):  # an unfinished eval-nn run
        _curves().main([str(tmp_path / "o.csv"), str(_run_dir(tmp_path / "nn", "eval-nn"))])


def test_curves_of_eval_nn_runs_have_one_row_per_init(tmp_path):
    run = tmp_path / "nn"
    run.mkdir()
    cfg = {"net": {"name": "fc1", "width": 4096}, "loss": "xent", "steps": 500, "lr": 4e-4,
           "data": "natural"}
    (run / "run.json").write_text(json.dumps({"command": "eval-nn", "status": "done",
                                              "config": cfg, "env": {}}))
    pd.DataFrame({"seed": [0, 1], "rho": [0.9, 0.9], "test_accuracy": [0.75, 0.7625],
                  "train_loss": [0.1, 0.2]}).to_csv(run / "metrics.csv", index=False)
    out = tmp_path / "nn.csv"
    _curves().main([str(out), str(run)])
    df = pd.read_csv(out)
    assert list(df["seed"]) == [0, 1] and list(df["test_accuracy"]) == [75.0, 76.25]
    assert set(df["width"]) == {4096} and set(df["loss"]) == {"xent"}
    with pytest.raises(SystemExit, match="not both"):
        _curves().main([str(out), str(run), str(_run_dir(tmp_path / "d"))])
