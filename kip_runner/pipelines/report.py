"""kipctl report: collect run directories into one grouped table (csv / markdown / LaTeX).

    kipctl report <dir> [<dir> ...] [by=dataset,kernel,support] [values=accuracy_mean]
                  [format=md,csv,tex] [out=<dir>]

Every directory with a run.json under the given paths is a run. Runs whose status is done
are grouped by `by` (default: the config columns that vary between runs) and their metrics
(`values`, default: every numeric metric of summary.json) averaged as mean, std and count;
runs that are running or failed are listed separately and never averaged in.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import pandas as pd

from kip_runner.errors import KipctlError
from kip_runner.runs import tables

log = logging.getLogger(__name__)
KEYS = ("by", "values", "format", "out")
DEFAULT_BY = ("command", "dataset", "kernel", "kind", "net", "source", "data", "support",
              "rho", "loss", "learn_labels", "augment")


def parse_args(argv: list[str]) -> tuple[list[Path], dict]:
    paths, opts = [], {}
    for arg in argv:
        if "=" in arg and not Path(arg).exists():
            key, value = arg.split("=", 1)
            if key not in KEYS:
                raise KipctlError(f"unknown report option '{key}'; options: "
                                  f"{', '.join(k + '=' for k in KEYS)}")
            opts[key] = value
        else:
            paths.append(Path(arg))
    if not paths:
        raise KipctlError("give at least one run or sweep directory, e.g. "
                          "`kipctl report outputs/eval-krr`")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise KipctlError(f"no such directory: {', '.join(missing)}")
    fmts = opts.get("format", "md,csv,tex").split(",")
    bad = [f for f in fmts if f not in tables.FORMATS]
    if bad:
        raise KipctlError(f"unknown format {bad}; choose from {', '.join(tables.FORMATS)}")
    opts["format"] = fmts
    return paths, opts


def varying(df: pd.DataFrame, candidates) -> list[str]:
    return [c for c in candidates if c in df.columns and df[c].astype(str).nunique() > 1]


def build_report(paths: list[Path], by: Optional[list[str]] = None,
                 values: Optional[list[str]] = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(grouped table of done runs, table of runs that are not done)."""
    done, other = tables.collect_runs(paths)
    if done.empty and other.empty:
        raise KipctlError(f"no run directories (run.json) under {', '.join(map(str, paths))}")
    if done.empty:
        return pd.DataFrame(), other
    if by is None:
        by = varying(done, DEFAULT_BY) or [c for c in ("command",) if c in done.columns]
    unknown = [b for b in by if b not in done.columns]
    if unknown:
        raise KipctlError(f"by= names unknown column(s) {unknown}; available: "
                          f"{', '.join(c for c in done.columns if not c.startswith('config.'))}")
    if values is None:
        values = tables.metric_columns(done, exclude=by)
    unknown = [v for v in values if v not in done.columns]
    if unknown:
        raise KipctlError(f"values= names unknown metric(s) {unknown}; available: "
                          f"{', '.join(tables.metric_columns(done))}")
    return tables.aggregate(done, by, values), other


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths, opts = parse_args(argv)
        by = opts["by"].split(",") if "by" in opts else None
        values = opts["values"].split(",") if "values" in opts else None
        grouped, other = build_report(paths, by, values)
    except KipctlError as e:
        print(f"kipctl: error: {e}", file=sys.stderr)
        return 2
    out = Path(opts.get("out", paths[0] / "report"))
    caption = f"kipctl report of {', '.join(map(str, paths))}"
    if not grouped.empty:
        written = tables.write_table(grouped, out / "report", opts["format"], caption)
        print(grouped.to_markdown(index=False))
        print("\nwritten: " + ", ".join(map(str, written)))
    if not other.empty:
        cols = [c for c in ("run_dir", "command", "status", "reason") if c in other.columns]
        listing = other[cols]
        tables.write_table(listing, out / "not_done", ["csv", "md"],
                           "runs that are not done (not averaged in)")
        print(f"\n{len(listing)} run(s) not done (not averaged in):")
        print(listing.to_markdown(index=False))
    return 0
