"""Helpers shared by the pipelines: dataset from config, kernels, KRR evaluation, progress."""

from __future__ import annotations

import logging
import os
import sys
from typing import Optional

import jax
import numpy as np
from tqdm.auto import tqdm

from kip_runner.config.schema import DatasetConfig, KernelConfig
from kip_runner.core import krr
from kip_runner.core.kernels import kernel_matrix, make_kernel_fn
from kip_runner.core.sampling import check_balanced_feasible
from kip_runner.data import Dataset, load_dataset
from kip_runner.errors import KipctlError

log = logging.getLogger(__name__)


def progress(total: Optional[int] = None, desc: str = "", **kw) -> tqdm:
    """A tqdm bar on stderr; hidden when stderr is not a terminal unless KIPCTL_PROGRESS=1."""
    force = os.environ.get("KIPCTL_PROGRESS")
    disable = (force == "0") if force is not None else not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, disable=disable, dynamic_ncols=True, mininterval=0.5,
                **kw)


def require_balanced(ds: Dataset, n: int, alternative: str = "sampling=random") -> None:
    """Raises KipctlError when no class-balanced subset of n examples exists in ds; the
    message suggests `alternative` as the way out."""
    try:
        check_balanced_feasible(ds.class_counts(), n)
    except ValueError as e:
        raise KipctlError(str(e).replace("sampling=random", alternative)) from None


def dataset_from_config(cfg: DatasetConfig) -> Dataset:
    return load_dataset(cfg.name, cfg.data_dir, n_classes=cfg.n_classes,
                        preprocessing=cfg.preprocessing, zca_strength=cfg.zca_strength,
                        n_train=cfg.n_train, n_test=cfg.n_test)


class Kernel:
    """A kernel config made concrete: the pure kernel_fn, its jitted form, and tiling."""

    def __init__(self, cfg: KernelConfig):
        self.cfg = cfg
        self.fn = make_kernel_fn(**cfg.kernel_args())
        self.jitted = jax.jit(self.fn)

    def matrix(self, x1, x2=None, desc: str = "") -> np.ndarray:
        """Blocked k(x1, x2) with a progress bar over tiles when there is more than one."""
        bar = None

        def on_block(done: int, total: int) -> None:
            nonlocal bar
            if bar is None and total > 1:
                bar = progress(total, desc or f"{self.cfg.name} kernel", leave=False)
            if bar is not None:
                bar.update(1)
        try:
            return kernel_matrix(self.fn, x1, x2, self.cfg.block_size, on_block, self.jitted)
        finally:
            if bar is not None:
                bar.close()


def krr_evaluate(kernel: Kernel, x_support, y_support, x_test, y_test, reg: float) -> dict:
    """Fits KRR on the support set and scores the test set.

    x_support [n_s,H,W,C], y_support [n_s,C], x_test [n_t,H,W,C], y_test [n_t,C]
    Returns {"accuracy", "mse", "solve"} (accuracy as a fraction).
    """
    k_ss = kernel.matrix(x_support, desc="K_ss")  # [n_s, n_s]
    k_ts = kernel.matrix(x_test, x_support, desc="K_ts")  # [n_t, n_s]
    fit = krr.fit(k_ss, y_support, reg)
    pred = krr.predict(k_ts, fit.alpha)  # [n_t, C]
    return {"accuracy": float(krr.accuracy(pred, y_test)), "mse": float(krr.mse(pred, y_test)),
            "solve": fit.method}
