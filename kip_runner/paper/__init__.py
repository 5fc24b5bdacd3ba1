"""The paper's published numbers (paper_tables.csv, generated from ../shared/PAPER.md §7 by
tools/extract_paper_tables.py) and the mapping from kipctl runs to the paper's table rows."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

TABLES_CSV = Path(__file__).resolve().parent / "paper_tables.csv"
CORRUPTION_TABLES = {"table-a7": ("mnist", "mse"), "table-a8": ("mnist", "xent"),
                     "table-a9": ("cifar10", "mse"), "table-a10": ("cifar10", "xent")}
SUPPORT_TABLES = {"table-1": "mnist", "table-2": "cifar10"}
DATA_METHOD = {"natural": "Natural", "kip": "KIP (a)", "kip_l": "KIP (a+l)"}
KERNEL_LABEL = {"rbf": "RBF", "fc1": "FC1", "myrtle5": "Myrtle-5", "myrtle10": "Myrtle-10"}


def published(table: str) -> pd.DataFrame:
    """The published rows of one table: method, support, rho, loss, mean, std (percent)."""
    df = pd.read_csv(TABLES_CSV, comment="#")
    rows = df[df.table == table]
    if rows.empty:
        known = ", ".join(sorted(df.table.unique()))
        raise KeyError(f"PAPER.md gives no values for '{table}'; tables with values: {known}")
    return rows.reset_index(drop=True)


def table_ids() -> list[str]:
    return sorted(pd.read_csv(TABLES_CSV, comment="#").table.unique())


def method_of_run(row: dict) -> Optional[str]:
    """The Table 1/2 method label a run directory reproduces, or None.

    distill -> "KRR <K>, KIP" (+ " (a+l)" with augment and learn_labels); label-solve ->
    "KRR <K>[ NNGP], LS" (+ " + ZCA"); eval-nn on a distilled support -> "NN FC1, KIP (<K>
    kernel)" (K: the support's training kernel; see match_method).
    """
    command, kernel = row.get("command"), row.get("kernel")
    if command == "distill" and kernel in KERNEL_LABEL:
        a, l_ = bool(row.get("augment")), bool(row.get("learn_labels"))
        suffix = " (a+l)" if a and l_ else " (a)" if a else " (l)" if l_ else ""
        return f"KRR {KERNEL_LABEL[kernel]}, KIP{suffix}"
    if command == "label-solve" and kernel in KERNEL_LABEL:
        nngp = " NNGP" if row.get("kind") == "nngp" else ""
        zca = " + ZCA" if row.get("config.dataset.preprocessing") == "zca" else ""
        return f"KRR {KERNEL_LABEL[kernel]}{nngp}, LS{zca}"
    if command == "eval-nn" and row.get("net") == "fc1" and str(row.get("data", "")).endswith(
            ".npz"):
        source = KERNEL_LABEL.get(str(row.get("source_kernel")))
        return f"NN FC1, KIP ({source} kernel)" if source else "NN FC1, KIP"
    return None


def match_method(method: str, methods) -> str:
    """`method` as the published table names it: Table 1 says "NN FC1, KIP (FC1 kernel)",
    Table 2 "NN FC1, KIP"; a label with a kernel note falls back to the one without."""
    if method in methods or " (" not in method or not method.endswith(" kernel)"):
        return method
    bare = method[:method.rindex(" (")]
    return bare if bare in methods else method
