"""kipctl label-solve: closed-form Label Solve (PAPER.md §3) with any kernel of the zoo.

The support images are a class-balanced natural subset (`support`, `seed`; the same subset as
`kipctl eval-krr seed=<seed> seeds=1`) or the images of a support.npz (`source=<path>`). The
targets are every training example (`n_targets=null`) or a class-balanced subset. The labels
y_s* = pinv(K_ts (K_ss + λI)^-1) y_t are solved by `core.label_solve` without holding K_ts:
K_ts is computed in row blocks of `block_rows` targets (each tiled by `kernel.block_size`, so
device memory is bounded by one tile), and every finished block is saved atomically to
<run>/kernel_blocks/ so that re-running the same command in the same run directory skips it.
Each block is folded into a QR factor of [A | y_t] of size O((n_s + C)²).

Outputs: support.npz (support images + solved labels), metrics.csv (one row per kernel ×
label set), summary.json metrics: test_accuracy / test_mse (solved labels), the same with
the support's original labels, the target (KIP) loss of both, n_targets, timings, and
eval_kernel_* when `eval_kernel=<kernel option>` names a transfer kernel.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Optional

import jax
import numpy as np

from kip_runner.config.schema import LabelSolveConfig
from kip_runner.core import label_solve as ls
from kip_runner.core.sampling import class_balanced_indices
from kip_runner.errors import KipctlError, read_error
from kip_runner.pipelines.common import (Kernel, dataset_from_config, krr_score, precision,
                                          progress, raised_solves, require_balanced,
                                          solve_note)
from kip_runner.pipelines.estimate import announce
from kip_runner.pipelines.eval_krr import natural_indices
from kip_runner.runs.metrics import write_csv
from kip_runner.runs.rundir import RunDir, atomic_write, read_json, write_json
from kip_runner.runs.interop import read_support
from kip_runner.runs.support import save_support

log = logging.getLogger(__name__)

# Keeping or deleting the block cache does not change the results.
FINGERPRINT_IGNORE = ("keep_blocks",)
BLOCK_DIR = "kernel_blocks"


class BlockStore:
    """Row blocks of K_ts on disk (<run>/kernel_blocks/k_ts_<b>.npy), for resumable runs.

    A manifest records what the blocks were computed from (kernel, dataset, support images,
    target indices, block size, dtype); blocks of another manifest are discarded.
    """

    def __init__(self, path: Path, manifest: dict):
        self.path = Path(path)
        manifest_path = self.path / "manifest.json"
        if self.path.is_dir():
            old = read_json(manifest_path) if manifest_path.exists() else None
            if old != manifest:
                log.info("%s holds blocks of another problem; recomputing them", self.path)
                shutil.rmtree(self.path)
        if not manifest_path.exists():
            write_json(manifest_path, manifest)

    def _file(self, b: int) -> Path:
        return self.path / f"k_ts_{b:05d}.npy"

    def has(self, b: int) -> bool:
        """Whether block b was saved by an earlier attempt (it may still fail to load)."""
        return self._file(b).exists()

    def load(self, b: int, shape: tuple, dtype) -> Optional[np.ndarray]:
        """The saved block b, or None if absent or unreadable or of the wrong shape."""
        f = self._file(b)
        if not f.exists():
            return None
        try:
            block = np.load(f, allow_pickle=False)
        except (OSError, ValueError) as e:
            log.warning("ignoring unreadable kernel block %s (%s)", f, read_error(e))
            return None
        if block.shape != shape or block.dtype != dtype or not np.all(np.isfinite(block)):
            log.warning("ignoring kernel block %s: shape %s dtype %s", f, block.shape,
                        block.dtype)
            return None
        return block

    def save(self, b: int, block: np.ndarray) -> None:
        def w(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, block)
        atomic_write(self._file(b), w)


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def select_support(cfg: LabelSolveConfig, ds, key):
    """Support images [n_s,H,W,C], their original labels [n_s,C], mask, indices, meta."""
    if cfg.source == "natural":
        require_balanced(ds, cfg.support)
        # eval_krr.natural_subset's draw: eval-krr seed=<seed> seeds=1 uses the same images
        idx = natural_indices(key, ds, cfg.support, balanced=True)  # [n_s]
        return ds.x_train[idx], ds.targets("train")[idx], None, idx, {}
    sup = read_support(cfg.source, ds.x_train.shape[1:], ds.n_classes, ds.stats,
                       cfg.dataset.preprocessing)  # any format eval-krr's source= reads
    return sup.images, sup.labels, sup.mask, None, sup.meta


def select_targets(cfg: LabelSolveConfig, ds, key) -> Optional[np.ndarray]:
    """Target indices [n_t] (class-balanced), or None for every training example."""
    n_train = len(ds.y_train)
    if cfg.n_targets is None or cfg.n_targets == n_train:
        return None
    if cfg.n_targets > n_train:
        raise KipctlError(f"n_targets={cfg.n_targets} exceeds the {n_train} training examples")
    require_balanced(ds, cfg.n_targets, alternative="n_targets=null")
    return np.sort(np.asarray(class_balanced_indices(key, ds.y_train, cfg.n_targets,
                                                     ds.n_classes)))  # [n_t]


def run(cfg: LabelSolveConfig, rundir: RunDir) -> dict:
    dtype = np.float64 if cfg.x64 else np.float32
    ds = dataset_from_config(cfg.dataset, cfg.x64)
    root = jax.random.PRNGKey(cfg.seed)
    support_key, target_key = jax.random.fold_in(root, 0), jax.random.fold_in(root, 1)
    x_s, y_orig, mask, idx_s, src_meta = select_support(cfg, ds, support_key)
    idx_t = select_targets(cfg, ds, target_key)
    x_s = np.asarray(x_s, dtype)  # [n_s,H,W,C]
    n_s, n_classes = x_s.shape[0], ds.n_classes
    n_t = len(ds.y_train) if idx_t is None else len(idx_t)
    y_train = ds.targets("train")  # [N, C]
    kernel = Kernel(cfg.kernel, cfg.x64)

    t0 = time.time()
    k_ss = kernel.matrix(x_s, desc="K_ss")  # [n_s, n_s]
    kernel_seconds = time.time() - t0
    try:
        with precision(cfg.x64):
            operator = ls.make_operator(k_ss, cfg.reg, cfg.solve)
    except ValueError as e:  # krr.SolveError included
        raise KipctlError(str(e)) from None
    if operator.method != "cholesky":
        log.warning("K_ss + ridge did not factor at reg=%g; the label solve uses reg=%g "
                    "(solve=%s; recorded as operator_reg_effective)", cfg.reg, operator.reg,
                    cfg.solve)

    manifest = {"kernel": cfg.kernel.kernel_args(), "dataset": cfg.dataset.__dict__,
                "support": _digest(x_s), "targets": "all" if idx_t is None else _digest(idx_t),
                "n_support": n_s, "n_targets": n_t, "block_rows": cfg.block_rows,
                "dtype": np.dtype(dtype).name}
    store = BlockStore(rundir / BLOCK_DIR, json.loads(json.dumps(manifest, default=str)))
    n_blocks = -(-n_t // cfg.block_rows)
    r = ls.qr_init(n_s, n_classes, dtype)  # [0, n_s + C]
    flush_rows = max(n_s + n_classes, cfg.block_rows)  # QR cost stays ~2x one factorisation
    pending_a, pending_y = [], []
    reused, block_seconds, factor_seconds = 0, [], 0.0
    missing = [b for b in range(n_blocks) if not store.has(b)]
    tiles = sum(kernel.n_tiles(min(n_t, (b + 1) * cfg.block_rows) - b * cfg.block_rows, n_s)
                for b in missing) + kernel.n_tiles(len(ds.x_test), n_s)
    tile_rows, tile_cols = kernel.tile_shape(min(n_t, cfg.block_rows), n_s)
    first_rows = np.arange(tile_rows) if idx_t is None else idx_t[:tile_rows]  # block 0's
    seconds, tile = kernel.time_tile(np.asarray(ds.x_train[first_rows], dtype), x_s)
    timed_block = missing[:1] == [0] and tile.shape == (min(n_t, cfg.block_rows), n_s) \
        and bool(np.all(np.isfinite(tile)))
    if timed_block:
        store.save(0, np.asarray(tile, dtype))  # the timed tile is block 0: not computed twice
    announce("label-solve", tiles, f"kernel tiles of {tile_rows} x {tile_cols} (K_ts and the "
             "test evaluation)", seconds, dry_run=cfg.dry_run)
    bar = progress(n_blocks, f"label-solve {cfg.kernel.name} K_ts [{n_t}x{n_s}]", unit="block")
    for b in range(n_blocks):
        lo, hi = b * cfg.block_rows, min(n_t, (b + 1) * cfg.block_rows)
        rows = np.arange(lo, hi) if idx_t is None else idx_t[lo:hi]  # [b]
        k_ts = store.load(b, (hi - lo, n_s), np.dtype(dtype))
        if k_ts is None:
            tb = time.time()
            k_ts = kernel.matrix(np.asarray(ds.x_train[rows], dtype), x_s,
                                 desc=f"block {b + 1}/{n_blocks}")  # [b, n_s]
            k_ts = np.asarray(k_ts, dtype)
            block_seconds.append(time.time() - tb)
            if not np.all(np.isfinite(k_ts)):
                raise KipctlError(f"kernel block {b} (targets {lo}..{hi - 1}) has non-finite "
                                  "entries (check the data and kernel hyper-parameters)")
            store.save(b, k_ts)
        elif b == 0 and timed_block:  # computed above, by the timing
            block_seconds.append(seconds)
        else:
            reused += 1
        tf = time.time()
        pending_a.append(np.asarray(operator(k_ts)))  # [b, n_s]
        pending_y.append(y_train[rows])  # [b, C]
        if sum(len(a) for a in pending_a) >= flush_rows or b == n_blocks - 1:
            r = ls.qr_update(r, np.concatenate(pending_a), np.concatenate(pending_y))
            r.block_until_ready()
            pending_a, pending_y = [], []
        factor_seconds += time.time() - tf
        bar.update(1)
    bar.close()
    kernel_seconds += sum(block_seconds)

    t1 = time.time()
    y_s = np.asarray(ls.qr_solve(r, n_s, n_t))  # [n_s, C]
    if not np.all(np.isfinite(y_s)):
        raise KipctlError("the label solve gave non-finite labels; use x64=true or a larger reg")
    solve_seconds = time.time() - t1
    loss = float(ls.qr_loss(r, y_s, n_t))
    loss_orig = float(ls.qr_loss(r, np.asarray(y_orig, dtype), n_t))
    log.info("solved %d labels from %d targets (%d/%d kernel blocks reused): target loss "
             "%.5g (original labels %.5g)", n_s, n_t, reused, n_blocks, loss, loss_orig)

    meta = {"command": "label-solve", "dataset": cfg.dataset.name,
            "preprocessing": cfg.dataset.preprocessing, "kernel": cfg.kernel.name,
            "kernel_args": cfg.kernel.kernel_args(), "reg": cfg.reg, "seed": cfg.seed,
            "source": cfg.source, "support": n_s, "n_targets": n_t,
            "rho": src_meta.get("rho", 0.0),
            "support_indices": None if idx_s is None else idx_s.tolist()}
    save_support(rundir / "support.npz", x_s, y_s, mask, meta)

    y_test = ds.targets("test")  # [n_test, C]
    x_test = np.asarray(ds.x_test, dtype)  # [n_test,H,W,C]
    k_test = kernel.matrix(x_test, x_s, desc="K_test,s")  # [n_test, n_s]
    rows_out, metrics = [], {}
    evals = [("solve", cfg.kernel, k_ss, k_test)]
    if cfg.eval_kernel is not None:
        other = Kernel(cfg.eval_kernel, cfg.x64)
        evals.append(("eval", cfg.eval_kernel, other.matrix(x_s, desc="eval K_ss"),
                      other.matrix(x_test, x_s, desc="eval K_test,s")))
    for role, kcfg, kss, ktest in evals:
        prefix = "" if role == "solve" else "eval_kernel_"
        for labels_name, labels in (("solved", y_s), ("original", y_orig)):
            res = krr_score(kss, ktest, labels, y_test, cfg.reg, cfg.solve, cfg.x64)
            suffix = "" if labels_name == "solved" else "_original_labels"
            metrics[f"{prefix}test_accuracy{suffix}"] = res["accuracy"]
            metrics[f"{prefix}test_mse{suffix}"] = res["mse"]
            rows_out.append({"role": role, "kernel": kcfg.name, "kind": kcfg.kind,
                             "labels": labels_name, "dataset": cfg.dataset.name,
                             "source": cfg.source, "support": n_s, "n_targets": n_t,
                             "seed": cfg.seed, "reg": cfg.reg, "split": "test",
                             "n_test": len(y_test), "accuracy": res["accuracy"],
                             "mse": res["mse"], "solve": res["solve"],
                             "reg_effective": res["reg_effective"], "dtype": k_ss.dtype.name})
            log.info("%s kernel %s, %s labels: test accuracy %.4f mse %.5f", role, kcfg.name,
                     labels_name, res["accuracy"], res["mse"])
    write_csv(rundir / "metrics.csv", rows_out)
    solves = rows_out + [{"solve": operator.method, "reg_effective": operator.reg}]
    note = solve_note(solves, "solves (the label operator and the test fits)")
    if note:
        log.warning(note)
    if not cfg.keep_blocks:
        shutil.rmtree(rundir / BLOCK_DIR, ignore_errors=True)
    metrics.update({
        "n_targets": n_t, "n_support": n_s, "n_test": len(y_test), "dtype": k_ss.dtype.name,
        "operator_solve": operator.method, "operator_reg_effective": operator.reg,
        "solve_fallbacks": len(raised_solves(solves)),
        "target_loss": loss, "target_loss_original_labels": loss_orig,
        "kernel_blocks": n_blocks, "kernel_blocks_reused": reused,
        "block_rows": cfg.block_rows,
        "kernel_seconds_per_block": (float(np.median(block_seconds)) if block_seconds
                                     else None),
        "kernel_seconds": round(kernel_seconds, 3),  # K_ss + computed K_ts blocks
        "factor_seconds": round(factor_seconds, 3),  # A = K_ts K_reg^-1 and QR updates
        "solve_seconds": round(solve_seconds, 3),  # the final lstsq
    })
    return metrics
