"""Writes REPRODUCTION.md from the tables that `make <target> SCALE=cpu` generated.

    python tools/make_reproduction.py [--src results/repro] [--out REPRODUCTION.md]

`make reproduction` first copies outputs/tables/<id>-cpu.* and outputs/figures/<id>-cpu.* into
results/repro/ (committed), then runs this script. Every number in REPRODUCTION.md is read
from those files: our values and the published ones from the report csv files (the paper
columns come from kip_runner/paper/paper_tables.csv via `kipctl report paper=`), wall times
from the <id>-cpu.wall.json files written by tools/timed, captions from the markdown tables.
Only the prose on gaps is written here, per artefact.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kip_runner import paper  # noqa: E402
from kip_runner.runs import tables  # noqa: E402

GAPS = {
    "table-1": [
        "One KIP init per cell and its final checkpoint, 1000 steps; the paper averages 5 "
        "inits x the 5 best checkpoints of 10-20k steps, so its std is over 25 evaluations.",
        "Re-run on 2026-11-27 with float64 evaluation of the learned supports (distill "
        "eval_x64, issue #12; 0 solve fallbacks), the step without K_ss symmetrisation (#13) "
        "and KIP (a+l) trained 5000 steps instead of 1000. Before -> after: KIP FC1 88.98 -> "
        "89.17 / 96.09 -> 96.03, KIP RBF 89.05 -> 89.12 / 96.86 -> 96.84 (new batches and "
        "rounding, within a run-to-run spread); (a+l) FC1 80.06 -> 83.12 / 94.52 -> 95.85, "
        "(a+l) RBF 80.73 -> 82.43 / 95.53 -> 96.41 (the longer training); NN row 80.56 -> "
        "80.43 / 90.71 -> 90.43; LS unchanged.",
        "KIP (a+l) at support 100 is now within 2 points (FC1 -1.30, RBF -1.43); at support "
        "10 it is not (FC1 -2.34, RBF -8.20). 5x the steps moved RBF-10 by only 1.7 points, so "
        "step count is not the whole gap: with 10 images, the learned labels and 2000 "
        "augmented targets per step (the paper's target batch for (a+l) is not stated for "
        "KRR) are the next suspects, not measured here.",
        "The NN row trains a width-1024 FC1 (paper: 4096) for 500 steps on the learned images "
        "(MSE, centred f - f0, 2 inits).",
        "Label Solve uses all 60k targets and 3 support draws; Myrtle-5 LS rows are not run "
        "on this CPU (a 1000 x 100 Myrtle-5 kernel block takes ~5 h here: GPU only).",
        "Plain KIP FC1 at 1000 steps meets the accuracy checks of the distill issue (support "
        "10: 89.17 >= 89; support 100: 96.03 >= 95.7).",
    ],
    "table-a1": [
        "5 resamplings per cell instead of 20, and sizes up to 5000 (10000 is a 30-60 min "
        "float64 solve per resampling here for FC1).",
        "PAPER.md gives Table A1's layout and one published cell (RBF, 10 images, quoted in "
        "§8), so the other cells have no paper value here.",
        "Every cell is float64 end to end (data, kernel matrices, Cholesky solve at the "
        "paper's ridge 1e-6·tr/n): 0 of 150 solves needed a larger ridge (column "
        "solve_fallbacks). The linear column is the double descent of §8: accuracy falls from "
        "63.4 % at 80 images to its minimum 41.2 % at 640, just below the input dimension "
        "(784), and recovers to 70.7 % at 1280 and 83.1 % at 5000.",
        "Before this run (issue #12) the linear cells from 640 images on came from a "
        "least-squares fallback on a float32 K_ss (a truncated pseudo-inverse, a different "
        "estimator): 70.6 / 79.3 / 83.3 / 85.2 % at 640 / 1280 / 2560 / 5000, now 41.2 / 70.7 "
        "/ 79.5 / 83.1 %. The earlier note that read a dip at 320-640 as the double descent "
        "had its minimum at 320 (53.3 %) only because the fallback lifted 640; the RBF and "
        "FC1 columns moved by at most 0.002 points.",
    ],
    "figure-2": [
        "FC1 on MNIST only (the paper's figure also has Myrtle-5/10, Fashion-MNIST and "
        "CIFAR-10); one support draw per point, so no error bars.",
        "Published values exist only where Table 1 reports LS with all targets (support 10, "
        "100, 500).",
    ],
    "table-a7": [
        "KIP (a) trained 2000 steps with 2000 targets per step (paper: 10k steps, target "
        "batch = half the training set); the network is FC1 width 1024 (paper: 4096) trained "
        "500 steps (paper: not stated) with 2 inits (paper: 5); networks train the centred "
        "function f(x; w) - f(x; w0) (without it a natural-1000 FC1 reaches ~54-62% here).",
        "The paper's claim is visible but smaller: every KIP (a) row is above its natural "
        "row, and the margin grows with rho: +3.0 (rho 0), +6.9 (0.5), +9.8 (0.75), +8.9 "
        "points (0.9: 83.70 vs 74.80; paper +17.7). The >= 10 points asked at rho = 0.9 is "
        "missed by 1.1 points.",
        "Before -> after this re-run (200 -> 2000 KIP steps, 2026-11-27): KIP (a) 94.15 -> "
        "94.42, 90.48 -> 91.87, 84.13 -> 89.96, 74.26 -> 83.70 at rho 0 / 0.5 / 0.75 / 0.9. "
        "The KIP_rho images were still improving: PAPER.md §8 saw the KRR accuracy rise "
        "from 84.5% (1000 steps) to 87.2% (1500) and still rising; here the rho = 0.9 "
        "support reaches 88.2% KRR test accuracy after 2000 steps (natural: 73.4% at init), "
        "so more steps (resumable: distill.steps is not in the cell fingerprint, but the nn "
        "cells would have to be re-run) should widen the NN margin further.",
        "Natural rows: -1.4, -2.3, -2.2, +0.5 points (width 1024 vs 4096, 2 inits).",
        "A7 and A8 share their KIP cells (cells_dir): the same KIP_rho images feed both, and "
        "their cost is counted under A7.",
    ],
    "table-a8": [
        "Same cells and cuts as Table A7 (KIP 2000 steps x 2000 targets, FC1 width 1024, 500 "
        "steps, 2 inits), cross-entropy on the centred network.",
        "Every KIP (a) row is above its natural row: +2.0, +3.8, +7.4, +6.9 points at rho 0 "
        "/ 0.5 / 0.75 / 0.9 (paper: +4.6 ... +15.9). Before -> after this re-run (200 -> "
        "2000 KIP steps): KIP (a) 91.96 -> 92.22, 88.04 -> 88.82, 83.75 -> 87.35, 77.22 -> "
        "82.07; natural rows unchanged (the same cells).",
        "The KIP (a) gap to the paper (-3.7 ... -8.8) is larger than in A7: the cross-entropy "
        "net is trained on one-hot(argmax) of the KIP labels and at width 1024 for 500 "
        "steps; not separated further here.",
    ],
}

ITEMS = [  # (id, title, table file stem, filter)
    ("table-1", "Table 1 (MNIST): KRR rows at support 10 and 100", "tables"),
    ("table-a1", "Table A1 (MNIST): KRR on natural class-balanced subsets", "tables"),
    ("figure-2", "Figure 2 (FC1, MNIST): Label Solve vs support size and targets", "figures"),
    ("table-a7", "Table A7 (MNIST, MSE): FC1 network, Natural 1000 and KIP (a) 1000",
     "tables"),
    ("table-a8", "Table A8 (MNIST, cross-entropy): FC1 network, Natural 1000 and KIP (a) 1000",
     "tables"),
]


def duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600} h {s % 3600 // 60:02d} min" if s >= 3600 else \
        f"{s // 60} min {s % 60:02d} s"


def compute_time(src: Path, item: str) -> str:
    """Sum of the runs' own wall times (summary.json `seconds`, via `kipctl report
    by=command values=seconds`): what the artefact cost, however many make invocations it
    took. A corrupt-sweep's seconds already include its cells'."""
    path = src / f"{item}-cpu-seconds.csv"
    if not path.exists():
        return "not recorded"
    df = pd.read_csv(path)
    if "corrupt-sweep" in set(df.command):
        total = float(df[df.command == "corrupt-sweep"].seconds.sum())
    else:
        total = float((df.seconds * df.n_runs).sum())
    return f"{duration(total)} (sum over {int(df.n_runs.sum())} run dirs)"


def wall(src: Path, item: str, which: str = "") -> str:
    """A `make <item> SCALE=cpu` wall time (tools/timed): the last one, or with
    which=".first" the record kept of the first, computing, make."""
    path = src / f"{item}-cpu{which}.wall.json"
    if not path.exists():
        return "not recorded"
    w = json.loads(path.read_text())
    return f"{duration(w['seconds'])} (finished {w['finished']})"


def caption(src: Path, item: str) -> str:
    md = src / f"{item}-cpu.md"
    return md.read_text().splitlines()[0].strip() if md.exists() else ""


def fmt_delta(d) -> str:
    return "" if pd.isna(d) else f"{d:+.2f}"


def paper_rows(src: Path, item: str) -> pd.DataFrame:
    """A `kipctl report paper=` table restricted to the cells we ran."""
    df = pd.read_csv(src / f"{item}-cpu.csv")
    df = df[df["n"].fillna(0) > 0].copy()
    df["delta"] = [fmt_delta(d) for d in df["delta"]]
    df["paper"] = df["paper"].fillna("")
    return df


def table_1(src: Path) -> pd.DataFrame:
    df = paper_rows(src, "table-1")
    df = df[df.support.isin([10, 100])]
    return df[["method", "support", "n", "ours", "paper", "delta"]]


def table_a1(src: Path) -> pd.DataFrame:
    df = pd.read_csv(src / "table-a1-cpu.csv")
    pub = paper.published("table-a1") if "table-a1" in paper.table_ids() else pd.DataFrame()
    rows = []
    for r in df.to_dict("records"):
        match = pub[(pub.method == r["kernel"]) & (pub.support == r["support"])] \
            if not pub.empty else pub
        p = match.iloc[0] if len(match) else None
        rows.append({"kernel": r["kernel"], "support": int(r["support"]),
                     "ours": tables.pm(r["accuracy_mean"], r["accuracy_std"]),
                     "paper": "" if p is None else tables.pm(p["mean"] / 100, p["std"] / 100),
                     "delta": "" if p is None else
                     fmt_delta(100 * r["accuracy_mean"] - p["mean"]),
                     # solves that needed a larger ridge than asked (issue #12): should be 0
                     "solve fallbacks": r.get(tables.FALLBACKS, "not recorded")})
    return pd.DataFrame(rows)


def figure_2(src: Path) -> pd.DataFrame:
    df = pd.read_csv(src / "figure-2-cpu.csv")
    # one run per cell: the report's column is test_accuracy (test_accuracy_mean with repeats)
    df = df.rename(columns={"test_accuracy": "test_accuracy_mean"})
    pub = paper.published("table-1")
    pub = pub[pub.method == "KRR FC1, LS"].set_index("support")
    n_train = 60000  # MNIST; label-solve records n_targets=null as the training-set size
    df["n_targets"] = df["n_targets"].fillna(n_train)
    df["targets"] = [f"all ({int(n)})" if n >= n_train else int(n) for n in df["n_targets"]]
    rows = []
    for r in df.sort_values(["support", "n_targets"]).to_dict("records"):
        all_targets = r["n_targets"] >= n_train
        p = pub.loc[r["support"]] if all_targets and r["support"] in pub.index else None
        rows.append({"support": int(r["support"]), "targets": r["targets"],
                     "ours": f"{100 * r['test_accuracy_mean']:.2f}",
                     "paper (Table 1, LS)": "" if p is None else f"{p['mean']:.2f} ± {p['std']:.2f}",
                     "delta": "" if p is None else
                     fmt_delta(100 * r["test_accuracy_mean"] - p["mean"])})
    return pd.DataFrame(rows)


def corruption(src: Path, item: str) -> pd.DataFrame:
    df = paper_rows(src, item)
    df = df[df.method.isin(["Natural", "KIP (a)"]) & (df.support == 1000)]
    return df[["method", "support", "rho", "n", "ours", "paper", "delta"]]


BUILDERS = {"table-1": table_1, "table-a1": table_a1, "figure-2": figure_2,
            "table-a7": lambda s: corruption(s, "table-a7"),
            "table-a8": lambda s: corruption(s, "table-a8")}


def audit_section(src: Path) -> list[str]:
    """The privacy audit (issue #15): the table `kipctl report audit=strongest` wrote, then
    the findings written from results/audit/ (audit.csv, summary.json)."""
    table = src / "audit-cpu.md"
    findings = REPO / "results" / "audit" / "FINDINGS.md"
    lines = ["## Privacy audit (MNIST, FC1, support 100): what KIP and KIP_ρ images reveal", ""]
    if not table.exists() or not findings.exists():
        return lines + ["Not run yet: `make audit SCALE=cpu`.", ""]
    body = table.read_text().splitlines()
    lines += ["- Command: `make audit SCALE=cpu` (docs/audit.md; per-example scores, ROC and "
              "nearest-image figures: results/audit/)",
              f"- Wall time of the first `make` of it: {wall(src, 'audit', '.first')}",
              f"- Wall time of the last `make` of it (attack stage recomputed from cached "
              f"distillations and scores): {wall(src, 'audit')}",
              f"- Caption: {body[0].strip()}", "",
              "Strongest attack per cell, ρ and member group (`init`: the members the support "
              "was initialised from; `other`: the rest):", ""]
    lines += [ln for ln in body[1:] if ln.strip()] + ["", "![ROC](results/audit/roc.png)", ""]
    lines += [ln for ln in findings.read_text().splitlines() if not ln.startswith("<!--")]
    return lines + [""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=REPO / "results" / "repro")
    ap.add_argument("--out", type=Path, default=REPO / "REPRODUCTION.md")
    args = ap.parse_args()
    lines = [
        "# REPRODUCTION: what `SCALE=cpu` gave on this machine",
        "",
        "Generated by `make reproduction` (tools/make_reproduction.py) from the tables in "
        "`results/repro/`, which are copies of what `make <target> SCALE=cpu` wrote to "
        "`outputs/tables/` and `outputs/figures/`. Nothing below is typed by hand except the "
        "gap notes. Machine: 2 CPU cores, no GPU, shared with other work while these ran "
        "(wall times include that). Accuracies in %; Δ = ours − paper in points; the paper "
        "column is empty where PAPER.md gives no value.",
        "",
        "Every target resumes: re-running the same `make` command recomputes nothing that is "
        "done. `SCALE=paper` runs the paper's protocol (GPU node or `LAUNCHER=submitit_slurm`).",
        "",
    ]
    missing = []
    for item, title, _ in ITEMS:
        lines += [f"## {title}", ""]
        try:
            frame = BUILDERS[item](args.src)
        except FileNotFoundError as e:
            missing.append(item)
            lines += [f"Not run yet: {e.filename} is missing.", ""]
            continue
        lines += [f"- Command: `make {item} SCALE=cpu`",
                  f"- Compute time of its runs: {compute_time(args.src, item)}",
                  f"- Wall time of the first `make` of it: {wall(args.src, item, '.first')}",
                  f"- Wall time of the last `make` of it (re-run: every run dir says nothing "
                  f"to recompute, then the report): {wall(args.src, item)}",
                  f"- Caption: {caption(args.src, item)}", ""]
        if item == "figure-2":
            lines += [f"![Figure 2, SCALE=cpu](results/repro/{item}-cpu.png)", ""]
        lines += [frame.to_markdown(index=False), "", "Gaps:", ""]
        lines += [f"- {g}" for g in GAPS[item]] + [""]
    lines += audit_section(args.src)
    args.out.write_text("\n".join(lines))
    print(f"written: {args.out}" + (f" (missing: {', '.join(missing)})" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
