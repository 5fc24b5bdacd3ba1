"""A/B of the stack move (issue #24): kipctl on the old pinned stack (neural-tangents 0.6.5,
jax 0.5.3, the last commit before the move) against this working tree on current jax, in one
run on the idle machine, cases alternating old/new.

    .venv/bin/python bench/ab_stack.py                    # -> results/ab_stack.{json,md}
    .venv/bin/python bench/ab_stack.py --old-dir /work/old --cases fc1-100-t6000

The old tree is a git worktree of --old-rev with a venv of its own (`.venv` inside it, the
old pyproject's pins); both are made when missing (a minute or two of pip). Distill cases are
bench/bench_distill.py's (`--one`: ms per step, median over the timed steps, each case in its
own process); the label-solve row times bench/bench_label_solve.py's Myrtle-5 tile (MNIST +
ZCA, float64, [10, 10] tiles) and its extrapolation to a 1000 x 100 block. ratio = old / new
(> 1: the new stack is faster). The load average is recorded around every measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OLD_REV = "3b110e9"  # the last commit on neural-tangents 0.6.5 / jax<0.6
CASES = ("fc1-10-t6000,fc1-100-t6000,fc1-1000-t2000,rbf-100-t6000,rbf-1000-t2000,"
         "fc1-rho0.9-aug-1000-t2000,conv1-100-t1000")


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def ensure_old(old: Path, rev: str) -> Path:
    """The old worktree's python, made (worktree + venv + install) when missing."""
    py = old / ".venv" / "bin" / "python"
    if not old.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), rev],
                       check=True)
    if not py.exists():
        subprocess.run(["python3", "-m", "venv", str(old / ".venv")], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-e", ".[dev]"], cwd=old,
                       check=True)
    return py


def run_json(cmd: list[str], cwd: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(cwd), OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def myrtle_tile(py: Path, tree: Path, tiles: int) -> dict:
    """bench_label_solve's Myrtle-5 timing, without touching the tree's results files."""
    code = ("import json, sys; sys.path.insert(0, 'bench'); import bench_label_solve as b; "
            f"print(json.dumps(b.bench_myrtle({tiles}, False)))")
    r = run_json([str(py), "-c", code], tree)
    return {"ms_per_tile": round(1e3 * sorted(r["tile_seconds"])[len(r["tile_seconds"]) // 2],
                                 1),
            "s_per_1k_x_100": r["seconds_per_1k_x_100_block"], "tile": r["tile"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old-dir", default=str(REPO.parent / "old"))
    p.add_argument("--old-rev", default=OLD_REV)
    p.add_argument("--cases", default=CASES)
    p.add_argument("--myrtle-tiles", type=int, default=3)
    p.add_argument("--out", default=str(REPO / "results" / "ab_stack"))
    args = p.parse_args()
    old = Path(args.old_dir)
    old_py = ensure_old(old, args.old_rev)
    new_py = Path(sys.executable)
    versions = {name: run_json([str(py), "-c", "import jax, json, platform; print(json.dumps("
                                "{'jax': jax.__version__, 'python': platform.python_version()}))"],
                               tree)
                for name, py, tree in (("old", old_py, old), ("new", new_py, REPO))}
    rows, start = [], load()
    for case in args.cases.split(","):
        row = {"case": case}
        for name, py, tree in (("old", old_py, old), ("new", new_py, REPO)):
            before = load()
            r = run_json([str(py), "bench/bench_distill.py", "--one", case], tree)
            row[f"{name}_ms"] = r["ms_per_step"]
            row[f"{name}_path"] = r["path"]
            row[f"{name}_load"] = f"{before} -> {load()}"
        row["ratio"] = round(row["old_ms"] / row["new_ms"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.myrtle_tiles:
        row = {"case": "label-solve myrtle5 tile (float64, ZCA)"}
        for name, py, tree in (("old", old_py, old), ("new", new_py, REPO)):
            before = load()
            r = myrtle_tile(py, tree, args.myrtle_tiles)
            row[f"{name}_ms"] = r["ms_per_tile"]
            row[f"{name}_path"] = f"{r['tile'][0]}x{r['tile'][1]} tile; " \
                                  f"{r['s_per_1k_x_100']} s per 1000x100 block"
            row[f"{name}_load"] = f"{before} -> {load()}"
        row["ratio"] = round(row["old_ms"] / row["new_ms"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    meta = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "old_rev": args.old_rev,
            "versions": versions, "load_start": start, "load_end": load(),
            "command": " ".join([Path(sys.executable).name] + sys.argv)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    md = [f"# Old stack vs new ({meta['date']})", "",
          f"`{meta['command']}`; old: {args.old_rev} on jax {versions['old']['jax']} + "
          f"neural-tangents 0.6.5, new: this tree on jax {versions['new']['jax']} (Python "
          f"{versions['new']['python']}); one run on the 2-core machine with nothing else "
          f"running, cases alternating old/new; load {meta['load_start']} -> "
          f"{meta['load_end']}. ms per step (median), ratio = old / new (> 1: new faster).", "",
          "| case | old ms | new ms | ratio | old path | new path | load old | load new |",
          "|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['case']} | {r['old_ms']} | {r['new_ms']} | {r['ratio']} | {r['old_path']} | "
           f"{r['new_path']} | {r['old_load']} | {r['new_load']} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
