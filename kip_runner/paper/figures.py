"""Paper figures from collected runs (matplotlib, headless Agg backend; PAPER.md §7).

Each figure has a pure data step that returns the plotted numbers (`a1_frame`, `a3_frame`,
`panel_positions` / `display_images`), a `draw_*` step that returns the matplotlib Figure (so
tests can read back what was drawn) and a `figure_*` wrapper that writes <stem>.png and
<stem>.pdf atomically. Inputs are frames and arrays the caller (kipctl report) collected:

  figure-2   label-solve run rows (collect_runs): accuracy vs support size per n_targets
  figure-a1  eval-krr run rows: KIP support learned with kernel K (source_kernel), accuracy
             averaged over the evaluation kernels (kernel + kind), natural baseline lines
  figure-a3  corrupt-sweep results.csv rows: accuracy vs corruption fraction rho
  figure-a4/a5  image panels (ImagePanel): learned vs natural samples, clean and corrupted
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import numpy as np
import pandas as pd

FIGURES = ("figure-2", "figure-a1", "figure-a3", "figure-a4", "figure-a5")
IMAGE_FIGURES = ("figure-a4", "figure-a5")  # MNIST / CIFAR-10 in the paper; any dataset here
DATA_LABEL = {"natural": "Natural", "kip": "KIP", "kip_l": "KIP (+labels)"}
DATA_STYLE = {"natural": ("--", "o"), "kip": ("-", "s"), "kip_l": (":", "^")}
KERNEL_ORDER = ("fc1", "fc2", "fc3", "conv1", "conv2", "conv3")


class ImagePanel(NamedTuple):
    """One row of an image figure: a title and up to ~10 images ready to show."""

    title: str
    images: np.ndarray  # [k, H, W, C] float in [0, 1]
    labels: tuple  # k per-image captions (class ids), may be empty


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


def _save_and_close(fig, stem: Path) -> list[Path]:
    try:
        return _save(fig, Path(stem))
    finally:
        _pyplot().close(fig)


def _caption(fig, caption: str, fontsize: int = 7) -> None:
    """The caption as a suptitle wrapped to the figure's width (long captions are the norm:
    they state dataset, scale cuts, seeds, test-set size and date), then tight_layout."""
    width_in = fig.get_size_inches()[0]
    chars = max(40, int(width_in * 72 / (0.55 * fontsize)))  # ~0.55 em per character
    text = "\n".join(textwrap.fill(part, chars) for part in caption.split("\n"))
    fig.suptitle(text, fontsize=fontsize)
    fig.tight_layout()  # makes room for the suptitle


def _std0(a) -> float:
    """Population std (ddof=0, as the report tables), 0 for a single value."""
    return float(np.std(np.asarray(a, float))) if len(a) else float("nan")


def figure_2(done: pd.DataFrame, stem: Path, caption: str) -> list[Path]:
    """Label Solve accuracy vs support size, one line per (dataset, kernel, n_targets)."""
    ls = done[done.command == "label-solve"].copy() if "command" in done else pd.DataFrame()
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
    _caption(fig, caption)
    return _save_and_close(fig, stem)


# ---------------------------------------------------------------- Figure A1: kernel transfer

def _kernel_sort_key(name: str) -> tuple:
    if name in KERNEL_ORDER:
        return (0, KERNEL_ORDER.index(name), name)
    if str(name).startswith("family"):
        return (2, 0, name)
    return (1, 0, name)


def a1_frame(done: pd.DataFrame) -> pd.DataFrame:
    """Figure A1's plotted numbers from done eval-krr run rows (collect_runs).

    Trained rows: eval-krr of a support.npz whose producing run is known (source_kernel, the
    kernel the support was learned with; source_support; source_rho) and is a distill run
    (source_command distill, or unknown for a bare npz). Baseline rows: eval-krr
    with source=natural of the same dataset, support size and rho (train_kernel "natural").
    The evaluation kernel of a run is its kernel name + kind (fc1 ntk, conv2 nngp, ...); runs
    sharing (series, train kernel, evaluation kernel), e.g. seeds, are averaged first, then
    mean and std (ddof=0) are taken across evaluation kernels.

    Returns:
      one row per (dataset, support, rho, train_kernel): mean, std (fractions), n_eval (the
      number of evaluation kernels averaged), eval_kernels (their names), n_runs.

    Raises:
      ValueError: no eval-krr run of a distilled support.npz is done.
    """
    cols = ["dataset", "support", "rho", "train_kernel", "mean", "std", "n_eval",
            "eval_kernels", "n_runs"]
    need = {"command", "source_kernel", "accuracy_mean"}
    krr = done[done.command == "eval-krr"] if need <= set(done.columns) else pd.DataFrame()
    if not krr.empty:  # supports learned by KIP (not label-solve ones; bare npz files kept)
        command = krr.get("source_command", pd.Series(index=krr.index, dtype=object))
        trained = krr[krr.source_kernel.notna() & (command.isna() | (command == "distill"))]
    else:
        trained = krr
    if trained.empty:
        raise ValueError("figure-a1 needs eval-krr runs of distilled support.npz files "
                         "(source=<distill run>/support.npz); none are done under these paths")

    def frame(rows: pd.DataFrame, support, rho, train) -> pd.DataFrame:
        return pd.DataFrame({
            "dataset": rows.get("dataset", pd.Series("", index=rows.index)).fillna(""),
            "support": pd.to_numeric(support, errors="coerce"),
            "rho": pd.to_numeric(rho, errors="coerce").fillna(0.0),
            "train_kernel": train, "eval_kernel": rows["kernel"].astype(str) + " " +
            rows.get("kind", pd.Series("ntk", index=rows.index)).fillna("ntk").astype(str),
            "accuracy": rows["accuracy_mean"].astype(float)})

    parts = [frame(trained, trained.source_support,
                   trained.get("source_rho", pd.Series(0.0, index=trained.index)),
                   trained.source_kernel.astype(str))]
    natural = krr[krr.get("source", pd.Series(index=krr.index, dtype=object)) == "natural"]
    if not natural.empty:
        nat = frame(natural, natural.support,
                    natural.get("rho", pd.Series(0.0, index=natural.index)), "natural")
        keys = set(map(tuple, parts[0][["dataset", "support", "rho"]].values.tolist()))
        nat = nat[[tuple(k) in keys for k in nat[["dataset", "support", "rho"]].values.tolist()]]
        parts.append(nat)
    rows = pd.concat(parts, ignore_index=True).dropna(subset=["support", "accuracy"])
    per_eval = rows.groupby(["dataset", "support", "rho", "train_kernel", "eval_kernel"]) \
        .accuracy.agg(["mean", "size"]).reset_index()
    out = per_eval.groupby(["dataset", "support", "rho", "train_kernel"]).agg(
        mean=("mean", "mean"), std=("mean", _std0), n_eval=("mean", "size"),
        eval_kernels=("eval_kernel", lambda k: ",".join(sorted(k))),
        n_runs=("size", "sum")).reset_index()
    out["support"] = out["support"].astype(int)
    order = out.train_kernel.map(lambda k: (1,) if k == "natural" else (0,) + _kernel_sort_key(k))
    out = out.assign(_o=order).sort_values(["dataset", "support", "rho", "_o"]).drop(
        columns="_o")
    return out[cols].reset_index(drop=True)


def _series_label(support: int, rho: float) -> str:
    return f"n={support}" + (f", ρ={rho:g}" if rho else "")


def draw_a1(frame: pd.DataFrame, caption: str):
    """One panel per dataset: x = training kernel, y = accuracy averaged over the evaluation
    kernels (± std across them), one errorbar series per (support, rho); the natural baseline
    of a series is a dashed line of its colour with a ±std band."""
    plt = _pyplot()
    datasets = sorted(frame.dataset.unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.0),
                             squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        d = frame[frame.dataset == dataset]
        trained = d[d.train_kernel != "natural"]
        kernels = sorted(trained.train_kernel.unique(), key=_kernel_sort_key)
        pos = {k: i for i, k in enumerate(kernels)}
        series = list(trained.groupby(["support", "rho"]))
        width = 0.5 / max(len(series), 1)
        for j, ((support, rho), s) in enumerate(series):
            offset = (j - (len(series) - 1) / 2) * width
            x = np.array([pos[k] for k in s.train_kernel]) + offset
            bars = ax.errorbar(x, 100 * s["mean"], yerr=100 * s["std"], marker="o",
                               linestyle="none", capsize=3, label=_series_label(support, rho))
            colour = bars[0].get_color()
            nat = d[(d.train_kernel == "natural") & (d.support == support) & (d.rho == rho)]
            for _, r in nat.iterrows():
                ax.axhline(100 * r["mean"], color=colour, linestyle="--", linewidth=1,
                           label=f"natural {_series_label(support, rho)}")
                ax.axhspan(100 * (r["mean"] - r["std"]), 100 * (r["mean"] + r["std"]),
                           color=colour, alpha=0.1)
        ax.set_xticks(range(len(kernels)))
        ax.set_xticklabels(kernels, rotation=30, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(kernels) - 0.4)
        ax.set_xlabel("kernel KIP was trained with")
        ax.set_ylabel("test accuracy (%), mean over eval kernels")
        n_eval = sorted(set(trained.n_eval))
        ax.set_title(f"{dataset}: KRR, averaged over {'/'.join(map(str, n_eval))} "
                     "evaluation kernels", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _caption(fig, caption)
    return fig


def figure_a1(done: pd.DataFrame, stem: Path, caption: str) -> list[Path]:
    """Figure A1: KIP trained on one kernel (or the family), evaluated over many kernels."""
    return _save_and_close(draw_a1(a1_frame(done), caption), stem)


# ------------------------------------------------------- Figure A3: accuracy vs corruption

def a3_frame(results: pd.DataFrame) -> pd.DataFrame:
    """Figure A3's plotted numbers from corrupt-sweep results.csv rows (status done only).

    Returns:
      one row per (dataset, evaluator, loss, data, support, rho): mean, std (ddof=0, over
      seeds) of test_accuracy (fractions) and n (seeds).

    Raises:
      ValueError: no done rows.
    """
    need = {"data", "support", "rho", "evaluator", "test_accuracy", "status"}
    if results is None or not need <= set(results.columns):
        raise ValueError("figure-a3 needs corrupt-sweep results.csv files (kipctl "
                         "corrupt-sweep); none were found under these paths")
    done = results[results.status == "done"].copy()
    if done.empty:
        raise ValueError("figure-a3: the corrupt-sweep results.csv files under these paths "
                         "have no done rows")
    done["dataset"] = done["dataset"].fillna("") if "dataset" in done else ""
    done["loss"] = done["loss"].fillna("mse") if "loss" in done else "mse"
    keys = ["dataset", "evaluator", "loss", "data", "support", "rho"]
    out = done.groupby(keys).test_accuracy.agg(mean="mean", std=_std0, n="size").reset_index()
    return out.sort_values(keys).reset_index(drop=True)


def draw_a3(frame: pd.DataFrame, caption: str):
    """One panel per (dataset, evaluator, loss); a line per (data type, support): colour =
    support size, line style = data type (natural dashed, KIP solid); std error bars."""
    plt = _pyplot()
    panels = list(frame.groupby(["dataset", "evaluator", "loss"], sort=True))
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.8 * nrows), squeeze=False)
    supports = sorted(frame.support.unique())
    colours = {s: f"C{i % 10}" for i, s in enumerate(supports)}
    for ax, ((dataset, evaluator, loss), p) in zip(axes.flat, panels):
        for (support, data), s in p.groupby(["support", "data"]):
            ls, marker = DATA_STYLE.get(data, ("-.", "x"))
            ax.errorbar(s.rho, 100 * s["mean"], yerr=100 * s["std"], color=colours[support],
                        linestyle=ls, marker=marker, capsize=3,
                        label=f"{DATA_LABEL.get(data, data)} n={support}")
        what = "KRR" if evaluator == "krr" else f"{str(evaluator).upper()} ({loss})"
        ax.set_title(f"{dataset}: {what}" if dataset else what, fontsize=9)
        ax.set_xlabel("corruption fraction ρ")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    _caption(fig, caption)
    return fig


def figure_a3(results: pd.DataFrame, stem: Path, caption: str) -> list[Path]:
    """Figure A3: test accuracy vs corruption fraction, natural vs KIP_rho images."""
    return _save_and_close(draw_a3(a3_frame(results), caption), stem)


# ------------------------------------------------------- Figures A4/A5: image grids

def display_images(images: np.ndarray, meta: dict) -> np.ndarray:
    """Images in the preprocessed space -> [0, 1] for display. [n,H,W,C] -> [n,H,W,C]

    standardize: x * std + mean per channel (the training statistics stored in the
    support.npz meta), clipped to [0, 1]; none: clipped; zca, or no statistics (e.g. the
    released KIP npz): each image min-max scaled (ZCA is not inverted).
    """
    x = np.asarray(images, np.float64)  # [n,H,W,C]
    prep = meta.get("preprocessing", "standardize")
    mean, std = meta.get("mean"), meta.get("std")
    if prep == "standardize" and mean is not None and std is not None:
        std = np.asarray(std, np.float64)  # [C]
        x = x * np.where(std > 0, std, 1.0) + np.asarray(mean, np.float64)  # [n,H,W,C]
    elif prep != "none":
        lo = x.min(axis=(1, 2, 3), keepdims=True)  # [n,1,1,1]
        hi = x.max(axis=(1, 2, 3), keepdims=True)  # [n,1,1,1]
        x = (x - lo) / np.where(hi > lo, hi - lo, 1.0)  # [n,H,W,C]
    return np.clip(x, 0.0, 1.0)


def classes_of(labels: np.ndarray) -> np.ndarray:
    """Class ids of support labels: argmax of [n, C] regression targets, or [n] ints."""
    labels = np.asarray(labels)
    return labels.argmax(axis=1) if labels.ndim == 2 else labels.astype(np.int64)  # [n]


def panel_positions(labels: np.ndarray, k: int = 10) -> np.ndarray:
    """Up to k support positions for one panel: the first image of each class (in class
    order), then, when there are fewer than k classes, further images in file order. [<=k]"""
    classes = classes_of(labels)  # [n]
    first = [int(np.flatnonzero(classes == c)[0]) for c in np.unique(classes)]
    picked = first[:k]
    rest = [i for i in range(len(classes)) if i not in set(picked)]
    picked += rest[:max(0, k - len(picked))]
    return np.asarray(sorted(picked, key=lambda i: (classes[i], i)), np.int64)  # [<=k]


def grid_positions(labels: np.ndarray, per_class: int = 10, max_classes: int = 10
                   ) -> list[list[int]]:
    """`kipctl report images=`: one column per class (first max_classes classes), up to
    per_class of its images per column, in file order."""
    classes = classes_of(labels)  # [n]
    return [list(np.flatnonzero(classes == c)[:per_class])
            for c in np.unique(classes)[:max_classes]]


def _show(ax, img: np.ndarray) -> None:
    if img.shape[-1] == 1:
        ax.imshow(img[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(img, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def draw_image_rows(panels: Sequence[ImagePanel], caption: str):
    """One row of images per panel (learned and natural rows alternate in figure-a4/a5)."""
    plt = _pyplot()
    ncols = max(len(p.images) for p in panels)
    fig = plt.figure(figsize=(max(1.0 * ncols, 6.0), 1.35 * len(panels) + 0.5))
    subfigs = fig.subfigures(len(panels), 1, squeeze=False)[:, 0]
    for sub, panel in zip(subfigs, panels):
        sub.suptitle(panel.title, fontsize=8)
        axes = sub.subplots(1, ncols, squeeze=False)[0]
        for j, ax in enumerate(axes):
            if j < len(panel.images):
                _show(ax, panel.images[j])
                if panel.labels:
                    ax.set_title(str(panel.labels[j]), fontsize=6, pad=2)
            else:
                ax.set_visible(False)
    fig.text(0.5, 0.0, caption, ha="center", va="bottom", fontsize=6, wrap=True)
    return fig


def figure_images(panels: Sequence[ImagePanel], stem: Path, caption: str,
                  figure: str = "figure-a4") -> list[Path]:
    """Figures A4/A5: learned vs natural samples, clean and corrupted (any dataset)."""
    if not panels:
        raise ValueError(f"{figure} needs distill run directories with a support.npz; none "
                         "are done under these paths")
    return _save_and_close(draw_image_rows(panels, caption), stem)


def draw_support_grid(images: np.ndarray, labels: np.ndarray, title: str, caption: str):
    """All-class grid of one support set: column = class, rows = its first images.
    images [n,H,W,C] in [0, 1], labels [n, C] or [n]."""
    plt = _pyplot()
    columns = grid_positions(labels)
    classes = classes_of(labels)  # [n]
    nrows = max(len(c) for c in columns)
    ncols = len(columns)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(0.9 * ncols, 4.0), 0.9 * nrows + 0.9),
                             squeeze=False)
    for j, col in enumerate(columns):
        for i in range(nrows):
            ax = axes[i, j]
            if i < len(col):
                _show(ax, images[col[i]])
                if i == 0:
                    ax.set_title(f"class {classes[col[0]]}", fontsize=7)
            else:
                ax.set_visible(False)
    _caption(fig, title + (f"\n{caption}" if caption else ""), fontsize=8)
    return fig


def support_title(meta: dict, n: int, natural: bool = False) -> str:
    """'mnist KIP_rho rho=0.9 n=100 (fc1, 1000 steps, labels learned)' from support meta."""
    rho = float(meta.get("rho") or 0.0)
    kind = "Natural" if natural else "KIP"
    parts = [str(meta.get("dataset", "")), kind + ("$_\\rho$" if rho else ""),
             f"ρ={rho:g}", f"n={n}"]
    extra = []
    if not natural:
        kernel = meta.get("kernel")
        kernel = kernel.get("name") if isinstance(kernel, dict) else kernel
        if kernel:
            extra.append(str(kernel))
        if meta.get("steps") is not None:
            extra.append(f"{meta['steps']} step{'' if meta['steps'] == 1 else 's'}")
        if meta.get("learn_labels"):
            extra.append("labels learned")
    else:
        extra.append("the distill init: class-balanced, same seed and corruption")
    if meta.get("seed") is not None:
        extra.append(f"seed {meta['seed']}")
    return " ".join(p for p in parts if p) + (f"  ({', '.join(extra)})" if extra else "")


def figure_support(images: np.ndarray, labels: np.ndarray, meta: dict, stem: Path,
                   caption: str = "") -> list[Path]:
    """`kipctl report images=<support.npz>`: the class grid of one support set."""
    shown = display_images(images, meta)  # [n,H,W,C]
    title = support_title(meta, len(images)) if meta else f"support set, n={len(images)}"
    return _save_and_close(draw_support_grid(shown, labels, title, caption), stem)


def plotted_frame(figure: str, done: pd.DataFrame,
                  results: Optional[pd.DataFrame] = None) -> Optional[pd.DataFrame]:
    """The numbers a figure plots, as the table to write next to it (None: no such table;
    the report then writes its usual grouped table)."""
    if figure == "figure-a1":
        return a1_frame(done)
    if figure == "figure-a3" and results is not None:
        return a3_frame(results)
    return None


def make_figure(figure: str, done: pd.DataFrame, stem: Path, caption: str,
                results: Optional[pd.DataFrame] = None,
                panels: Optional[Sequence[ImagePanel]] = None) -> list[Path]:
    """Writes one paper figure. `done`: collect_runs rows (figure-2, figure-a1); `results`:
    concatenated corrupt-sweep results.csv (figure-a3); `panels`: image rows (figure-a4/a5).

    Raises:
      ValueError: unknown figure id, or no suitable runs in the inputs.
    """
    if figure == "figure-2":
        return figure_2(done, stem, caption)
    if figure == "figure-a1":
        return figure_a1(done, stem, caption)
    if figure == "figure-a3":
        return figure_a3(results, stem, caption)
    if figure in IMAGE_FIGURES:
        return figure_images(list(panels or []), stem, caption, figure)
    raise ValueError(f"figure= takes one of {', '.join(FIGURES)}, got '{figure}'")

