"""Helpers shared by the pipelines: dataset from config, kernels, KRR evaluation, progress."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Optional

import jax
import numpy as np
from tqdm.auto import tqdm

from kip_runner.config.schema import DatasetConfig, KernelConfig
from kip_runner.core import krr, xla
from kip_runner.core.kernels import kernel_matrix, make_kernel_fn
from kip_runner.core.sampling import check_balanced_feasible
from kip_runner.data import Dataset, load_dataset
from kip_runner.errors import KipctlError
from kip_runner.pipelines.estimate import announce

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


def dataset_from_config(cfg: DatasetConfig, x64: bool = False) -> Dataset:
    """The dataset, preprocessed in float64 when x64 (float64 end to end), else float32."""
    return load_dataset(cfg.name, cfg.data_dir, n_classes=cfg.n_classes,
                        preprocessing=cfg.preprocessing, zca_strength=cfg.zca_strength,
                        n_train=cfg.n_train, n_test=cfg.n_test,
                        dtype=np.float64 if x64 else np.float32)


def precision(x64: bool):
    """A context with jax_enable_x64 = x64, whatever the process-wide flag says: float64
    arrays stay float64 when x64, and float32 computations stay float32 when not (some
    kernels promote to float64 whenever x64 is on)."""
    return jax.enable_x64(bool(x64))


class Kernel:
    """A kernel config made concrete: the pure kernel_fn, its jitted form, tiling, and the
    precision every matrix is computed in (x64: float64 inputs, float64 matrix; the dataset's
    float32 arrays never decide it)."""

    def __init__(self, cfg: KernelConfig, x64: bool):
        self.cfg = cfg
        self.x64 = bool(x64)
        self.dtype = np.dtype(np.float64 if self.x64 else np.float32)
        self.fn = make_kernel_fn(**cfg.kernel_args())
        self.jitted = xla.jit(self.fn)

    def matrix(self, x1, x2=None, desc: str = "") -> np.ndarray:
        """Blocked k(x1, x2) in self.dtype, with a progress bar over tiles when there is more
        than one."""
        bar = None

        def on_block(done: int, total: int) -> None:
            nonlocal bar
            if bar is None and total > 1:
                bar = progress(total, desc or f"{self.cfg.name} kernel", leave=False)
            if bar is not None:
                bar.update(1)
        x1 = np.asarray(x1, self.dtype)  # [n1, ...]
        x2 = None if x2 is None else np.asarray(x2, self.dtype)  # [n2, ...]
        try:
            with precision(self.x64):
                out = kernel_matrix(self.fn, x1, x2, self.cfg.block_size, on_block,
                                    self.jitted)  # [n1, n2]
        finally:
            if bar is not None:
                bar.close()
        if out.dtype != self.dtype:  # a kernel that casts internally would void the x64 flag
            raise RuntimeError(f"kernel {self.cfg.name} returned {out.dtype}, expected "
                               f"{self.dtype}")
        return out

    REPEAT_BELOW_S = 5.0  # time_tile: re-time a compiled tile only when it is this cheap

    def tile_shape(self, n1: int, n2: int) -> tuple[int, int]:
        """The [b1, b2] tile that matrix() computes k(x1 [n1], x2 [n2]) in."""
        bs = self.cfg.block_size
        return (n1, n2) if bs is None else (min(bs, n1), min(bs, n2))

    def n_tiles(self, n1: int, n2: Optional[int] = None) -> int:
        """Tiles matrix() computes for k(x1 [n1], x2 [n2]); n2=None: the symmetric k(x1, x1)
        (upper tiles only)."""
        if n2 is None:
            b = min(self.tile_shape(n1, n1))
            t = -(-n1 // b)
            return t * (t + 1) // 2
        b1, b2 = self.tile_shape(n1, n2)
        return -(-n1 // b1) * -(-n2 // b2)

    def time_tile(self, x1, x2) -> tuple[float, np.ndarray]:
        """(seconds, values) of one [b1, b2] tile k(x1[:b1], x2[:b2]) as matrix() computes it.

        The first call compiles the tile; when it took under REPEAT_BELOW_S a second, timed
        call measures the compiled tile alone, else the first call's time (compilation
        included: a slight overestimate) stands, so a slow kernel is not run twice.
        x1 [n1, ...], x2 [n2, ...]"""
        b1, b2 = self.tile_shape(len(x1), len(x2))
        a = np.asarray(x1[:b1], self.dtype)  # [b1, ...]
        b = np.asarray(x2[:b2], self.dtype)  # [b2, ...]
        with precision(self.x64):
            t0 = time.perf_counter()
            tile = np.asarray(self.jitted(a, b))  # [b1, b2]
            seconds = time.perf_counter() - t0
            if seconds < self.REPEAT_BELOW_S:
                t0 = time.perf_counter()
                tile = np.asarray(self.jitted(a, b))
                seconds = time.perf_counter() - t0
        return seconds, tile

    def diag(self, x, block: int = 256) -> np.ndarray:
        """k(x_i, x_i) for every row, in self.dtype, from diagonal blocks. x [n, ...] -> [n]"""
        x = np.asarray(x, self.dtype)  # [n, ...]
        n = x.shape[0]
        pad = (-n) % block if n > block else 0
        xp = np.concatenate([x, np.repeat(x[:1], pad, axis=0)]) if pad else x
        b = min(block, n)
        with precision(self.x64):
            out = [np.diagonal(np.asarray(self.jitted(xp[i:i + b], xp[i:i + b])))
                   for i in range(0, xp.shape[0], b)]
        return np.concatenate(out)[:n]  # [n]


def announce_krr(command: str, kernel: Kernel, x_support, x_test, evaluations: int,
                 dry_run: bool) -> float:
    """The cost of `evaluations` KRR fits of x_support scored on x_test (K_ss and K_ts tiles),
    from one timed K_ts tile (estimate.announce: printed when long, DryRun under dry_run)."""
    n_s, n_t = len(x_support), len(x_test)
    tiles = evaluations * (kernel.n_tiles(n_s) + kernel.n_tiles(n_t, n_s))
    b1, b2 = kernel.tile_shape(n_t, n_s)
    return announce(command, tiles, f"kernel tiles of {b1} x {b2}",
                    kernel.time_tile(x_test, x_support)[0], dry_run=dry_run)


def krr_evaluate(kernel: Kernel, x_support, y_support, x_test, y_test, reg: float,
                 solve: str = "jitter") -> dict:
    """Fits KRR on the support set and scores the test set, all in the kernel's precision.

    x_support [n_s,H,W,C], y_support [n_s,C], x_test [n_t,H,W,C], y_test [n_t,C]
    Returns {"accuracy", "mse", "solve", "reg_effective", "dtype"} (accuracy as a fraction);
    "solve" is "cholesky", or "cholesky+jitter" when the ridge had to be raised to
    "reg_effective" (krr.factorize's policy `solve`).

    Raises:
      KipctlError: the solve failed under the policy (one line naming reg / x64).
    """
    k_ss = kernel.matrix(x_support, desc="K_ss")  # [n_s, n_s]
    k_ts = kernel.matrix(x_test, x_support, desc="K_ts")  # [n_t, n_s]
    return krr_score(k_ss, k_ts, y_support, y_test, reg, solve, kernel.x64)


def krr_score(k_ss, k_ts, y_support, y_test, reg: float, solve: str, x64: bool) -> dict:
    """KRR test scores from the kernel blocks, in their precision.

    k_ss [n_s, n_s], k_ts [n_t, n_s], y_support [n_s, C], y_test [n_t, C]
    Returns {"accuracy", "mse", "solve", "reg_effective", "dtype"} (see krr_evaluate).
    """
    with precision(x64):
        fit = solve_krr(k_ss, np.asarray(y_support, k_ss.dtype), reg, solve)
        pred = krr.predict(k_ts, fit.alpha)  # [n_t, C]
        return {"accuracy": float(krr.accuracy(pred, y_test)),
                "mse": float(krr.mse(pred, y_test)), "solve": fit.method,
                "reg_effective": fit.reg, "dtype": np.dtype(k_ss.dtype).name}


def solve_krr(k_ss, y_s, reg: float, solve: str = "jitter") -> krr.KrrFit:
    """krr.fit with its failures as one-line user errors."""
    try:
        return krr.fit(k_ss, y_s, reg, solve)
    except ValueError as e:  # krr.SolveError included
        raise KipctlError(str(e)) from None


def raised_solves(rows: list[dict]) -> list[dict]:
    """The rows (with "solve" / "reg_effective") whose solve needed a larger ridge."""
    return [r for r in rows if r.get("solve", "cholesky") != "cholesky"]


def solve_note(rows: list[dict], what: str = "KRR solves") -> Optional[str]:
    """The end-of-run line about solves whose ridge was raised (None when there were none)."""
    raised = raised_solves(rows)
    if not raised:
        return None
    top = max(float(r["reg_effective"]) for r in raised)
    return (f"{len(raised)} of {len(rows)} {what} did not factor at the requested ridge and "
            f"used a larger one (up to reg={top:g}; column solve/reg_effective): those rows are "
            "KRR with a larger ridge, not the requested one. Use x64=true, or a larger reg, or "
            "solve=strict to fail instead")
