"""Table 1's plain KIP rows from the GPU check's run directories: mean ± std over the inits of
each (kernel, support), beside the paper's value (tools/gpu_check.sh writes the runs).

    python3 tools/gpu_table1.py outputs/gpu-check/table1 results/gpu/table1   # -> .csv, .md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kip_runner.paper import KERNEL_LABEL, published  # noqa: E402


def main() -> int:
    runs, out = Path(sys.argv[1]), Path(sys.argv[2])
    rows = []
    for summary in sorted(runs.glob("*/summary.json")):
        s = json.loads(summary.read_text())
        run = json.loads((summary.parent / "run.json").read_text())
        cfg, m = run["config"], s["metrics"]
        rows.append({"kernel": cfg["kernel"]["name"], "support": cfg["support"],
                     "seed": cfg["seed"], "steps": m.get("steps", cfg["steps"]),
                     "accuracy": 100 * m["test_accuracy"],
                     "ms_per_step": 1e3 * m["seconds_per_step"]})
    if not rows:
        print(f"gpu_table1: no finished run under {runs}")
        return 1
    df = pd.DataFrame(rows)
    table = df.groupby(["kernel", "support"]).agg(
        inits=("seed", "count"), steps=("steps", "min"), mean=("accuracy", "mean"),
        std=("accuracy", "std"), ms_per_step=("ms_per_step", "median")).reset_index()
    paper = published("table-1")
    table["paper"] = [float(paper[(paper.method == f"KRR {KERNEL_LABEL[k]}, KIP")
                                  & (paper.support == n)]["mean"].iloc[0])
                      for k, n in zip(table.kernel, table.support)]
    table["delta"] = table["mean"] - table["paper"]
    table = table.round({"mean": 2, "std": 2, "ms_per_step": 3, "paper": 2, "delta": 2})
    out.parent.mkdir(parents=True, exist_ok=True)
    df.round(3).to_csv(out.with_suffix(".csv"), index=False)
    md = ["Table 1, plain KIP rows (MNIST, KRR test accuracy %, float64 eval on the 10000 test "
          "images; each init's final step, paper: the 5 lowest-train-loss checkpoints of each)",
          "", table.to_markdown(index=False)]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
