"""Preprocessing (PAPER.md §5): channel-wise standardisation with training-set statistics,
regularised ZCA whitening (Shankar et al. 2020, strength 1e-5) and mean-centred one-hot labels.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np


class Stats(NamedTuple):
    mean: np.ndarray  # [C] per-channel mean of x/255 over the training set
    std: np.ndarray  # [C] per-channel std
    zca: Optional[np.ndarray]  # [d, d] whitening matrix, or None


def channel_stats(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 images scaled to [0, 1]. x [N,H,W,C] -> [C], [C]"""
    x = x_train.astype(np.float64) / 255.0
    return x.mean(axis=(0, 1, 2)), x.std(axis=(0, 1, 2))


def standardize(x: np.ndarray, mean: np.ndarray, std: np.ndarray,
                dtype=np.float32) -> np.ndarray:
    """(x/255 - mean) / std per channel in `dtype` (a constant channel is only centred).
    [N,H,W,C]"""
    std = np.where(std > 0, std, 1.0)
    return (x.astype(dtype) / 255.0 - mean.astype(dtype)) / std.astype(dtype)


def zca_matrix(x_train: np.ndarray, strength: float) -> np.ndarray:
    """Regularised ZCA: U diag((s + strength * tr/d)^-1/2) U^T of the feature covariance.

    x_train [N,H,W,C] standardised -> [d, d]
    """
    flat = x_train.reshape(x_train.shape[0], -1).astype(np.float64)  # [N, d]
    flat = flat - flat.mean(axis=0)
    cov = flat.T @ flat / flat.shape[0]  # [d, d]
    s, u = np.linalg.eigh(cov)  # [d], [d, d]
    s = np.maximum(s, 0.0) + strength * np.trace(cov) / cov.shape[0]
    return (u * s ** -0.5) @ u.T  # [d, d]


def apply_zca(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Whitens images with a ZCA matrix. x [N,H,W,C], w [d, d] -> [N,H,W,C] in x's dtype"""
    flat = x.reshape(x.shape[0], -1).astype(np.float64) @ w  # [N, d]
    return flat.reshape(x.shape).astype(x.dtype)


def centered_one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    """One-hot minus 1/C (PAPER.md §1). y [N] int -> [N, C] float32"""
    return (np.eye(n_classes, dtype=np.float32)[y] - 1.0 / n_classes).astype(np.float32)
