"""Paper figures from collected run directories (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FIGURES = ("figure-2",)


def _pyplot():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    return plt


def _save(fig, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for ext in ("png", "pdf"):
        path = stem.with_suffix(f".{ext}")
        tmp = path.with_name(f".{path.name}.tmp.{ext}")
        fig.savefig(tmp, dpi=150)
        tmp.replace(path)
        written.append(path)
    return written


def figure_2(done: pd.DataFrame, stem: Path, caption: str) -> list[Path]:
    """Label Solve accuracy vs support size, one line per (dataset, kernel, n_targets)."""
    ls = done[done.command == "label-solve"].copy()
    if ls.empty:
        raise ValueError("figure-2 needs label-solve runs; none are done under these paths")
    if "n_targets" not in ls.columns:
        ls["n_targets"] = np.nan
    ls["targets"] = ls["n_targets"].apply(lambda n: "all" if pd.isna(n) else str(int(n)))
    plt = _pyplot()
    groups = list(ls.groupby(["dataset", "kernel"]))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 3.8), squeeze=False)
    for ax, ((dataset, kernel), g) in zip(axes[0], groups):
        for targets, t in g.groupby("targets"):
            s = t.groupby("support")["test_accuracy"].agg(["mean", "std"]).fillna(0.0)
            ax.errorbar(s.index, 100 * s["mean"], yerr=100 * s["std"], marker="o", capsize=3,
                        label=f"{targets} targets")
        ax.set_xscale("log")
        ax.set_xlabel("support size")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"LS, {kernel}, {dataset}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(caption, fontsize=7)
    fig.tight_layout()
    written = _save(fig, stem)
    plt.close(fig)
    return written


def make_figure(figure: str, done: pd.DataFrame, stem: Path, caption: str) -> list[Path]:
    if figure == "figure-2":
        return figure_2(done, stem, caption)
    raise ValueError(f"figure= takes one of {', '.join(FIGURES)}, got '{figure}'")
