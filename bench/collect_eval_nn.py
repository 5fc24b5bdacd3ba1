"""Builds results/eval_nn/table.md from the summary.json / uptime.txt copies under
results/eval_nn/<run>/ (numbers are never typed by hand)."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "results" / "eval_nn"
PAPER = {"mnist_fc1_mse": "92.8 ± 0.4 (A7)", "mnist_fc1_xent": "91.3 ± 0.4 (A8)",
         "cifar10_fc1_xent": "35.4 ± 0.3 (A10)",
         "cifar10_fc1_xent_reduced": "35.4 ± 0.3 (A10)"}
rows = ["| run | test accuracy % (mean ± std) | seeds | steps | final train loss | n_test "
        "| wall s (pipeline) | paper | uptime before / after |", "|" + "---|" * 9]
for d in sorted(p for p in ROOT.iterdir() if (p / "summary.json").exists()):
    m = json.loads((d / "summary.json").read_text())["metrics"]
    up = (d / "uptime.txt").read_text().split("\n") if (d / "uptime.txt").exists() else []
    loads = " / ".join(line.split("load average:")[-1].strip() for line in up if line.strip())
    rows.append(f"| {d.name} | {100 * m['test_accuracy_mean']:.1f} ± "
                f"{100 * m['test_accuracy_std']:.1f} | {m['n_seeds']} | {m['steps']} | "
                f"{m['train_loss_mean']:.3f} | {m['n_test']} | {m['seconds']:.0f} | "
                f"{PAPER.get(d.name, '')} | {loads} |")
(ROOT / "table.md").write_text("\n".join(rows) + "\n")
print("\n".join(rows))
