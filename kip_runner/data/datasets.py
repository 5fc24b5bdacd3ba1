"""Dataset loading: read raw splits (directory or tfds or synthetic), preprocess, label."""

from __future__ import annotations

import logging
from typing import NamedTuple, Optional

import numpy as np

from kip_runner.data import preprocess, sources
from kip_runner.data.synthetic import make_synthetic
from kip_runner.errors import KipctlError

log = logging.getLogger(__name__)
PREPROCESSINGS = ("standardize", "zca", "none")


class Dataset(NamedTuple):
    name: str
    x_train: np.ndarray  # [N, H, W, C] float32 (float64 when loaded for x64), preprocessed
    y_train: np.ndarray  # [N] int64 labels
    x_test: np.ndarray  # [M, H, W, C] same dtype as x_train, preprocessed
    y_test: np.ndarray  # [M] int64
    n_classes: int
    stats: preprocess.Stats
    source: str
    note: str

    def targets(self, split: str = "train") -> np.ndarray:
        """Mean-centred one-hot labels of a split. [N, C]"""
        y = self.y_train if split == "train" else self.y_test
        return preprocess.centered_one_hot(y, self.n_classes)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.y_train, minlength=self.n_classes)  # [C]


def load_dataset(name: str, data_dir: Optional[str], n_classes: int = 10,
                 preprocessing: str = "standardize", zca_strength: float = 1e-5,
                 n_train: Optional[int] = None, n_test: Optional[int] = None,
                 dtype=np.float32) -> Dataset:
    """Loads, checks and preprocesses a dataset.

    Args:
      name: mnist | fashion_mnist | cifar10 | synthetic | any `<name>/train.npz` layout.
      data_dir: directory with the native files; None uses tfds.
      n_classes: number of classes (labels must lie in [0, n_classes)).
      preprocessing: standardize | zca (standardize, then regularised ZCA) | none (x/255).
      zca_strength: ZCA regulariser (fraction of the mean eigenvalue).
      n_train / n_test: keep only the first n examples (quick runs); None keeps all.
      dtype: of the preprocessed images (float64 for x64 evaluations: float64 end to end).

    Raises:
      KipctlError: missing/corrupt files, or labels outside [0, n_classes).
    """
    if preprocessing not in PREPROCESSINGS:
        raise KipctlError(f"preprocessing must be one of {PREPROCESSINGS}, got '{preprocessing}'")
    if name == "synthetic":
        raw = make_synthetic(n_classes=n_classes)
    elif data_dir:
        raw = sources.read_from_dir(name, data_dir)
    else:
        raw = sources.read_from_tfds(name)
    x_tr, y_tr, x_te, y_te = raw.x_train, raw.y_train, raw.x_test, raw.y_test
    if n_train is not None:
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    if n_test is not None:
        x_te, y_te = x_te[:n_test], y_te[:n_test]
    for split, y in (("train", y_tr), ("test", y_te)):
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise KipctlError(f"{name} {split} labels span [{y.min()}, {y.max()}] but the "
                              f"dataset config says n_classes={n_classes}")
    note = raw.note
    if name == "cifar10" and len(y_te) < 10000:
        note = (note + "; " if note else "") + f"CIFAR-10 test split has {len(y_te)} images " \
                                                "(not the full 10,000)"
    if preprocessing == "none":
        mean = np.zeros(x_tr.shape[-1])
        std = np.ones(x_tr.shape[-1])
    else:
        mean, std = preprocess.channel_stats(x_tr)
    xs_tr = preprocess.standardize(x_tr, mean, std, dtype)  # [N,H,W,C]
    xs_te = preprocess.standardize(x_te, mean, std, dtype)  # [M,H,W,C]
    zca = None
    if preprocessing == "zca":
        log.info("computing ZCA whitening (d=%d)", int(np.prod(x_tr.shape[1:])))
        zca = preprocess.zca_matrix(xs_tr, zca_strength)  # [d, d]
        xs_tr, xs_te = preprocess.apply_zca(xs_tr, zca), preprocess.apply_zca(xs_te, zca)
    if note:
        log.info("%s: %s", name, note)
    return Dataset(name, xs_tr, y_tr, xs_te, y_te, n_classes,
                   preprocess.Stats(mean, std, zca), raw.source, note)
