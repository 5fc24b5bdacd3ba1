"""kipctl corrupt-sweep: how much accuracy survives rho-corruption, natural vs KIP_rho images
(PAPER.md §7, Tables A5-A10, Figure A3).

One command runs the grid data type x support x rho x evaluator by composing the existing
pipelines in-process. Every cell is a child run directory (the run-dir contract) under
<sweep>/cells/, named by its coordinates and the fingerprint of its resolved config:

    cells/kip-n100-rho0.9-<fp>/          a distill (KIP_rho) run -> support.npz
    cells/kip-n100-rho0.9-krr-<fp>/      eval-krr of that support.npz
    cells/natural-n100-rho0.9-nn-<fp>/   eval-nn of a corrupted natural subset

Re-running the same command skips the cells that are done, and an interrupted distill cell
resumes from its last checkpoint. Raising distill.steps resumes the distill cells from their
final checkpoints, and the evaluations of their support.npz re-run (an evaluation older than
its support.npz is stale). `cells_dir=<dir>` keeps the cells in a directory shared by
several sweeps: a cell whose resolved config another sweep already ran there (same name, same
fingerprint) is skipped, e.g. Tables A7 and A8 share their KIP cells and differ only in the
networks' loss. Outputs: results.csv (long form, one row per evaluation),
table.{md,csv,tex} (rows data x support x evaluator, columns rho, mean±std %), rho_curve.png/pdf
and summary.json metrics (n_cells, n_done, mean accuracy per data/support/rho/evaluator).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from kip_runner.config.schema import CorruptSweepConfig, set_fields
from kip_runner.errors import KipctlError
from kip_runner.paper import figures
from kip_runner.pipelines import distill
from kip_runner.pipelines.common import progress
from kip_runner.pipelines.estimate import announce
from kip_runner.pipelines.runner import RunFailed, config_dict, config_fingerprint, estimate, \
    execute, is_done
from kip_runner.runs import tables
from kip_runner.runs.metrics import write_csv
from kip_runner.runs.rundir import RunDir, read_json

log = logging.getLogger(__name__)
MODULES = {"distill": "kip_runner.pipelines.distill", "krr": "kip_runner.pipelines.eval_krr",
           "nn": "kip_runner.pipelines.eval_nn"}
COMMANDS = {"distill": "distill", "krr": "eval-krr", "nn": "eval-nn"}
# the sweep's run dir holds only what it aggregates from its cells, so it accepts whatever its
# distill cells accept on a resume: more steps (or other eval/checkpoint cadences)
FINGERPRINT_IGNORE = tuple(f"distill.{k}" for k in distill.FINGERPRINT_IGNORE)
RESULT_COLUMNS = ["data", "support", "rho", "evaluator", "net", "loss", "seed", "test_accuracy",
                  "test_mse", "status", "dataset", "run_dir", "solve", "reg_effective"]


class SweepFailed(KipctlError):
    """Some cells failed; the sweep's outputs were still written (metrics kept)."""

    def __init__(self, message: str, metrics: dict):
        super().__init__(message)
        self.metrics = metrics


@dataclass
class Cell:
    kind: str  # distill | krr | nn
    data: str  # natural | kip | kip_l
    support: int
    rho: float
    config: object  # the child's typed config
    path: Path
    needs: Optional["Cell"] = None  # the distill cell whose support.npz this one evaluates

    @property
    def label(self) -> str:
        return f"{self.data} n={self.support} rho={self.rho:g} {self.kind}"


def _cell_path(directory: Path, stem: str, kind: str, config) -> Path:
    fp = config_fingerprint(MODULES[kind], config_dict(config))[:8]
    return directory / f"{stem}-{fp}"


def cells_dir(cfg: CorruptSweepConfig, root: Path) -> Path:
    """Where the child runs live: <run dir>/cells, or cfg.cells_dir (shared between sweeps)."""
    return Path(cfg.cells_dir) if cfg.cells_dir else root / "cells"


def plan(cfg: CorruptSweepConfig, root: Path) -> list[Cell]:
    """Every child run of the grid, distill cells before the evaluations that need them."""
    root = cells_dir(cfg, root)
    cells: list[Cell] = []
    for support in cfg.supports:
        for rho in cfg.rhos:
            for data in cfg.data_types:
                stem = f"{data}-n{support}-rho{rho:g}"
                source = None
                if data != "natural":
                    dcfg = cfg.distill_config(support, rho, learn_labels=(data == "kip_l"))
                    source = Cell("distill", data, support, rho, dcfg,
                                  _cell_path(root, stem, "distill", dcfg))
                    cells.append(source)
                for evaluator in cfg.evaluators:
                    src = "natural" if source is None else str(source.path / "support.npz")
                    ecfg = (cfg.krr_config(src, support, rho) if evaluator == "krr"
                            else cfg.nn_config(src, support, rho))
                    cells.append(Cell(evaluator, data, support, rho, ecfg,
                                      _cell_path(root, f"{stem}-{evaluator}", evaluator, ecfg),
                                      needs=source))
    return cells


def stale(cell: Cell) -> bool:
    """True when an evaluation cell is older than the support.npz it evaluated: its distill
    cell was extended since (distill.steps is not in the distill fingerprint, so a longer run
    resumes in the same cell and rewrites support.npz while the evaluation's config, which
    names the file by its path, is unchanged). Make's rule: the target is older than its
    prerequisite."""
    if cell.needs is None:
        return False
    source, result = cell.needs.path / "support.npz", cell.path / "summary.json"
    return (source.exists() and result.exists()
            and source.stat().st_mtime_ns > result.stat().st_mtime_ns)


def run_cell(cell: Cell) -> str:
    """Runs (or skips) one child; returns done | skipped | failed: <reason>."""
    container = config_dict(cell.config)
    rundir = RunDir(cell.path, COMMANDS[cell.kind])
    if is_done(rundir, container):
        if not stale(cell):
            return "skipped"
        log.info("%s: %s is newer than this evaluation; re-running it", cell.label,
                 cell.needs.path / "support.npz")
        rundir.run_json.unlink()  # execute() would otherwise return the cached result
    if cell.needs is not None and not (cell.needs.path / "support.npz").exists():
        reason = f"its distill cell {cell.needs.path.name} did not finish"
        rundir.path.mkdir(parents=True, exist_ok=True)
        rundir.start(container, config_fingerprint(MODULES[cell.kind], container))
        rundir.fail(reason)
        return f"failed: {reason}"
    try:
        execute(MODULES[cell.kind], cell.config, container, rundir)
    except (KipctlError, RunFailed) as e:
        log.error("cell %s failed: %s", cell.label, e)
        return f"failed: {e}"
    return "done"


def _child_rows(cell: Cell) -> list[dict]:
    """Long-form rows of one evaluation cell, from its metrics.csv (one row per seed)."""
    base = {"data": cell.data, "support": cell.support, "rho": cell.rho,
            "evaluator": cell.kind, "dataset": cell.config.dataset.name,
            "net": cell.config.net.name if cell.kind == "nn" else "",
            "run_dir": str(cell.path)}
    status = RunDir(cell.path).status() or "missing"
    metrics_csv = cell.path / "metrics.csv"
    if status != "done" or not metrics_csv.exists():
        return [{**base, "loss": _loss(cell), "seed": np.nan, "test_accuracy": np.nan,
                 "test_mse": np.nan, "solve": "", "reg_effective": np.nan, "status": status}]
    df = pd.read_csv(metrics_csv)
    acc = df["test_accuracy"] if "test_accuracy" in df else df["accuracy"]
    mse = df["test_mse"] if "test_mse" in df else df["mse"]
    solve = df["solve"] if "solve" in df else [""] * len(df)  # nn cells: no KRR solve
    reg = df["reg_effective"] if "reg_effective" in df else [np.nan] * len(df)
    return [{**base, "loss": _loss(cell), "seed": int(s), "test_accuracy": float(a),
             "test_mse": float(m), "solve": sv, "reg_effective": r, "status": "done"}
            for s, a, m, sv, r in zip(df["seed"], acc, mse, solve, reg)]


def _n_test(results: pd.DataFrame) -> str:
    """The test-set size the evaluation cells used (from their summary.json)."""
    sizes = set()
    for run_dir in results.run_dir.unique():
        summary = Path(run_dir) / "summary.json"
        if summary.exists():
            n = read_json(summary).get("metrics", {}).get("n_test")
            if n:
                sizes.add(int(n))
    return "/".join(map(str, sorted(sizes))) or "?"


def _loss(cell: Cell) -> str:
    return getattr(cell.config, "loss", "mse")  # KRR regresses with the squared loss


def jittered(results: pd.DataFrame) -> pd.Series:
    """Rows whose KRR solve needed a larger ridge (krr.factorize's jitter policy)."""
    return results["solve"].fillna("").astype(str).str.contains("jitter")


def results_table(results: pd.DataFrame) -> pd.DataFrame:
    """Paper layout: rows [dataset x net x] data x support x evaluator x loss, columns rho,
    cells mean±std (%). dataset / net are row keys only when they vary (several sweeps read
    together, e.g. Tables A5/A6: one sweep per network)."""
    done = results[results.status == "done"].copy()
    if done.empty:
        return pd.DataFrame()
    if "solve" not in done:
        done["solve"] = ""
    keys = [k for k in ("dataset", "net") if k in done.columns
            and done[k].fillna("").astype(str).nunique() > 1]
    keys += ["data", "support", "evaluator", "loss"]
    for k in keys:
        done[k] = done[k].fillna("")
    done["jitter"] = jittered(done)
    stats = done.groupby(keys + ["rho"]).agg(
        mean=("test_accuracy", "mean"), std=("test_accuracy", lambda a: float(np.std(a))),
        jitter=("jitter", "any")).reset_index()
    stats["cell"] = [tables.pm(m, s, digits=1) + (tables.FALLBACK_MARK if j else "")
                     for m, s, j in zip(stats["mean"], stats["std"], stats["jitter"])]
    wide = stats.pivot_table(index=keys, columns="rho", values="cell",
                             aggfunc="first").reset_index()
    wide.columns = [c if isinstance(c, str) else f"rho={c:g}" for c in wide.columns]
    return wide


def estimate_cells(cells: list[Cell]) -> None:
    """dry_run: the estimate of every cell still to run, from each child's own dry run (an
    evaluation of a KIP set not yet learned is timed on a natural subset of its size, which
    costs the same), then estimate.DryRun with the total."""
    todo = [c for c in cells if not is_done(RunDir(c.path, COMMANDS[c.kind]),
                                            config_dict(c.config))]
    total = 0.0
    bar = progress(len(todo), "corrupt-sweep dry run", unit="cell")
    for cell in todo:
        config = cell.config
        if cell.needs is not None:
            config = (dataclasses.replace(config, source="natural", seeds=1)
                      if cell.kind == "krr" else dataclasses.replace(config, data="natural"))
        seconds, line = estimate(MODULES[cell.kind], dataclasses.replace(config, dry_run=True),
                                 COMMANDS[cell.kind])
        log.info("%s: %s", cell.label, line)
        total += seconds
        bar.update(1)
    bar.close()
    n_distill = sum(c.kind == "distill" for c in todo)
    announce("corrupt-sweep", len(todo), f"cells to run ({n_distill} distill, "
             f"{len(todo) - n_distill} evaluations; {len(cells) - len(todo)} already done)",
             total / max(len(todo), 1), dry_run=True)


def run(cfg: CorruptSweepConfig, rundir: RunDir) -> dict:
    cells = plan(cfg, rundir.path)
    if cfg.dry_run:
        estimate_cells(cells)
    evals = [c for c in cells if c.kind != "distill"]
    log.info("corrupt-sweep: %d cells (%d distill, %d evaluations) in %s", len(cells),
             len(cells) - len(evals), len(evals), cells_dir(cfg, rundir.path))
    outcome: dict[Path, str] = {}
    bar = progress(len(cells), "corrupt-sweep cells", unit="cell")
    started = time.time()
    for i, cell in enumerate(cells):
        bar.set_postfix_str(cell.label)
        t0 = time.time()
        outcome[cell.path] = run_cell(cell)
        log.info("[%d/%d] %s: %s (%.1f s)", i + 1, len(cells), cell.label,
                 outcome[cell.path].split(":")[0], time.time() - t0)
        bar.update(1)
    bar.close()

    results = pd.DataFrame([r for c in evals for r in _child_rows(c)], columns=RESULT_COLUMNS)
    write_csv(rundir / "results.csv", results)
    caption = (f"{cfg.dataset.name}: test accuracy (%) vs corruption fraction rho; "
               f"kernel {cfg.kernel.name}, KRR evaluator {cfg.krr_kernel().name}, "
               f"net {cfg.net.name}; distill {set_fields(cfg.distill)}; "
               f"nn {set_fields(cfg.nn)}; test split n={_n_test(results)}")
    table = results_table(results)
    n_jittered = int(jittered(results).sum())
    if not table.empty:
        if n_jittered:
            caption += "; " + tables.FALLBACK_NOTE
            log.warning("%d KRR evaluation(s) of this sweep raised the ridge (marked %s in "
                        "table.md)", n_jittered, tables.FALLBACK_MARK)
        tables.write_table(table, rundir / "table", caption=caption)
        # the paper's Figure A3 layout (kipctl report figure=figure-a3 draws the same)
        figures.figure_a3(results, rundir.path / "rho_curve", caption)

    failed = [c for c in cells if outcome[c.path].startswith("failed")]
    metrics: dict = {"n_cells": len(cells), "n_done": len(cells) - len(failed),
                     "n_failed": len(failed),
                     "solve_fallbacks": n_jittered,
                     "wall_seconds": round(time.time() - started, 1)}
    done = results[results.status == "done"]
    for (data, support, rho, evaluator, loss), g in done.groupby(
            ["data", "support", "rho", "evaluator", "loss"]):
        key = f"accuracy/{data}/n{support}/rho{rho:g}/{evaluator}"
        metrics[key + (f"/{loss}" if evaluator == "nn" else "")] = float(g.test_accuracy.mean())
    if failed:
        names = ", ".join(c.path.name for c in failed[:3]) + (" ..." if len(failed) > 3 else "")
        raise SweepFailed(f"{len(failed)} of {len(cells)} cells failed ({names}); see "
                          f"{rundir / 'results.csv'} and the cells' run.json", metrics)
    return metrics
