"""Distilled sets in and out of kipctl: the formats other tools read and write.

Export (`kipctl export`, pipelines/export.py) of a support set held in a dataset's
preprocessed space:
  imagefolder  <out>/<class>/<i>.png, uint8 pixels mapped back through the stored
               standardisation (x * std + mean, clipped to [0, 1]); labels.csv with the learned
               (soft) labels of every file; <i>_mask.png beside an image whose KIP_rho mask is
               stored (255 = frozen). torchvision's ImageFolder reads it (class dirs are
               zero-padded indices, so their sorted order is the class order).
  npz          <out>/support.npz: the KIP-ConvNet release schema (images [N,H,W,C] float32 in
               the preprocessed space, labels [N,K]) plus mean / std / preprocessing, the mask
               and kipctl's meta: read back bit-exactly.
  pt           <out>/support.pt: {"images": float32 [N,C,H,W] in [0,1], "labels": [N,K]}, the
               layout DD-Ranking / DC-BENCH-style PyTorch evaluators load (needs torch).
ZCA-whitened sets have no pixel form without the whitening matrix: imagefolder and pt refuse
them (npz keeps them in their whitened space).

Import (`source=` of eval-krr, `data=` of eval-nn): read_support() takes a kipctl support.npz,
an exported npz, a run directory, an imagefolder directory, a .pt file, or another method's npz
(RFAD's best.npz keys images/labels, NCHW or NHWC), and returns the images in the evaluation
dataset's preprocessed space. Raw pixels ([0,1] floats or uint8) are standardised with the
dataset's own statistics; a set stored with other statistics is mapped through pixel space.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np

from kip_runner.config.schema import SOURCE_SPACES
from kip_runner.data import preprocess
from kip_runner.errors import KipctlError
from kip_runner.runs.support import (Support, check_finite, load_support, save_support,
                                     targets_from_labels)

log = logging.getLogger(__name__)

FORMATS = ("imagefolder", "npz", "pt")
SPACES = SOURCE_SPACES  # auto | raw | preprocessed: how a source's pixel values are read
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
MASK_SUFFIX = "_mask"


# ---------------------------------------------------------------------------------------------
# pixels <-> preprocessed space
# ---------------------------------------------------------------------------------------------
def stored_stats(meta: dict, path: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """(preprocessing, mean [C], std [C]) a kipctl set was stored with."""
    if "mean" not in meta or "std" not in meta:
        raise KipctlError(f"{path}: its meta has no preprocessing statistics (mean/std); "
                          "only sets written by kipctl distill/label-solve can be exported")
    return (str(meta.get("preprocessing", "standardize")), np.asarray(meta["mean"], np.float64),
            np.asarray(meta["std"], np.float64))


def to_unit_pixels(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Inverse of preprocess.standardize: [N,H,W,C] -> float64 pixels in [0,1] (unclipped)."""
    std = np.where(std > 0, std, 1.0)
    return images.astype(np.float64) * std + mean


def clipped_fraction(unit: np.ndarray) -> float:
    """The fraction of [0,1]-scale pixel values that clipping to [0, 1] changes: those beyond
    it by more than half a uint8 step (KIP moves MNIST's black background a hair below 0,
    which rounding would map to 0 anyway)."""
    half = 0.5 / 255.0
    return float(np.mean((unit < -half) | (unit > 1.0 + half))) if unit.size else 0.0


def to_uint8(unit: np.ndarray) -> np.ndarray:
    """[0,1] pixels -> uint8, rounded and clipped."""
    return np.round(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


def standardise_pixels(pixels: np.ndarray, stats: preprocess.Stats) -> np.ndarray:
    """Raw pixels (uint8, or floats on the 0..255 scale) -> the dataset's preprocessed space,
    exactly as data/datasets.py preprocesses its own images. [N,H,W,C] -> float32"""
    x = preprocess.standardize(pixels, stats.mean, stats.std, np.float32)
    return preprocess.apply_zca(x, stats.zca) if stats.zca is not None else x


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------
def class_dirs(n_classes: int) -> list[str]:
    width = len(str(n_classes - 1))
    return [f"{c:0{width}d}" for c in range(n_classes)]


PIXEL_MODES = ("auto", "clip", "fit")


def pixel_form(sup: Support, path: Path, fmt: str, mode: str = "auto") -> tuple[np.ndarray, dict]:
    """The set as [0,1] pixels for imagefolder / pt, and how they were made.

    clip: x * std + mean clipped to [0, 1], the true pixels of in-gamut images. KIP moves
      pixels out of the gamut (MNIST's background below black), and clipping them changes the
      set: a 100-image FC1 set lost 1.5 points of KRR accuracy that way
      (results/export/round_trip.md).
    fit: the set's pixel range [lo, hi] mapped linearly onto [0, 1]; `pixel_range` records
      (lo, hi), which kipctl's import (and any reader) inverts: pixel = lo + v * (hi - lo).
    auto: clip when clipping changes nothing (no value beyond half a uint8 step), else fit.
    """
    if mode not in PIXEL_MODES:
        raise KipctlError(f"pixels= must be one of {', '.join(PIXEL_MODES)}, got '{mode}'")
    prep, mean, std = stored_stats(sup.meta, path)
    if prep == "zca":
        raise KipctlError(f"{path} is ZCA-whitened: its images have no pixel form without the "
                          f"whitening matrix, so format={fmt} cannot write them; use format=npz "
                          "(whitened space, with its statistics)")
    unit = to_unit_pixels(sup.images, mean, std)  # [N,H,W,C]
    clipped = clipped_fraction(unit)
    if mode == "clip" or (mode == "auto" and clipped == 0.0):
        return np.clip(unit, 0.0, 1.0), {"pixels": "clip", "clipped_fraction": clipped,
                                         "pixel_range": None}
    lo, hi = float(min(unit.min(), 0.0)), float(max(unit.max(), 1.0))
    return (unit - lo) / (hi - lo), {"pixels": "fit", "clipped_fraction": 0.0,
                                     "pixel_range": [lo, hi]}


def unfit(unit: np.ndarray, pixel_range) -> np.ndarray:
    """Inverse of pixel_form's fit: [0,1] values -> pixels on the 0..1 scale (float64)."""
    if pixel_range is None:
        return unit.astype(np.float64)
    lo, hi = (float(v) for v in pixel_range)
    return lo + unit.astype(np.float64) * (hi - lo)


def write_imagefolder(sup: Support, path: Path, out: Path, pixels: str = "auto") -> dict:
    from PIL import Image  # noqa: PLC0415 (pillow: a matplotlib dependency)

    unit, info = pixel_form(sup, path, "imagefolder", pixels)
    uint8 = to_uint8(unit)  # [N,H,W,C]
    n_classes = sup.labels.shape[1]
    names = class_dirs(n_classes)
    classes = np.argmax(sup.labels, axis=1)  # [N]
    width = len(str(len(uint8) - 1))
    rows = []
    for i, (img, c) in enumerate(zip(uint8, classes)):
        folder = out / names[c]
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{i:0{width}d}"
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(folder / f"{stem}.png")
        if has_mask(sup):
            frozen = np.any(sup.mask[i], axis=-1).astype(np.uint8) * 255  # [H,W]
            Image.fromarray(frozen).save(folder / f"{stem}{MASK_SUFFIX}.png")
        rows.append([f"{names[c]}/{stem}.png", int(c)] + [repr(float(v)) for v in sup.labels[i]])
    with open(out / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "class"] + [f"label_{k}" for k in range(n_classes)])
        w.writerows(rows)
    return {"files": len(rows), **info}


def write_npz(sup: Support, path: Path, out: Path, pixels: str = "auto") -> dict:
    del pixels  # the npz keeps the preprocessed values themselves
    prep, mean, std = stored_stats(sup.meta, path)
    save_support(out / "support.npz", sup.images, sup.labels, sup.mask, sup.meta,
                 extra={"mean": mean, "std": std, "preprocessing": np.asarray(prep)})
    return {"files": 1, "pixels": None, "clipped_fraction": 0.0, "pixel_range": None}


def write_pt(sup: Support, path: Path, out: Path, pixels: str = "auto") -> dict:
    torch = import_torch("format=pt")
    unit, info = pixel_form(sup, path, "pt", pixels)
    images = unit.astype(np.float32).transpose(0, 3, 1, 2)  # [N,C,H,W]
    obj = {"images": torch.from_numpy(np.ascontiguousarray(images)),
           "labels": torch.from_numpy(sup.labels.astype(np.float32))}
    if info["pixel_range"] is not None:
        obj["pixel_range"] = torch.tensor(info["pixel_range"], dtype=torch.float64)
    torch.save(obj, out / "support.pt")
    return {"files": 1, **info}


WRITERS = {"imagefolder": write_imagefolder, "npz": write_npz, "pt": write_pt}


def import_torch(what: str):
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        raise KipctlError(f"{what} needs PyTorch, which is not installed: "
                          "pip install -e '.[torch]'") from None
    return torch


# ---------------------------------------------------------------------------------------------
# import
# ---------------------------------------------------------------------------------------------
def _nhwc(images: np.ndarray, image_shape: tuple, path: Path) -> np.ndarray:
    """[N,H,W,C], [N,C,H,W] or [N,H,W] (grayscale) -> [N,H,W,C] for the dataset's shape."""
    h, w, c = image_shape
    if images.ndim == 3 and c == 1:
        images = images[..., None]
    if images.ndim == 4 and images.shape[1:] == (c, h, w) and images.shape[1:] != (h, w, c):
        images = images.transpose(0, 2, 3, 1)
    if images.ndim != 4 or images.shape[1:] != (h, w, c):
        raise KipctlError(f"{path}: images of shape {tuple(images.shape[1:])} do not match the "
                          f"dataset's {h}x{w}x{c} (as [N,H,W,C] or [N,C,H,W]); wrong dataset= ?")
    return images


def _raw_pixels(images: np.ndarray, path: Path) -> np.ndarray:
    """Raw pixels on the 0..255 scale (float64) from uint8 / integer or [0,1] float images."""
    if np.issubdtype(images.dtype, np.integer) or images.dtype == bool:
        lo, hi = int(images.min()), int(images.max())
        if lo < 0 or hi > 255:
            raise KipctlError(f"{path}: integer pixels span [{lo}, {hi}], outside 0..255")
        return images.astype(np.float64)
    lo, hi = float(np.min(images)), float(np.max(images))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        bad = int(images.size - np.count_nonzero(np.isfinite(images)))
        raise KipctlError(f"{path}: {bad} non-finite (NaN/inf) values in its images")
    if lo < -1e-6 or hi > 1.0 + 1e-6:
        raise KipctlError(f"{path}: raw images must be floats in [0, 1] or uint8, these span "
                          f"[{lo:.3g}, {hi:.3g}]; images that are already preprocessed go in an "
                          "npz with source_space=preprocessed")
    return np.clip(images.astype(np.float64), 0.0, 1.0) * 255.0


def _finish(images, labels, mask, meta, path, n_classes) -> Support:
    labels = targets_from_labels(labels, len(images), n_classes, path)
    check_finite(path, images, labels)
    if mask is not None and mask.shape != images.shape:
        mask = None
    return Support(np.asarray(images, np.float32), labels, mask, meta)


def read_imagefolder(path: Path, image_shape: tuple, n_classes: int,
                     stats: preprocess.Stats) -> Support:
    from PIL import Image  # noqa: PLC0415

    folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise KipctlError(f"{path}: an imagefolder needs one sub-directory per class, found none")
    if len(folders) > n_classes:
        raise KipctlError(f"{path}: {len(folders)} class folders, but the dataset has "
                          f"{n_classes} classes")
    soft = {}
    if (path / "labels.csv").exists():
        with open(path / "labels.csv", newline="") as f:
            for row in csv.DictReader(f):
                soft[row["file"]] = [float(row[f"label_{k}"]) for k in range(n_classes)
                                     if f"label_{k}" in row]
    names = [f.name for f in folders]
    index = {n: int(n) for n in names} if all(n.isdigit() for n in names) else \
        {n: i for i, n in enumerate(names)}
    images, labels, masks, files = [], [], [], []
    for folder in folders:
        for img in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                          and not p.stem.endswith(MASK_SUFFIX)):
            try:
                with Image.open(img) as im:
                    arr = np.asarray(im.convert("L" if image_shape[-1] == 1 else "RGB"))
            except Exception as e:  # noqa: BLE001 - PIL raises many kinds
                raise KipctlError(f"corrupt image {img}: {e}") from None
            images.append(arr)
            rel = f"{folder.name}/{img.name}"
            files.append(rel)
            labels.append(soft.get(rel, index[folder.name]))
            mask_file = img.with_name(img.stem + MASK_SUFFIX + ".png")
            masks.append(mask_file if mask_file.exists() else None)
    if not images:
        raise KipctlError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in its class folders")
    if any(index[n] >= n_classes for n in names):
        raise KipctlError(f"{path}: class folder names {names} go beyond the dataset's "
                          f"{n_classes} classes")
    # labels.csv lists the files in the exported set's order: restore it
    rank = {f: i for i, f in enumerate(soft)}
    order = sorted(range(len(files)), key=lambda i: (rank.get(files[i], len(rank)), i))
    images, labels, masks, files = ([seq[i] for i in order]
                                    for seq in (images, labels, masks, files))
    x = _nhwc(np.stack(images), image_shape, path)  # [N,H,W,C] uint8
    exported = path / "export.json"
    pixel_range = json.loads(exported.read_text()).get("pixel_range") if exported.exists() \
        else None
    if all(isinstance(y, list) for y in labels):
        y = np.asarray(labels, np.float32)
    else:
        y = np.asarray([int(np.argmax(v)) if isinstance(v, list) else v for v in labels])
    mask = None
    if all(m is not None for m in masks):
        frozen = np.stack([np.asarray(Image.open(m)) > 127 for m in masks])  # [N,H,W]
        mask = np.repeat(frozen[..., None], image_shape[-1], axis=-1)
    meta = {"import": "imagefolder", "files": len(files), "pixel_range": pixel_range}
    raw = x if pixel_range is None else unfit(x / 255.0, pixel_range) * 255.0
    return _finish(standardise_pixels(raw, stats), y, mask, meta, path, n_classes)


def read_pt(path: Path, image_shape: tuple, n_classes: int, stats: preprocess.Stats) -> Support:
    torch = import_torch(f"reading {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds
        raise KipctlError(f"corrupt torch file {path}: {e}") from None
    if isinstance(obj, dict):
        xk = next((k for k in ("images", "image", "x", "data") if k in obj), None)
        yk = next((k for k in ("labels", "label", "y", "targets") if k in obj), None)
        if xk is None or yk is None:
            raise KipctlError(f"{path}: expected a dict with images/labels (or x/y), found "
                              f"{sorted(map(str, obj))}")
        x, y = obj[xk], obj[yk]
        pixel_range = obj.get("pixel_range")
    elif isinstance(obj, (list, tuple)) and len(obj) == 2:
        (x, y), pixel_range = obj, None
    else:
        raise KipctlError(f"{path}: expected {{'images': ..., 'labels': ...}} or (images, labels)")
    x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    y = y.detach().cpu().numpy() if hasattr(y, "detach") else np.asarray(y)
    x = _nhwc(x, image_shape, path)
    raw = _raw_pixels(x, path)  # 0..255
    if pixel_range is not None:
        pixel_range = [float(v) for v in np.asarray(pixel_range).ravel()]
        raw = unfit(raw / 255.0, pixel_range) * 255.0
    return _finish(standardise_pixels(raw, stats), y, None,
                   {"import": "pt", "pixel_range": pixel_range}, path, n_classes)


def _same(a, b) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-12, atol=0.0))


def read_npz(path: Path, image_shape: tuple, n_classes: int, stats: preprocess.Stats,
             preprocessing: str, space: str) -> Support:
    sup = load_support(path, n_classes)  # fills meta's statistics from an export's arrays
    images = _nhwc(sup.images, image_shape, path)
    mask = sup.mask
    if mask is not None and mask.shape != images.shape and mask.ndim == 4:
        mask = mask.transpose(0, 2, 3, 1) if mask.shape[1:] == images.shape[1:][::-1] else None
    meta = sup.meta
    has_stats = "mean" in meta and "std" in meta
    raw_dtype = sup.stored_dtype
    integer = raw_dtype is not None and np.issubdtype(raw_dtype, np.integer)
    if space == "auto":
        if has_stats:
            space = "preprocessed"
        elif integer or (float(np.min(images)) >= 0.0 and float(np.max(images)) <= 1.0):
            space = "raw"
            log.info("%s: no preprocessing statistics and pixels in %s: read as raw pixels",
                     path, "0..255" if integer else "[0, 1]")
        else:
            space = "preprocessed"
            log.info("%s: no preprocessing statistics: read as already in the dataset's "
                     "preprocessed space (source_space=raw if these are pixels)", path)
    if space == "raw":  # load_support read the pixels as float32 (exact for integers)
        x = standardise_pixels(_raw_pixels(images.astype(raw_dtype) if integer else images,
                                           path), stats)
        return _finish(x, sup.labels, mask, meta, path, n_classes)
    if has_stats:
        prep, mean, std = stored_stats(meta, path)
        same = prep == preprocessing and _same(mean, stats.mean) and _same(std, stats.std)
        if not same:
            if "zca" in (prep, preprocessing):
                raise KipctlError(f"{path} was stored with preprocessing={prep} and other "
                                  f"statistics than this dataset's ({preprocessing}); a ZCA "
                                  "space cannot be mapped to another one: evaluate it with the "
                                  "dataset and dataset.preprocessing it was learned with")
            log.info("%s: stored with other preprocessing statistics than the dataset's; "
                     "mapped through pixel space", path)
            images = standardise_pixels(to_unit_pixels(images, mean, std) * 255.0, stats)
    return _finish(images, sup.labels, mask, meta, path, n_classes)


def read_support(path: str | Path, image_shape: tuple, n_classes: int, stats: preprocess.Stats,
                 preprocessing: str, space: str = "auto") -> Support:
    """Any supported set -> a Support in the dataset's preprocessed space (see module doc).

    Raises:
      KipctlError: a missing / corrupt / unreadable file, or a mismatch of shape, class count
        or value range.
    """
    path = Path(path)
    if space not in SPACES:
        raise KipctlError(f"source_space must be one of {', '.join(SPACES)}, got '{space}'")
    if path.is_dir():
        if (path / "support.npz").is_file():  # a run directory or an npz export
            path = path / "support.npz"
        elif (path / "support.pt").is_file():
            path = path / "support.pt"
        else:
            return read_imagefolder(path, tuple(image_shape), n_classes, stats)
    if not path.exists():
        raise KipctlError(f"support file {path} does not exist (expected a support.npz, an "
                          "exported imagefolder directory, or a .pt/.npz of images and labels)")
    if path.suffix == ".pt":
        return read_pt(path, tuple(image_shape), n_classes, stats)
    return read_npz(path, tuple(image_shape), n_classes, stats, preprocessing, space)


def has_mask(sup: Support) -> bool:
    """A KIP_rho set: some coordinates are frozen (distill stores an all-False mask at rho 0)."""
    return sup.mask is not None and bool(np.any(sup.mask))


def export_meta(sup: Support, source: Path, fmt: str, info: dict) -> dict:
    return {"format": fmt, "source": str(source.resolve()), "n_images": int(len(sup.images)),
            "n_classes": int(sup.labels.shape[1]), "has_mask": has_mask(sup),
            "preprocessing": sup.meta.get("preprocessing"), "mean": sup.meta.get("mean"),
            "std": sup.meta.get("std"), **info}


def find_support(path: Path) -> Path:
    """A run directory or a support.npz -> the support.npz path."""
    if path.is_dir():
        path = path / "support.npz"
    if not path.is_file():
        raise KipctlError(f"{path} does not exist: give a run directory with a support.npz "
                          "(kipctl distill / label-solve) or the support.npz itself")
    return path
