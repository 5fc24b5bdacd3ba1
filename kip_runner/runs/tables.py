"""Collect run directories into pandas frames and write paper-style tables (csv/md/tex).

A run directory is any directory with a run.json (the run-dir contract). Its resolved config
is flattened into columns (command, dataset, kernel, net, support, rho, seed, ...) and its
summary.json metrics are added as columns; runs whose status is not "done" are kept apart.
An evaluation of a support.npz (eval-krr source=<npz>, eval-nn data=<npz>) also gets the
source_* columns describing the run that produced it (training kernel, support size, rho):
Figure A1 plots accuracy against the kernel the support was learned with.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from kip_runner.runs.rundir import atomic_write

# Config fields promoted to short column names (first match wins).
CONFIG_COLUMNS = {
    "dataset": ("dataset", "name"), "kernel": ("kernel", "name"), "kind": ("kernel", "kind"),
    "net": ("net", "name"), "eval_kernel": ("eval_kernel", "name"),
}
SCALARS = ("source", "data", "support", "rho", "seed", "seeds", "steps", "target_batch",
           "n_targets", "learn_labels", "augment", "loss", "lr", "init", "corruption")
FORMATS = ("md", "csv", "tex")
# Describe the support.npz an evaluation read (source_info); never averaged as metrics.
SOURCE_COLUMNS = ("source_command", "source_kernel", "source_support", "source_rho",
                  "source_learn_labels", "source_seed")


def _get(d: dict, path: Sequence[str]):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _flatten(prefix: str, d: dict, out: dict) -> None:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten(key + ".", v, out)
        elif not isinstance(v, (list, tuple)):
            out[key] = v


def _npz_rows(path: Path) -> Optional[int]:
    """The leading dimension of images.npy (or x.npy) in an npz, read from the header only."""
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        member = next((m for m in ("images.npy", "x.npy") if m in names), None)
        if member is None:
            return None
        with z.open(member) as fh:
            version = np.lib.format.read_magic(fh)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape = read(fh)[0]
    return int(shape[0]) if shape else None


def source_info(source: str, run_dir: Path) -> dict:
    """source_* columns for an evaluation of the support file `source`, {} if unknown.

    The producing run is the npz's parent directory: its run.json config gives the command,
    the training kernel name (e.g. fc1, conv3, family_fc_conv), support size, rho,
    learn_labels and seed. Without that run.json, the npz's own meta (written by distill /
    label-solve) and the images' leading dimension are used. A relative path is tried as given
    (relative to the working directory, as the CLI read it), then relative to the run dir.
    """
    path = Path(source)
    if not path.is_file() and not path.is_absolute():
        path = run_dir / source
    if not path.is_file():
        return {}
    info: dict = {}
    parent = path.parent / "run.json"
    try:
        if parent.is_file():
            run = json.loads(parent.read_text())
            cfg = run.get("config") or {}
            info = {"source_command": run.get("command"),
                    "source_kernel": _get(cfg, ("kernel", "name")),
                    "source_support": cfg.get("support"), "source_rho": cfg.get("rho"),
                    "source_learn_labels": cfg.get("learn_labels"),
                    "source_seed": cfg.get("seed")}
        if info.get("source_kernel") is None or info.get("source_support") is None:
            with np.load(path, allow_pickle=False) as f:
                meta = json.loads(str(f["meta"])) if "meta" in f.files else {}
            kernel = meta.get("kernel")
            meta_info = {"source_command": meta.get("command"),
                         "source_kernel": kernel.get("name") if isinstance(kernel, dict)
                         else kernel, "source_support": _npz_rows(path),
                         "source_rho": meta.get("rho"),
                         "source_learn_labels": meta.get("learn_labels"),
                         "source_seed": meta.get("seed")}
            info = {k: info.get(k) if info.get(k) is not None else v
                    for k, v in meta_info.items()}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return {}
    return {k: v for k, v in info.items() if v is not None}


def run_row(run_json: Path) -> dict:
    """One row describing a run directory (config columns + metrics + status)."""
    folder = run_json.parent
    try:
        info = json.loads(run_json.read_text())
    except (OSError, ValueError) as e:
        return {"run_dir": str(folder), "status": "unreadable", "reason": str(e)}
    cfg = info.get("config") or {}
    row = {"run_dir": str(folder), "command": info.get("command"),
           "status": info.get("status"), "reason": info.get("reason")}
    for col, path in CONFIG_COLUMNS.items():
        value = _get(cfg, path)
        if value is not None:
            row[col] = value
    for key in SCALARS:
        if key in cfg and not isinstance(cfg[key], (dict, list)):
            row[key] = cfg[key]
    for key in ("source", "data"):  # eval-krr source= / eval-nn data= a support file
        value = cfg.get(key)
        if isinstance(value, str) and value.endswith(".npz"):
            row.update(source_info(value, folder))
    cfg_flat: dict = {}
    _flatten("config.", cfg, cfg_flat)
    row.update(cfg_flat)
    summary = folder / "summary.json"
    if summary.exists():
        try:
            s = json.loads(summary.read_text())
            for k, v in (s.get("metrics") or {}).items():
                if isinstance(v, (int, float, str, bool)) or v is None:
                    row[k] = v
            row["seconds"] = s.get("seconds")
        except (OSError, ValueError):
            pass
    return row


def collect_runs(roots: Iterable[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(done, not_done) frames of every run directory under the given roots."""
    rows = []
    for root in roots:
        root = Path(root)
        found = [root / "run.json"] if (root / "run.json").exists() else []
        found += sorted(p for p in root.rglob("run.json") if p != root / "run.json")
        rows += [run_row(p) for p in found]
    df = pd.DataFrame(rows)
    if df.empty:
        return df, df
    df = with_accuracy(df)
    done = df["status"] == "done"
    return df[done].reset_index(drop=True), df[~done].reset_index(drop=True)


ACCURACY_METRICS = ("test_accuracy", "test_accuracy_mean", "accuracy_mean")


def with_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """Adds `accuracy`: the run's test accuracy whatever its command calls it (distill and
    label-solve: test_accuracy, eval-nn: test_accuracy_mean, eval-krr: accuracy_mean), so one
    report can compare runs of different commands (values=accuracy)."""
    cols = [c for c in ACCURACY_METRICS if c in df.columns]
    if not cols or "accuracy" in df.columns:
        return df
    acc = df[cols[0]].astype(float)
    for c in cols[1:]:
        acc = acc.fillna(df[c].astype(float))
    return df.assign(accuracy=acc)


def metric_columns(df: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    skip = set(exclude) | {"seconds"}
    return [c for c in df.columns if not c.startswith("config.") and c not in skip
            and c != "accuracy" and c not in CONFIG_COLUMNS and c not in SCALARS
            and c not in SOURCE_COLUMNS and c != FALLBACKS
            and pd.api.types.is_numeric_dtype(df[c])
            and c not in ("run_dir", "command", "status", "reason")]


def aggregate(df: pd.DataFrame, by: Sequence[str], values: Sequence[str]) -> pd.DataFrame:
    """Per group of `by`: n_runs, the mean of each of `values`, and `<value>_std` across runs
    (the std columns only when some group has more than one run)."""
    by = [b for b in by if b in df.columns]
    values = [v for v in values if v in df.columns]
    if not by:
        df = df.assign(group="all")
        by = ["group"]
    values = [v for v in values if v != FALLBACKS]
    g = df.groupby(by, dropna=False, sort=True)
    out = g.size().rename("n_runs").to_frame()
    means, stds = g[values].mean(), g[values].std(ddof=0)
    for v in values:
        out[v] = means[v]
        if (out["n_runs"] > 1).any():
            out[f"{v}_std"] = stds[v]
    if FALLBACKS in df.columns:  # summed, never averaged: write_table marks these cells
        out[FALLBACKS] = g[FALLBACKS].sum(min_count=1)
    return out.reset_index()


# Runs count the KRR solves whose ridge had to be raised (krr.factorize's jitter policy) in
# summary.json as solve_fallbacks; every table cell built from such a run carries this mark.
FALLBACKS = "solve_fallbacks"
FALLBACK_MARK = "†"
FALLBACK_NOTE = ("† includes KRR solves where K_ss + ridge did not factor at the requested "
                 "ridge and a larger ridge was used (solve=jitter; runs' metrics.csv columns "
                 "solve, reg_effective): not the requested estimator")


def mark_fallbacks(df: pd.DataFrame) -> tuple[pd.DataFrame, Optional[str]]:
    """(display copy of df with FALLBACK_MARK on the values of rows whose solve_fallbacks > 0,
    footnote) or (df, None) when no row has one. The mark goes on the result columns: `ours`
    in paper layouts, else every float column but stds, deltas and the count itself."""
    if FALLBACKS not in df.columns:
        return df, None
    hit = pd.to_numeric(df[FALLBACKS], errors="coerce").fillna(0) > 0
    if not hit.any():
        return df, None
    cols = ["ours"] if "ours" in df.columns else [
        c for c in df.columns if pd.api.types.is_float_dtype(df[c]) and c != FALLBACKS
        and not c.endswith("_std") and c != "delta"]
    out = df.copy()
    for c in cols:
        out[c] = [f"{v}{FALLBACK_MARK}" if h else v for v, h in zip(out[c], hit)]
        out[c] = out[c].astype(object)
    return out, FALLBACK_NOTE


def pm(mean: float, std: Optional[float], percent: bool = True, digits: int = 2) -> str:
    """'92.80±0.40' (fractions shown as percentages); '' for a missing value."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    scale = 100.0 if percent else 1.0
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f}±{std * scale:.{digits}f}"


def write_table(df: pd.DataFrame, stem: Path, formats: Sequence[str] = FORMATS,
                caption: str = "") -> list[Path]:
    """Writes df as <stem>.md / .csv / .tex (atomically). Returns the paths written."""
    stem = Path(stem)
    written = []
    shown, note = mark_fallbacks(df)  # md/tex: marked cells and a footnote; csv: the numbers
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        if fmt == "csv":
            atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))
        elif fmt == "md":
            text = ((f"{caption}\n\n" if caption else "") + shown.to_markdown(index=False)
                    + "\n" + (f"\n{note}\n" if note else ""))
            atomic_write(path, lambda tmp, t=text: Path(tmp).write_text(t))
        elif fmt == "tex":
            body = shown.to_latex(index=False, escape=True, caption=caption or None,
                                  label=f"tab:{stem.name}")
            if note:
                foot = note.replace(FALLBACK_MARK, "$^\\dagger$").replace("_", "\\_")
                body = body.replace("\\end{table}", f"\\par{{\\footnotesize {foot}}}\n"
                                    "\\end{table}")
            atomic_write(path, lambda tmp, t=body: Path(tmp).write_text(t))
        else:
            raise ValueError(f"unknown table format '{fmt}'; choose from {FORMATS}")
        written.append(path)
    return written
