"""support.npz: the distilled / label-solved dataset that eval-krr and eval-nn consume.

Schema (a superset of the released KIP-ConvNet npz, whose keys are `images`, `labels`):
  images [n, H, W, C] float32 in the preprocessed space of the source dataset
  labels [n, C] float32 regression targets (learned, solved, or centred one-hot)
  mask   [n, H, W, C] bool, optional: True on rho-corrupted (frozen) coordinates
  meta   JSON string, optional: command, dataset, kernel, rho, preprocessing stats, ...
Files with `x`/`y` keys, or integer class labels [n], are accepted on read.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from kip_runner.data.preprocess import centered_one_hot
from kip_runner.errors import KipctlError, read_error
from kip_runner.runs.rundir import atomic_write


class Support(NamedTuple):
    images: np.ndarray  # [n, H, W, C] float32
    labels: np.ndarray  # [n, C] float32
    mask: Optional[np.ndarray]  # [n, H, W, C] bool or None
    meta: dict
    stored_dtype: Optional[np.dtype] = None  # the images' dtype in the file (uint8 pixels...)


def targets_from_labels(labels: np.ndarray, n: int, n_classes: int, path) -> np.ndarray:
    """[n, C] regression targets from stored labels: [n, C] as they are, class indices [n]
    as centred one-hot. Raises KipctlError for indices outside [0, C) or another shape."""
    labels = np.asarray(labels)
    if labels.ndim == 1:
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise KipctlError(f"{path}: class labels span [{labels.min()}, {labels.max()}] but "
                              f"the dataset has {n_classes} classes")
        labels = centered_one_hot(labels.astype(np.int64), n_classes)
    if labels.shape != (n, n_classes):
        raise KipctlError(f"{path}: labels {tuple(labels.shape)} do not match {n} images of "
                          f"{n_classes} classes (wrong dataset= or dataset.n_classes?)")
    return labels.astype(np.float32)


def check_finite(path, images: np.ndarray, labels: np.ndarray) -> None:
    """Raises KipctlError naming the file and the count of NaN/inf values."""
    for name, arr in (("images", images), ("labels", labels)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise KipctlError(f"{path}: {bad} non-finite (NaN/inf) values in its {name}; "
                              "this set cannot be evaluated (a diverged run? use an earlier "
                              "checkpoint's support)")


def save_support(path: Path, images: np.ndarray, labels: np.ndarray,
                 mask: Optional[np.ndarray] = None, meta: Optional[dict] = None,
                 extra: Optional[dict] = None) -> None:
    """Writes a support.npz atomically; `extra` adds arrays (e.g. an export's mean/std)."""
    arrays = {"images": np.asarray(images, np.float32), "labels": np.asarray(labels, np.float32),
              "meta": np.asarray(json.dumps(meta or {}, default=str)), **(extra or {})}
    if mask is not None:
        arrays["mask"] = np.asarray(mask, bool)

    def w(tmp: str) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        with open(tmp, "wb") as f:
            f.write(buf.getvalue())
    atomic_write(Path(path), w)


def load_support(path: str | Path, n_classes: Optional[int] = None,
                 image_shape: Optional[tuple] = None) -> Support:
    """Reads a support file and checks it against the dataset it will be evaluated on
    (n_classes None: the labels' own class count). Top-level `mean` / `std` /
    `preprocessing` arrays (an exported npz) fill in meta's statistics.

    Raises:
      KipctlError: missing/corrupt file, unknown keys, shapes that do not match, or NaN/inf
        in the images or labels.
    """
    path = Path(path)
    if not path.is_file():
        raise KipctlError(f"support file {path} does not exist (expected a support.npz written "
                          "by kipctl distill/label-solve, or an npz with images/labels)")
    try:
        with np.load(path, allow_pickle=False) as f:
            files = set(f.files)
            xk = "images" if "images" in files else "x" if "x" in files else None
            yk = "labels" if "labels" in files else "y" if "y" in files else None
            if xk is None or yk is None:
                raise KipctlError(f"{path}: expected arrays images/labels (or x/y), found "
                                  f"{sorted(files)}")
            stored = f[xk]
            images = np.asarray(stored, np.float32)
            labels = np.asarray(f[yk])
            mask = np.asarray(f["mask"], bool) if "mask" in files else None
            meta = json.loads(str(f["meta"])) if "meta" in files else {}
            if "mean" in files and "std" in files:
                meta.setdefault("mean", np.asarray(f["mean"]).tolist())
                meta.setdefault("std", np.asarray(f["std"]).tolist())
                meta.setdefault("preprocessing", str(f["preprocessing"])
                                if "preprocessing" in files else "standardize")
    except KipctlError:
        raise
    except Exception as e:
        raise KipctlError(f"corrupt support file {path}: {read_error(e)}") from None
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise KipctlError(f"{path}: images {images.shape} are not [n,H,W,C] (or [n,H,W]) images")
    if n_classes is None:
        n_classes = labels.shape[1] if labels.ndim == 2 else int(labels.max(initial=-1)) + 1
    labels = targets_from_labels(labels, images.shape[0], n_classes, path)
    check_finite(path, images, labels)
    if image_shape is not None and tuple(images.shape[1:]) != tuple(image_shape):
        raise KipctlError(f"{path}: images are {tuple(images.shape[1:])} but the dataset's "
                          f"are {tuple(image_shape)} (wrong dataset= ?)")
    return Support(images, labels, mask, meta, stored.dtype)
