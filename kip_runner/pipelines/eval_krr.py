"""kipctl eval-krr: KRR accuracy of natural subsets (Table A1/A2) or of a learned support set.

source=natural draws `seeds` class-balanced (default) subsets of size `support`, optionally
rho-corrupted, and evaluates each on the full test split; source=<file> evaluates a
support.npz (also the released KIP-ConvNet images/labels schema) with any kernel.
"""

from __future__ import annotations

import logging
import time

import jax
import numpy as np

from kip_runner.config.schema import EvalKrrConfig
from kip_runner.core.corrupt import corrupt
from kip_runner.core.sampling import sample_indices
from kip_runner.errors import KipctlError
from kip_runner.pipelines.common import (Kernel, announce_krr, dataset_from_config, krr_evaluate,
                                          progress, raised_solves, require_balanced, solve_note)
from kip_runner.runs.metrics import write_csv
from kip_runner.runs.rundir import RunDir
from kip_runner.runs.interop import read_support

log = logging.getLogger(__name__)


def natural_indices(key, ds, n: int, balanced: bool) -> np.ndarray:
    """The training indices [n] that natural_subset(key, ds, n, balanced, ...) draws."""
    k_sample, _ = jax.random.split(key)
    return np.asarray(sample_indices(k_sample, ds.y_train, n, ds.n_classes, balanced))  # [n]


def natural_subset(key, ds, n: int, balanced: bool, rho: float, corruption: str):
    """A (class-balanced) natural subset, rho-corrupted if rho > 0.

    Returns x [n,H,W,C], y [n,C] (centred one-hot), mask [n,H,W,C] bool.
    """
    _, k_corrupt = jax.random.split(key)
    idx = natural_indices(key, ds, n, balanced)  # [n]
    x = ds.x_train[idx]  # [n,H,W,C]
    mask = np.zeros(x.shape, bool)
    if rho > 0:
        x, mask = (np.asarray(a) for a in corrupt(k_corrupt, x, rho, corruption))
    return x, ds.targets("train")[idx], mask


def run(cfg: EvalKrrConfig, rundir: RunDir) -> dict:
    ds = dataset_from_config(cfg.dataset, cfg.x64)
    kernel = Kernel(cfg.kernel, cfg.x64)
    y_test = ds.targets("test")  # [n_test, C]
    rows = []
    if cfg.source == "natural":
        if cfg.sampling == "balanced":
            require_balanced(ds, cfg.support)
        elif cfg.support > len(ds.y_train):
            raise KipctlError(f"support={cfg.support} exceeds the {len(ds.y_train)} training "
                              "examples")
        root = jax.random.PRNGKey(cfg.seed)
        announce_krr("eval-krr", kernel, ds.x_train[:cfg.support], ds.x_test, cfg.seeds,
                     cfg.dry_run)
        bar = progress(cfg.seeds, f"eval-krr {cfg.kernel.name} n={cfg.support}")
        for s in range(cfg.seeds):
            t0 = time.time()
            x_s, y_s, _ = natural_subset(jax.random.fold_in(root, s), ds, cfg.support,
                                         cfg.sampling == "balanced", cfg.rho, cfg.corruption)
            res = krr_evaluate(kernel, x_s, y_s, ds.x_test, y_test, cfg.reg, cfg.solve)
            rows.append(_row(cfg, s, res, len(y_test), time.time() - t0, "natural"))
            log.info("seed %d: accuracy %.4f mse %.5f (%s)", s, res["accuracy"], res["mse"],
                     res["solve"])
            bar.update(1)
            bar.set_postfix(acc=f"{np.mean([r['accuracy'] for r in rows]):.4f}")
        bar.close()
    else:
        sup = read_support(cfg.source, ds.x_train.shape[1:], ds.n_classes, ds.stats,
                           cfg.dataset.preprocessing, cfg.source_space)
        announce_krr("eval-krr", kernel, sup.images, ds.x_test, 1, cfg.dry_run)
        t0 = time.time()
        res = krr_evaluate(kernel, sup.images, sup.labels, ds.x_test, y_test, cfg.reg,
                           cfg.solve)
        rows.append(_row(cfg, cfg.seed, res, len(y_test), time.time() - t0, str(cfg.source),
                         support=len(sup.images), rho=sup.meta.get("rho", cfg.rho)))
        log.info("%s: accuracy %.4f mse %.5f", cfg.source, res["accuracy"], res["mse"])
    write_csv(rundir / "metrics.csv", rows)
    note = solve_note(rows)
    if note:
        log.warning(note)
    acc = np.array([r["accuracy"] for r in rows])
    return {"accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std()),
            "n_seeds": len(rows), "n_support": int(rows[0]["support"]),
            "mse_mean": float(np.mean([r["mse"] for r in rows])),
            "n_test": len(y_test), "dtype": kernel.dtype.name,
            "solve_fallbacks": len(raised_solves(rows)),
            "reg_effective_max": max(r["reg_effective"] for r in rows)}


def _row(cfg: EvalKrrConfig, seed: int, res: dict, n_test: int, seconds: float, source: str,
         support=None, rho=None) -> dict:
    return {"seed": seed, "source": source, "dataset": cfg.dataset.name,
            "kernel": cfg.kernel.name, "kind": cfg.kernel.kind,
            "support": cfg.support if support is None else support,
            "rho": cfg.rho if rho is None else rho, "split": "test", "n_test": n_test,
            "accuracy": res["accuracy"], "mse": res["mse"], "solve": res["solve"],
            "reg": cfg.reg, "reg_effective": res["reg_effective"], "dtype": res["dtype"],
            "seconds": round(seconds, 3)}
