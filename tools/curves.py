#!/usr/bin/env python
"""Test-accuracy curves of distill run dirs as one CSV (for ablations quoted in REPRODUCTION.md).

    python tools/curves.py OUT.csv RUN_DIR [RUN_DIR ...]

One row per evaluated step of each run: the run's kernel, support, augment, learn_labels,
target batch, lr and git sha (from run.json), the step and its test accuracy in % (from
metrics.jsonl). A run dir without run.json or metrics.jsonl is an error, not a silent skip.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd


def curve(run: Path) -> pd.DataFrame:
    """The evaluated steps of one distill run dir -> DataFrame."""
    for name in ("run.json", "metrics.jsonl"):
        if not (run / name).is_file():
            raise SystemExit(f"curves: {run} has no {name}; is it a distill run dir?")
    meta = json.loads((run / "run.json").read_text())
    if meta.get("command") != "distill":
        raise SystemExit(f"curves: {run} is a {meta.get('command')} run, not distill")
    cfg = meta["config"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if line.strip()]
    evals = [(r["step"], 100.0 * r["test_accuracy"]) for r in rows if "test_accuracy" in r]
    return pd.DataFrame({
        "run": run.name, "kernel": cfg["kernel"]["name"], "support": cfg["support"],
        "augment": cfg["augment"], "learn_labels": cfg["learn_labels"],
        "target_batch": cfg["target_batch"], "lr": cfg["lr"],
        "git_sha": meta["env"].get("git_sha"), "status": meta.get("status"),
        "step": [s for s, _ in evals], "test_accuracy": [round(a, 2) for _, a in evals]})


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    out, runs = Path(argv[0]), [Path(a) for a in argv[1:]]
    df = pd.concat([curve(r) for r in runs], ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    print(df.pivot_table(index=["kernel", "support", "augment", "learn_labels", "target_batch"],
                         columns="step", values="test_accuracy").to_string())


if __name__ == "__main__":
    main(sys.argv[1:])
