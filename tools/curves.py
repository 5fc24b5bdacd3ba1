#!/usr/bin/env python
"""Ablation runs as one CSV (for ablations quoted in REPRODUCTION.md).

    python tools/curves.py OUT.csv RUN_DIR [RUN_DIR ...]

distill run dirs: one row per evaluated step, with the run's kernel, support, augment (and its
shift and rotation ranges), learn_labels, target batch, lr and git sha (run.json) and the
step's test accuracy in % (metrics.jsonl). eval-nn run dirs: one row per network init, with
the net, width, loss, centring, steps, lr, data, rho and the init's test accuracy in %
(metrics.csv). All run dirs of one call must be of one command. A dir without those files is
an error, not a silent skip.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd


def curve(run: Path, meta: dict) -> pd.DataFrame:
    """The evaluated steps of one distill run dir (meta: its run.json) -> DataFrame."""
    if not (run / "metrics.jsonl").is_file():
        raise SystemExit(f"curves: {run} has no metrics.jsonl; is it a distill run dir?")
    cfg = meta["config"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if line.strip()]
    evals = [(r["step"], 100.0 * r["test_accuracy"]) for r in rows if "test_accuracy" in r]
    return pd.DataFrame({
        "run": run.name, "kernel": cfg["kernel"]["name"], "support": cfg["support"],
        "augment": cfg["augment"], "aug_shift": cfg.get("aug_shift"),
        "aug_rotate": cfg.get("aug_rotate"), "learn_labels": cfg["learn_labels"],
        "target_batch": cfg["target_batch"], "lr": cfg["lr"],
        "git_sha": meta["env"].get("git_sha"), "status": meta.get("status"),
        "step": [s for s, _ in evals], "test_accuracy": [round(a, 2) for _, a in evals]})


def nn_inits(run: Path, meta: dict) -> pd.DataFrame:
    """The network inits of one eval-nn run dir -> DataFrame."""
    if not (run / "metrics.csv").is_file():
        raise SystemExit(f"curves: {run} has no metrics.csv; did the eval-nn run finish?")
    cfg, rows = meta["config"], pd.read_csv(run / "metrics.csv")
    return pd.DataFrame({
        "run": run.name, "net": cfg["net"]["name"], "width": cfg["net"]["width"],
        "loss": cfg["loss"], "center": cfg.get("center"), "steps": cfg["steps"],
        "lr": cfg["lr"], "data": cfg["data"],
        "rho": rows["rho"], "seed": rows["seed"],
        "test_accuracy": (100.0 * rows["test_accuracy"]).round(2),
        "train_loss": rows["train_loss"], "git_sha": meta["env"].get("git_sha"),
        "status": meta.get("status")})


def rows_of(run: Path) -> tuple[str, pd.DataFrame]:
    if not (run / "run.json").is_file():
        raise SystemExit(f"curves: {run} has no run.json; is it a run dir?")
    meta = json.loads((run / "run.json").read_text())
    readers = {"distill": curve, "eval-nn": nn_inits}
    if meta.get("command") not in readers:
        raise SystemExit(f"curves: {run} is a {meta.get('command')} run, not distill or "
                         "eval-nn")
    return meta["command"], readers[meta["command"]](run, meta)


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    out, runs = Path(argv[0]), [Path(a) for a in argv[1:]]
    kinds, frames = zip(*(rows_of(r) for r in runs))
    if len(set(kinds)) > 1:
        raise SystemExit("curves: give distill or eval-nn run dirs, not both in one CSV")
    df = pd.concat(frames, ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    if kinds[0] == "eval-nn":
        print(df.groupby(["data", "rho", "width", "loss", "center", "steps"]).test_accuracy.agg(
            ["mean", "std", "count"]).to_string())
    else:
        print(df.pivot_table(index=["kernel", "support", "augment", "aug_shift", "aug_rotate",
                                    "learn_labels", "target_batch"],
                             columns="step", values="test_accuracy").to_string())


if __name__ == "__main__":
    main(sys.argv[1:])
