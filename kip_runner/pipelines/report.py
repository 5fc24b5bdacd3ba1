"""kipctl report: collect run directories into one grouped table (csv / markdown / LaTeX).

    kipctl report <dir> [<dir> ...] [by=dataset,kernel,support] [values=accuracy_mean]
                  [format=md,csv,tex] [out=<dir>] [name=report] [caption=...]
                  [paper=table-1|table-2|table-a7..a10] [figure=figure-2|figure-a3]

Every directory with a run.json under the given paths is a run. Runs whose status is done
are grouped by `by` (default: the config columns that vary between runs) and their metrics
(`values`, default: every numeric metric of summary.json) averaged as mean, std and count;
runs that are running or failed are listed separately and never averaged in.

With paper=<table id> the report is laid out as that table of the paper: our mean ± std next
to the published value and the difference Δ (percentage points) per cell. Published values
come from kip_runner/paper/paper_tables.csv (only what PAPER.md gives; other cells stay
empty). Tables A7-A10 are read from corrupt-sweep results.csv files (nn evaluator rows with
the table's loss); Tables 1/2 from distill, label-solve and eval-nn run directories.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import pandas as pd

from kip_runner import paper
from kip_runner.errors import KipctlError
from kip_runner.runs import tables

log = logging.getLogger(__name__)
KEYS = ("by", "values", "format", "out", "name", "caption", "paper", "figure")
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


def _with_paper(ours: pd.DataFrame, table: str, keys: list[str]) -> pd.DataFrame:
    """Outer-joins our per-cell mean/std (fractions) with the published values (percent)."""
    pub = paper.published(table)
    pub = pub[keys + ["mean", "std"]].rename(columns={"mean": "paper_mean", "std": "paper_std"})
    merged = pub.merge(ours, on=keys, how="outer")
    merged["ours"] = [tables.pm(m, s) for m, s in zip(merged["ours_mean"], merged["ours_std"])]
    merged["paper"] = [tables.pm(m / 100, s / 100) if pd.notna(m) else ""
                       for m, s in zip(merged["paper_mean"], merged["paper_std"])]
    merged["delta"] = (100 * merged["ours_mean"] - merged["paper_mean"]).round(2)
    return merged[keys + ["n", "ours", "paper", "delta"]].sort_values(keys).reset_index(
        drop=True)


def paper_comparison(paths: list[Path], table: str) -> pd.DataFrame:
    """Our results laid out as one of the paper's tables, with the published value and Δ."""
    if table in paper.CORRUPTION_TABLES:
        dataset, loss = paper.CORRUPTION_TABLES[table]
        files = [f for p in paths for f in ([p / "results.csv"] if (p / "results.csv").exists()
                                            else sorted(p.rglob("results.csv")))]
        frames = [pd.read_csv(f) for f in files]
        res = pd.concat(frames) if frames else pd.DataFrame(columns=["status"])
        res = res[(res.status == "done") & (res.get("evaluator") == "nn")
                  & (res.get("loss") == loss) & (res.get("dataset", dataset) == dataset)]
        res = res.assign(method=res["data"].map(paper.DATA_METHOD))
        ours = res.groupby(["method", "support", "rho"])["test_accuracy"].agg(
            ours_mean="mean", ours_std=lambda a: float(a.std(ddof=0)), n="count").reset_index()
        return _with_paper(ours, table, ["method", "support", "rho"])
    if table in paper.SUPPORT_TABLES:
        done, _ = tables.collect_runs(paths)
        dataset = paper.SUPPORT_TABLES[table]
        rows = [r for r in done.to_dict("records") if r.get("dataset") == dataset]
        records = []
        for r in rows:
            method = paper.method_of_run(r)
            acc = r.get("test_accuracy", r.get("test_accuracy_mean"))
            if method is not None and acc is not None and pd.notna(acc):
                records.append({"method": method, "support": int(r["support"]),
                                "accuracy": float(acc)})
        df = pd.DataFrame(records, columns=["method", "support", "accuracy"])
        ours = df.groupby(["method", "support"])["accuracy"].agg(
            ours_mean="mean", ours_std=lambda a: float(a.std(ddof=0)), n="count").reset_index()
        return _with_paper(ours, table, ["method", "support"])
    raise KipctlError(f"paper= takes one of {', '.join(paper.table_ids())}, got '{table}'")


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths, opts = parse_args(argv)
        by = opts["by"].split(",") if "by" in opts else None
        values = opts["values"].split(",") if "values" in opts else None
        grouped, other = build_report(paths, by, values)
        if "paper" in opts:
            grouped = paper_comparison(paths, opts["paper"])
    except (KipctlError, KeyError) as e:
        print(f"kipctl: error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    out = Path(opts.get("out", paths[0] / "report"))
    name = opts.get("name", "report")
    caption = opts.get("caption") or f"kipctl report of {', '.join(map(str, paths))}"
    if "figure" in opts:
        from kip_runner.paper.figures import make_figure  # noqa: PLC0415 (matplotlib: lazy)

        done, _ = tables.collect_runs(paths)
        try:
            written = make_figure(opts["figure"], done, out / name, caption)
        except ValueError as e:
            print(f"kipctl: error: {e}", file=sys.stderr)
            return 2
        print("written: " + ", ".join(map(str, written)))
    if "paper" in opts:
        caption += (f"; ours (mean±std, %) vs published {opts['paper']} (PAPER.md), "
                    "delta = ours - paper in points")
    if not grouped.empty:
        written = tables.write_table(grouped, out / name, opts["format"], caption)
        print(grouped.to_markdown(index=False))
        print("\nwritten: " + ", ".join(map(str, written)))
    if not other.empty:
        cols = [c for c in ("run_dir", "command", "status", "reason") if c in other.columns]
        listing = other[cols]
        tables.write_table(listing, out / f"{name}-not_done", ["csv", "md"],
                           "runs that are not done (not averaged in)")
        print(f"\n{len(listing)} run(s) not done (not averaged in):")
        print(listing.to_markdown(index=False))
    return 0
