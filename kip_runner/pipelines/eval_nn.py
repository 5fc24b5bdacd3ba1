"""kipctl eval-nn: finite-width networks trained on natural or distilled data (PAPER.md §6).

data=natural trains on one class-balanced (default) natural subset of size `support`,
optionally rho-corrupted exactly as eval-krr (`eval_krr.natural_subset`); data=<support.npz>
trains on a learned support set with its labels as stored. `seeds` random inits are trained
together (vmapped) and evaluated on the full test split -> mean +- std.

With an lr / L2 grid (more than one candidate) a validation split of `val_size` examples is
held out from the dataset's TRAIN split (disjoint from the natural subset); each candidate is
trained with all seeds and scored on it, and only the chosen candidate is ever evaluated on
the test split.
"""

from __future__ import annotations

import itertools
import logging
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from kip_runner.config.schema import EvalNnConfig
from kip_runner.core import nn
from kip_runner.core.sampling import random_indices
from kip_runner.errors import KipctlError
from kip_runner.pipelines.common import dataset_from_config, progress, require_balanced
from kip_runner.pipelines.estimate import announce
from kip_runner.pipelines.eval_krr import natural_subset
from kip_runner.runs.metrics import JsonLines, check_finite, write_csv
from kip_runner.runs.rundir import RunDir
from kip_runner.runs.interop import read_support

log = logging.getLogger(__name__)


def _candidates(cfg: EvalNnConfig) -> list[tuple[float, float]]:
    lrs = list(cfg.lr_grid) or [cfg.lr]
    l2s = list(cfg.l2_grid) or [cfg.l2]
    return [(float(a), float(b)) for a, b in itertools.product(lrs, l2s)]


def _training_data(cfg: EvalNnConfig, ds, data_key, n_val: int):
    """(x_s, y_s, mask, val_idx, source, rho): the training set and the validation rows.

    val_idx indexes ds.x_train; for natural data the subset is drawn from the rest.
    """
    k_val, k_sub = jax.random.split(data_key)
    n_train = len(ds.y_train)
    if n_val >= n_train:
        raise KipctlError(f"val_size={n_val} leaves no training examples "
                          f"(the train split has {n_train})")
    if n_val:
        perm = np.asarray(random_indices(k_val, n_train, n_train))  # [N]
        val_idx, rest = np.sort(perm[:n_val]), np.sort(perm[n_val:])  # [n_val], [N - n_val]
    else:
        val_idx, rest = np.zeros(0, np.int64), np.arange(n_train)  # [0], [N]
    if cfg.data == "natural":
        pool = ds if n_val == 0 else ds._replace(x_train=ds.x_train[rest],
                                                 y_train=ds.y_train[rest])
        if cfg.sampling == "balanced":
            require_balanced(pool, cfg.support)
        elif cfg.support > len(rest):
            raise KipctlError(f"support={cfg.support} exceeds the {len(rest)} training examples "
                              "left after the validation split")
        x_s, y_s, mask = natural_subset(k_sub, pool, cfg.support, cfg.sampling == "balanced",
                                        cfg.rho, cfg.corruption)
        return x_s, y_s, mask, val_idx, "natural", cfg.rho
    sup = read_support(cfg.data, ds.x_train.shape[1:], ds.n_classes, ds.stats,
                       cfg.dataset.preprocessing, cfg.source_space)
    if sup.mask is not None and sup.mask.shape != sup.images.shape:
        raise KipctlError(f"{cfg.data}: mask {sup.mask.shape} does not match images "
                          f"{sup.images.shape}")
    # The rho mask is respected by using the images exactly as stored: corrupted coordinates
    # keep their stored (noise/zero) values and are neither re-corrupted nor restored.
    rho = float(sup.mask.mean()) if sup.mask is not None else float(sup.meta.get("rho", 0.0))
    return sup.images, sup.labels, sup.mask, val_idx, str(cfg.data), rho


def _predict_chunks(predict, params, x, x_ref, chunk: int, params0=None) -> np.ndarray:
    """Predictions [S, n, C] in chunks of `chunk` rows (padded so one compile serves all);
    with params0 (centred nets) the initial function is subtracted."""
    n = x.shape[0]
    b = min(chunk, n)
    out = []
    for i in range(0, n, b):
        xb = x[i:i + b]  # [<=b, H, W, C]
        pad = b - xb.shape[0]
        if pad:
            xb = jnp.concatenate([xb, jnp.repeat(xb[:1], pad, axis=0)], axis=0)  # [b, ...]
        out.append(np.asarray(predict(params, xb, x_ref, params0))[:, :b - pad])  # [S, <=b, C]
    return np.concatenate(out, axis=1)  # [S, n, C]


def _train(cfg, net, step, predict, tx, x_s, y_s, lr, l2, init_keys, input_shape, dtype,
           loop_key, bar, jsonl, candidate):
    """Trains all seeds for one (lr, l2); returns (state, final data loss [S])."""
    params = nn.init_params(net, init_keys, input_shape, dtype)
    state = nn.init_state(tx, params, lr, center=cfg.center)
    l2_arr = jnp.asarray(l2, dtype)
    loss = None
    timed: list[float] = []  # compiled steps of the first candidate, for the estimate
    for t in range(cfg.steps):
        t0 = time.perf_counter()
        state, loss = step(state, x_s, y_s, l2_arr, jax.random.fold_in(loop_key, t))
        if candidate == 0 and 1 <= t <= 3:  # steps after the compiling one: the cost of the rest
            jax.block_until_ready(loss)
            timed.append(time.perf_counter() - t0)
            if len(timed) == 3 or t == cfg.steps - 1:
                total = len(_candidates(cfg)) * cfg.steps
                announce("eval-nn", total - t - 1, f"training steps ({cfg.seeds} init(s) of "
                         f"{cfg.net.name} on {x_s.shape[0]} images)", float(np.median(timed)),
                         dry_run=cfg.dry_run)
        if (t + 1) % cfg.log_every == 0 or t + 1 == cfg.steps:
            loss_np = np.asarray(loss)  # [S]
            mean = float(loss_np.mean())
            if not math.isfinite(mean):
                return state, loss_np  # caller decides (grid: discard; single: raise)
            jsonl.append({"candidate": candidate, "lr": lr, "l2": l2, "step": t + 1,
                          "train_loss": mean})
            bar.set_postfix(lr=f"{lr:g}", loss=f"{mean:.4g}")
        bar.update(1)
    # The logged loss is measured before the last update; report the final parameters' loss.
    final = nn.get_loss(cfg.loss)
    pred = predict(state.params, x_s, None, state.params0)  # [S, n, C]
    return state, np.asarray(jax.vmap(lambda p: final(p, y_s))(pred))  # [S]


def run(cfg: EvalNnConfig, rundir: RunDir) -> dict:
    dtype = jnp.float64 if cfg.x64 else jnp.float32
    ds = dataset_from_config(cfg.dataset)
    candidates = _candidates(cfg)
    use_val = len(candidates) > 1
    root = jax.random.PRNGKey(cfg.seed)
    data_key, init_key, loop_key = jax.random.split(root, 3)
    x_s, y_s, mask, val_idx, source, rho = _training_data(cfg, ds, data_key,
                                                          cfg.val_size if use_val else 0)
    n_support = len(x_s)
    x_s = jnp.asarray(x_s, dtype)  # [n_s, H, W, C]
    y_s = jnp.asarray(y_s, dtype)  # [n_s, C]
    x_test = jnp.asarray(ds.x_test, dtype)  # [n_t, H, W, C]
    y_test = jnp.asarray(ds.targets("test"), dtype)  # [n_t, C]
    x_val = jnp.asarray(ds.x_train[val_idx], dtype)  # [n_val, H, W, C]
    y_val = jnp.asarray(ds.targets("train")[val_idx], dtype)  # [n_val, C]

    net = nn.make_net(n_out=ds.n_classes, **cfg.net.net_args())
    tx = nn.make_optimizer(cfg.optimizer)
    batch_size = cfg.batch_size if cfg.batch_size and cfg.batch_size < n_support else None
    step = nn.make_train_step(net, cfg.loss, tx, batch_size)
    predict = nn.make_predict(net)
    init_keys = jnp.stack([jax.random.fold_in(init_key, s) for s in range(cfg.seeds)])  # [S,2]
    input_shape = (-1,) + tuple(x_s.shape[1:])
    # BN statistics at evaluation: the training set (or the first batch_size rows of it).
    x_ref = x_s if batch_size is None else x_s[:batch_size]
    jsonl = JsonLines(rundir / "metrics.jsonl")

    bar = progress(len(candidates) * cfg.steps, f"eval-nn {cfg.net.name} n={n_support}")
    grid_rows, best = [], None
    t0 = time.time()
    for c, (lr, l2) in enumerate(candidates):
        tc = time.time()
        state, train_loss = _train(cfg, net, step, predict, tx, x_s, y_s, lr, l2, init_keys,
                                   input_shape, dtype, loop_key, bar, jsonl, c)
        finite = bool(np.all(np.isfinite(train_loss)))
        if not use_val:
            check_finite(float(np.mean(train_loss)), "train loss", cfg.steps)
            best = (lr, l2, state, train_loss, float("nan"))
            break
        val_acc = float("nan")
        if finite:
            pred = _predict_chunks(predict, state.params, x_val, x_ref, cfg.eval_batch_size,
                                   state.params0)
            val_acc = float(np.mean(nn.accuracy_per_seed(pred, y_val)))
        grid_rows.append({"candidate": c, "lr": lr, "l2": l2, "val_accuracy": val_acc,
                          "train_loss": float(np.mean(train_loss)), "finite": finite,
                          "seconds": round(time.time() - tc, 3)})
        log.info("candidate %d lr=%g l2=%g: val accuracy %.4f, train loss %.4g", c, lr, l2,
                 val_acc, float(np.mean(train_loss)))
        if finite and (best is None or val_acc > best[4]):
            best = (lr, l2, state, train_loss, val_acc)
    bar.close()
    if best is None:
        raise KipctlError("every lr/l2 candidate diverged (non-finite training loss); "
                          "lower lr_grid")
    if grid_rows:
        write_csv(rundir / "tables" / "grid.csv", grid_rows)
    lr, l2, state, train_loss, val_acc = best
    pred = _predict_chunks(predict, state.params, x_test, x_ref, cfg.eval_batch_size,
                           state.params0)  # [S, n_t, C]
    test_acc = np.asarray(nn.accuracy_per_seed(pred, y_test))  # [S]
    test_mse = np.mean((pred - np.asarray(y_test)[None]) ** 2, axis=(1, 2))  # [S]
    seconds = time.time() - t0
    rows = [{"seed": s, "net": cfg.net.name, "loss": cfg.loss, "optimizer": cfg.optimizer,
             "lr": lr, "l2": l2, "steps": cfg.steps, "center": cfg.center, "source": source,
             "dataset": cfg.dataset.name, "support": n_support, "rho": rho, "split": "test",
             "n_test": len(y_test), "test_accuracy": float(test_acc[s]),
             "test_mse": float(test_mse[s]), "train_loss": float(train_loss[s])}
            for s in range(cfg.seeds)]
    write_csv(rundir / "metrics.csv", rows)
    log.info("eval-nn %s: test accuracy %.4f +- %.4f (lr=%g l2=%g, %.1fs)", cfg.net.name,
             test_acc.mean(), test_acc.std(), lr, l2, seconds)
    out = {"test_accuracy_mean": float(test_acc.mean()),
           "test_accuracy_std": float(test_acc.std()), "n_seeds": cfg.seeds, "lr": lr,
           "l2": l2, "test_mse_mean": float(test_mse.mean()),
           "train_loss_mean": float(np.mean(train_loss)), "n_test": len(y_test),
           "n_support": n_support, "steps": cfg.steps, "center": cfg.center,
           "seconds": round(seconds, 2)}
    if use_val:
        out.update(val_accuracy=val_acc, n_val=len(val_idx), n_candidates=len(candidates))
    return out
