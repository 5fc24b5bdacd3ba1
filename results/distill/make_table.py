"""Prints the accuracy table of results/distill/*/summary.json (README.md embeds its output)."""
import json
from pathlib import Path

PAPER = {("fc1", 10): 89.30, ("fc1", 100): 96.64, ("rbf", 10): 89.60, ("rbf", 100): 97.31}
HERE = Path(__file__).resolve().parent
print("| run | kernel | support | steps | test acc % | Table 1 KIP % | diff | test MSE | "
      "train loss | s/step (this process) | wall | load (1-min, start -> end) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for d in sorted(p.parent for p in HERE.glob("*/summary.json")):
    m = json.loads((d / "summary.json").read_text())["metrics"]
    kernel, support = m["kernel"], m["support"]
    acc = 100 * m["test_accuracy"]
    paper = PAPER.get((kernel, support))
    wall = next((line.split(": ")[-1] for line in (d / "time.txt").read_text().splitlines()
                 if "Elapsed" in line), "?") if (d / "time.txt").exists() else "?"
    load = (d / "load.txt").read_text().strip() if (d / "load.txt").exists() else "?"
    print(f"| {d.name} | {kernel} | {support} | {m['steps']} | {acc:.2f} | {paper} | "
          f"{acc - paper:+.2f} | {m['test_mse']:.5f} | {m['train_loss']:.4f} | "
          f"{m['seconds_per_step']:.3f} | {wall} | {load} |")
