"""kipctl report: collect run directories into one grouped table (csv / markdown / LaTeX),
the paper's tables and figures, and image grids of support sets.

    kipctl report <dir> [<dir> ...] [by=dataset,kernel,support] [values=accuracy_mean]
                  [format=md,csv,tex] [out=<dir>] [name=report] [caption=...]
                  [paper=table-1|table-2|table-a7..a10] [sweep=rho] [audit=strongest|all]
                  [figure=figure-2|figure-a1|figure-a3|figure-a4|figure-a5]
    kipctl report images=<path/to/support.npz> [out=<dir>] [name=images] [caption=...]

Every directory with a run.json under the given paths is a run. Runs whose status is done
are grouped by `by` (default: the config columns that vary between runs) and their metrics
(`values`, default: every numeric metric of summary.json) averaged as mean, std and count;
runs that are running or failed are listed separately and never averaged in.

With paper=<table id> the report is laid out as that table of the paper: our mean ± std next
to the published value and the difference Δ (percentage points) per cell. Published values
come from kip_runner/paper/paper_tables.csv (only what PAPER.md gives; other cells stay
empty). Column n counts evaluations: a distill or label-solve run is one, an eval-nn run one
per network init (its metrics.csv rows); a cell with one evaluation shows no ± std. Tables
A7-A10 are read from corrupt-sweep results.csv files (nn evaluator rows with the table's
loss); Tables 1/2 from distill, label-solve and eval-nn run directories.

With sweep=rho the corrupt-sweep results.csv files under the paths are laid out as the
paper's corruption tables (rows [dataset x net x] data x support x evaluator x loss, columns
rho; Tables A5/A6 read one sweep per network this way).

With audit=strongest|all the kipctl audit tables (audit.csv) under the paths are laid out as
one row per cell x rho / epsilon x member group (x attack): AUC, TPR at 1% / 0.1% FPR and the
empirical epsilon on the held-out runs with cluster-bootstrap intervals, the certified epsilon
lower bound (one-run audit), the DP guarantee of dp_kip cells and the KRR test accuracy (%).

With figure=<id> the figure is also written as <out>/<name>.png and .pdf (PAPER.md §7):
  figure-2   label-solve runs: accuracy vs support size, one line per number of targets
  figure-a1  eval-krr runs of distilled support.npz files (source=<distill run>/support.npz;
             the training kernel is the distill run's kernel) and optionally source=natural
             eval-krr runs: accuracy averaged over the evaluation kernels, per training kernel
  figure-a3  corrupt-sweep results.csv files: accuracy vs rho, natural vs KIP, ± std over seeds
  figure-a4, figure-a5  (MNIST / CIFAR-10 in the paper; any dataset) distill runs with a
             support.npz: up to 10 learned images next to the natural images the run started
             from (same seed and rho corruption, rebuilt from the dataset), one row pair per
             setting (the lowest seed of repeated settings)
images=<support.npz> draws one support set as a grid (a column per class, up to 10 images).
A figure= without suitable runs, or an unreadable images= file, is a one-line error (exit 2).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from kip_runner import paper
from kip_runner.errors import KipctlError
from kip_runner.runs import tables
from kip_runner.runs.support import Support, load_support

log = logging.getLogger(__name__)
KEYS = ("by", "values", "format", "out", "name", "caption", "paper", "figure", "images",
        "sweep", "audit")
RESULT_COLUMNS = {"data", "support", "rho", "evaluator", "test_accuracy", "status"}
DEFAULT_BY = ("command", "dataset", "kernel", "kind", "net", "source", "data", "support",
              "rho", "loss", "learn_labels", "augment")


def _is_path(arg: str) -> bool:
    try:
        return Path(arg).exists()
    except OSError:  # e.g. a name longer than the filesystem allows
        return False


def parse_args(argv: list[str]) -> tuple[list[Path], dict]:
    paths, opts = [], {}
    for arg in argv:
        key = arg.split("=", 1)[0]
        # key=value when key is an option (values may be long captions: no path lookup);
        # a directory whose name has "=" in it (Hydra override dirs) is still a path
        if "=" in arg and (key in KEYS or not _is_path(arg)):
            value = arg.split("=", 1)[1]
            if key not in KEYS:
                raise KipctlError(f"unknown report option '{key}'; options: "
                                  f"{', '.join(k + '=' for k in KEYS)}")
            opts[key] = value
        else:
            paths.append(Path(arg))
    if not paths and "images" not in opts:
        raise KipctlError("give at least one run or sweep directory, e.g. "
                          "`kipctl report outputs/eval-krr` (or images=<support.npz>)")
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
    # one evaluation has no spread: no "± 0.00" that reads as a measured std
    merged["ours"] = [tables.pm(m, s if n > 1 else None)
                      for m, s, n in zip(merged["ours_mean"], merged["ours_std"],
                                         merged["n"].fillna(0))]
    merged["paper"] = [tables.pm(m / 100, s / 100) if pd.notna(m) else ""
                       for m, s in zip(merged["paper_mean"], merged["paper_std"])]
    merged["delta"] = (100 * merged["ours_mean"] - merged["paper_mean"]).round(2)
    merged["n"] = [int(v) if pd.notna(v) else "" for v in merged["n"]]  # a count; "" = no run
    extra = [tables.FALLBACKS] if tables.FALLBACKS in merged.columns else []
    return merged[keys + ["n", "ours", "paper", "delta"] + extra].sort_values(
        keys).reset_index(drop=True)


def per_init_accuracies(run_dir: Path) -> list[float]:
    """The test accuracy of each network init of an eval-nn run (its metrics.csv rows)."""
    path = run_dir / "metrics.csv"
    try:
        rows = pd.read_csv(path)
        rows = rows[rows["split"] == "test"] if "split" in rows.columns else rows
        accs = [float(a) for a in rows["test_accuracy"]]
    except (OSError, ValueError, KeyError, pd.errors.ParserError) as e:
        raise KipctlError(f"{path}: cannot read the per-init test accuracies of this eval-nn "
                          f"run ({e}); re-run it or remove the run dir") from None
    if not accs:
        raise KipctlError(f"{path} has no test rows; re-run the eval-nn run or remove it")
    return accs


def paper_comparison(paths: list[Path], table: str) -> pd.DataFrame:
    """Our results laid out as one of the paper's tables, with the published value and Δ."""
    if table in paper.CORRUPTION_TABLES:
        dataset, loss = paper.CORRUPTION_TABLES[table]
        res = find_results(paths)
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
            acc = r.get("accuracy")  # tables.with_accuracy: whatever the command calls it
            # an evaluation of a support.npz counts at the support's size, not its config's
            support = r.get("source_support")
            support = r["support"] if support is None or pd.isna(support) else support
            fallbacks = r.get(tables.FALLBACKS)
            if method is not None and acc is not None and pd.notna(acc):
                # an eval-nn run holds several network inits: one evaluation each
                accs = (per_init_accuracies(Path(r["run_dir"]))
                        if r.get("command") == "eval-nn" else [float(acc)])
                records += [{"method": method, "support": int(support), "accuracy": a,
                             tables.FALLBACKS: fallbacks if pd.notna(fallbacks) else 0}
                            for a in accs]
        df = pd.DataFrame(records, columns=["method", "support", "accuracy", tables.FALLBACKS])
        methods = set(paper.published(table).method)
        df["method"] = [paper.match_method(m, methods) for m in df["method"]]
        ours = df.groupby(["method", "support"]).agg(
            ours_mean=("accuracy", "mean"), ours_std=("accuracy", lambda a: float(a.std(ddof=0))),
            n=("accuracy", "count"), **{tables.FALLBACKS: (tables.FALLBACKS, "sum")}
        ).reset_index()
        return _with_paper(ours, table, ["method", "support"])
    ids = sorted({*paper.CORRUPTION_TABLES, *paper.SUPPORT_TABLES})
    raise KipctlError(f"paper= takes one of {', '.join(ids)}, got '{table}'")


def sweep_table(paths: list[Path], layout: str) -> pd.DataFrame:
    """sweep=rho: every corrupt-sweep results.csv under the paths in the sweep's own layout
    (rows [dataset x net x] data x support x evaluator x loss, columns rho, mean±std %), e.g.
    Tables A5/A6 from one sweep per network."""
    if layout != "rho":
        raise KipctlError(f"sweep= takes 'rho' (columns = corruption fraction), got '{layout}'")
    from kip_runner.pipelines.corrupt_sweep import results_table  # noqa: PLC0415

    table = results_table(find_results(paths))
    if table.empty:
        raise KipctlError(f"sweep=rho found no done corrupt-sweep results.csv rows under "
                          f"{', '.join(map(str, paths))}")
    return table


def audit_table(paths: list[Path], which: str) -> pd.DataFrame:
    """audit=strongest|all: the kipctl audit tables (audit.csv) under the paths, one row per
    cell x rho / epsilon x member group x attack (strongest: only each group's strongest
    attack), with AUC, TPR at the held-out 1% / 0.1% FPR thresholds and the empirical epsilon
    [cluster-bootstrap intervals], the certified epsilon lower bound, the DP guarantee and the
    cell's KRR test accuracy (%) side by side (docs/audit.md)."""
    if which not in ("strongest", "all"):
        raise KipctlError(f"audit= takes 'strongest' or 'all', got '{which}'")
    from kip_runner.pipelines.audit import read_audit_csv  # noqa: PLC0415

    files = [f for p in paths for f in ([p / "audit.csv"] if (p / "audit.csv").exists()
                                        else sorted(p.rglob("audit.csv")))]
    if not files:
        raise KipctlError(f"audit= found no audit.csv (kipctl audit) under "
                          f"{', '.join(map(str, paths))}")
    from kip_runner.pipelines.audit import CSV_COLUMNS  # noqa: PLC0415

    pairs = [(f, read_audit_csv(f).assign(run=f.parent.name)) for f in files]
    # a report written into the tree under the name "audit" is not an audit table
    pairs = [(f, fr) for f, fr in pairs
             if {"cell", "attack", "auc", "strongest"} <= set(fr.columns)]
    if not pairs:
        raise KipctlError(f"audit= found no kipctl audit table under {', '.join(map(str, paths))}")
    old = [f for f, fr in pairs if not set(CSV_COLUMNS) <= set(fr.columns)]
    if old:
        raise KipctlError(f"{old[0]} is an older kipctl audit's table (before held-out "
                          "evaluation and certified bounds, issue #26); re-run kipctl audit "
                          "in a new hydra.run.dir")
    frames = [fr for _, fr in pairs]
    df = pd.concat(frames, ignore_index=True)
    if which == "strongest":
        df = df[df.strongest.astype(str) == "True"]

    def ci(col: str, digits: int = 4) -> list[str]:
        return [f"{t:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]" if np.isfinite(t) else ""
                for t, lo, hi in zip(df[col], df[f"{col}_lo"], df[f"{col}_hi"])]

    def tpr(key: str) -> list[str]:  # held out: the FPR achieved may differ from the target
        return [f"{t:.4f} [{lo:.4f}, {hi:.4f}] at {f:.4f}" for t, lo, hi, f in
                zip(df[f"tpr_at_{key}_fpr"], df[f"tpr_at_{key}_fpr_lo"],
                    df[f"tpr_at_{key}_fpr_hi"], df[f"fpr_{key}"])]

    def num(col: str) -> list[str]:
        return [f"{v:.2f}" if np.isfinite(v) else "" for v in df[col]]
    table = pd.DataFrame({
        "cell": df.cell, "rho": df.rho,
        "eps (DP)": [f"{v:g}" if np.isfinite(v) else "" for v in df.dp_epsilon],
        "members": df.members, "attack": df.attack,
        "n_in/out": [f"{a}/{b}" for a, b in zip(df.n_members, df.n_nonmembers)],
        "AUC [95% CI]": ci("auc", 3),
        "TPR [95% CI] at FPR (1% target)": tpr("1pct"),
        "TPR [95% CI] at FPR (0.1% target)": tpr("0p1pct"),
        "eps empirical [95% CI]": ci("eps_empirical", 2),
        "eps lower bound (certified)": [f"{v:.2f} ({a})" if np.isfinite(v) else "" for v, a in
                                        zip(df.eps_lower_bound,
                                            df.eps_lower_bound_attack.fillna(""))],
        "eps guarantee": num("eps_guarantee"),
        "test acc %": [tables.pm(m, s, digits=1) for m, s in
                       zip(df.test_accuracy, df.test_accuracy_std)]})
    if len(files) > 1:
        table.insert(0, "run", df.run)
    return table.reset_index(drop=True)


def find_results(paths: list[Path]) -> pd.DataFrame:
    """Every corrupt-sweep results.csv under the paths (a path's own results.csv, else all
    below it), concatenated; files without the results columns are skipped."""
    files = [f for p in paths for f in ([p / "results.csv"] if (p / "results.csv").exists()
                                        else sorted(p.rglob("results.csv")))]
    frames = []
    for f in files:
        try:
            df = pd.read_csv(f)
        except (OSError, ValueError) as e:
            log.warning("skipping unreadable %s: %s", f, e)
            continue
        if RESULT_COLUMNS <= set(df.columns):
            frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["status"])


def read_support(path: Path) -> Support:
    """A support.npz with its own number of classes (from the labels' shape).

    Raises:
      KipctlError: a missing or corrupt file (one line, from runs.support.load_support).
    """
    n_classes = 10
    try:
        with np.load(path, allow_pickle=False) as f:
            labels = f["labels" if "labels" in f.files else "y"]
            n_classes = labels.shape[1] if labels.ndim == 2 else int(labels.max()) + 1
    except Exception:  # noqa: BLE001 - load_support names the problem
        pass
    return load_support(path, n_classes)


def _distill_config(cfg: dict):
    """The typed DistillConfig of a distill run.json config (unknown keys dropped)."""
    from kip_runner.config.schema import DatasetConfig, DistillConfig, DpOptions  # noqa: PLC0415

    def known(cls, d: dict) -> dict:
        names = {f.name for f in dataclasses.fields(cls)}
        return {k: v for k, v in (d or {}).items() if k in names}

    # The kernel plays no part in the init; eval_kernel None keeps the check trivial.
    kw = {k: v for k, v in known(DistillConfig, cfg).items()
          if k not in ("kernel", "dataset", "eval_kernel", "dp")}
    return DistillConfig(**kw, dataset=DatasetConfig(**known(DatasetConfig, cfg.get("dataset"))),
                         dp=DpOptions(**known(DpOptions, cfg.get("dp"))))


def natural_counterpart(cfg: dict, cache: Optional[dict] = None
                        ) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The natural images a distill run started from: the class-balanced subset drawn with
    the run's seed (init key) and, for rho > 0, corrupted with its corrupt key, exactly as
    pipelines.distill.run draws its init=image support (for init=noise: the subset it would
    have drawn). Returns (x [n,H,W,C] preprocessed, classes [n]) or None when the dataset
    cannot be loaded here (logged)."""
    import jax  # noqa: PLC0415

    from kip_runner.core.corrupt import corrupt  # noqa: PLC0415
    from kip_runner.pipelines.common import dataset_from_config  # noqa: PLC0415
    from kip_runner.pipelines.distill import init_support, run_keys  # noqa: PLC0415

    try:
        dcfg = _distill_config(cfg)
    except (KipctlError, TypeError, ValueError) as e:
        log.warning("no natural panel: the run's config does not load (%s)", e)
        return None
    data = dcfg.dataset
    if data.name != "synthetic" and not (data.data_dir and Path(data.data_dir).is_dir()):
        env = os.environ.get("KIP_DATA_DIR")
        if not (env and Path(env).is_dir()):  # never fall back to a tfds download here
            log.warning("no natural panel for %s: its data_dir %s is missing (set "
                        "KIP_DATA_DIR)", data.name, data.data_dir)
            return None
        data = dataclasses.replace(data, data_dir=env)
    cache = {} if cache is None else cache
    dtype = np.float64 if dcfg.x64 else np.float32
    try:
        # The run's own precision: under x64 the sampling jitter and noise are float64 draws.
        with jax.enable_x64(bool(dcfg.x64)):
            key = json.dumps([dataclasses.asdict(data), dcfg.x64], sort_keys=True)
            if key not in cache:
                cache[key] = dataset_from_config(data, bool(dcfg.x64))
            ds = cache[key]
            keys = run_keys(dcfg.seed)
            x0, y0 = init_support(keys.init, ds, dataclasses.replace(dcfg, init="image"), dtype)
            if dcfg.rho > 0:
                x0, _ = corrupt(keys.corrupt, x0, dcfg.rho, dcfg.corruption)
            x0 = np.asarray(x0)  # [n_s,H,W,C]
    except KipctlError as e:
        log.warning("no natural panel for %s: %s", data.name, e)
        return None
    return x0, np.asarray(y0).argmax(axis=1)


def distill_panels(done: pd.DataFrame, per_panel: int = 10) -> list:
    """Figure A4/A5 rows: for each distill setting (dataset, kernel, support, rho, labels,
    augment, init, corruption; the lowest seed when repeated) up to `per_panel` learned images
    (one per class) and the same positions of its natural counterpart."""
    from kip_runner.paper.figures import (ImagePanel, classes_of, display_images,  # noqa
                                          panel_positions, support_title)

    if done.empty or "command" not in done.columns:
        return []
    rows = [r for r in done[done.command == "distill"].to_dict("records")
            if (Path(r["run_dir"]) / "support.npz").is_file()]
    setting = ("dataset", "kernel", "support", "rho", "learn_labels", "augment", "init",
               "corruption")
    order = ("dataset", "rho", "support", "kernel", "learn_labels", "seed")
    rows.sort(key=lambda r: tuple(str(r.get(k)) if k != "seed" else (r.get(k) or 0)
                                  for k in order))
    panels, seen, cache = [], set(), {}
    for r in rows:
        key = tuple(str(r.get(k)) for k in setting)
        if key in seen:
            continue
        path = Path(r["run_dir"]) / "support.npz"
        try:
            sup = read_support(path)
        except KipctlError as e:
            log.warning("skipping %s", e)
            continue
        seen.add(key)
        cfg = (json.loads((path.parent / "run.json").read_text()).get("config") or {})
        meta = {"dataset": r.get("dataset"), "rho": r.get("rho"), "seed": r.get("seed"),
                "kernel": r.get("kernel"), "learn_labels": r.get("learn_labels"), **sup.meta}
        pos = panel_positions(sup.labels, per_panel)  # [<=10]
        classes = classes_of(sup.labels)  # [n]
        n = len(sup.images)
        panels.append(ImagePanel(support_title(meta, n), display_images(sup.images[pos], meta),
                                 tuple(int(c) for c in classes[pos])))
        natural = natural_counterpart(cfg, cache)
        if natural is not None and natural[0].shape == sup.images.shape:
            x0, y0 = natural
            panels.append(ImagePanel(support_title(meta, n, natural=True),
                                     display_images(x0[pos], meta),
                                     tuple(int(c) for c in y0[pos])))
    return panels


def render_support(path: Path, stem: Path, caption: str) -> list[Path]:
    """`images=`: the class grid of one support.npz (png + pdf).

    Raises:
      KipctlError: missing or corrupt file.
    """
    from kip_runner.paper.figures import figure_support  # noqa: PLC0415 (matplotlib: lazy)

    sup = read_support(path)
    if len(sup.images) == 0:
        raise KipctlError(f"{path} holds no images")
    return figure_support(sup.images, sup.labels, sup.meta, stem, caption)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths, opts = parse_args(argv)
        if "images" in opts:
            npz = Path(opts["images"])
            out = Path(opts.get("out", npz.parent / "report"))
            written = render_support(npz, out / opts.get("name", "images"),
                                     opts.get("caption", ""))
            print("written: " + ", ".join(map(str, written)))
            if not paths:
                return 0
        by = opts["by"].split(",") if "by" in opts else None
        values = opts["values"].split(",") if "values" in opts else None
        grouped, other = build_report(paths, by, values)
        if "paper" in opts:
            grouped = paper_comparison(paths, opts["paper"])
        elif "sweep" in opts:
            grouped = sweep_table(paths, opts["sweep"])
        elif "audit" in opts:
            grouped = audit_table(paths, opts["audit"])
    except (KipctlError, KeyError) as e:
        print(f"kipctl: error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    out = Path(opts.get("out", paths[0] / "report"))
    name = opts.get("name", "report")
    caption = opts.get("caption") or f"kipctl report of {', '.join(map(str, paths))}"
    if "figure" in opts:
        from kip_runner.paper import figures  # noqa: PLC0415 (matplotlib: lazy)

        figure = opts["figure"]
        done, _ = tables.collect_runs(paths)
        try:
            if figure not in figures.FIGURES:
                raise ValueError(f"figure= takes one of {', '.join(figures.FIGURES)}, "
                                 f"got '{figure}'")
            results = find_results(paths) if figure == "figure-a3" else None
            panels = distill_panels(done) if figure in figures.IMAGE_FIGURES else None
            written = figures.make_figure(figure, done, out / name, caption, results=results,
                                          panels=panels)
        except (ValueError, KipctlError) as e:
            print(f"kipctl: error: {e}", file=sys.stderr)
            return 2
        print("written: " + ", ".join(map(str, written)))
        if "by" not in opts and "values" not in opts:  # the plotted numbers, when they exist
            plotted = figures.plotted_frame(figure, done, results)
            grouped = grouped if plotted is None else plotted
    if "paper" in opts:
        caption += (f"; ours (mean±std, %) vs published {opts['paper']} (PAPER.md), "
                    "delta = ours - paper in points")
    outputs: list[Path] = list(written) if "figure" in opts else []
    if not grouped.empty:
        written = tables.write_table(grouped, out / name, opts["format"], caption)
        outputs += written
        print(grouped.to_markdown(index=False))
        print("\nwritten: " + ", ".join(map(str, written)))
    if not other.empty:
        cols = [c for c in ("run_dir", "command", "status", "reason") if c in other.columns]
        listing = other[cols]
        tables.write_table(listing, out / f"{name}-not_done", ["csv", "md"],
                           "runs that are not done (not averaged in)")
        print(f"\n{len(listing)} run(s) not done (not averaged in):")
        print(listing.to_markdown(index=False))
    print(closing_line(grouped, other, outputs, out / name))
    return 0


def closing_line(grouped: pd.DataFrame, other: pd.DataFrame, outputs: list, stem: Path) -> str:
    """The report's last line: what the table holds and where it went, e.g.
    `report: 8 rows x 7 columns (2 runs not done, left out) -> out/table.md, .csv, .tex`."""
    what = f"{len(grouped)} rows x {len(grouped.columns)} columns" if not grouped.empty else \
        "no finished runs to tabulate"
    if not other.empty:
        what += f" ({len(other)} run(s) not done, left out)"
    names = [Path(p) for p in outputs]
    same = [p for p in names if p.with_suffix("") == stem]
    where = (f"{stem}{same[0].suffix}" + "".join(f", {p.suffix}" for p in same[1:])) if same \
        else ""
    rest = [str(p) for p in names if p.with_suffix("") != stem]
    where = ", ".join([w for w in [where] + rest if w])
    return f"report: {what}" + (f" -> {where}" if where else "")
