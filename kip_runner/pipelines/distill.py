"""kipctl distill: KIP and KIP_rho end to end (Algorithm 1, PAPER.md §2).

Owns the run loop around core.kip: support initialisation (image / noise, rho-corruption),
the kernel (or kernel-family) schedule, periodic KRR evaluation on the test split, metrics
(metrics.jsonl per logged step, metrics.csv at the end), checkpoints with resume from
checkpoints/LATEST, the non-finite guard, multi-device sharding of the target batch, and the
final support.npz that eval-krr / eval-nn read.

PRNG streams: the root key PRNGKey(seed) is split into init / loop / corrupt / kernel keys;
step s uses fold_in(loop_key, s) (inside the jitted step) and kernel member
randint(fold_in(kernel_key, s)), so a resumed run replays exactly the steps it missed.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from kip_runner.config.schema import DistillConfig, KernelConfig
from kip_runner.core import dp as dp_core
from kip_runner.core import kip
from kip_runner.core.augment import AugmentArgs
from kip_runner.core.types import PRNGKey
from kip_runner.core.corrupt import corrupt
from kip_runner.core.kernels import make_kernel_fn
from kip_runner.core.sampling import sample_indices
from kip_runner.data import Dataset
from kip_runner.data.preprocess import centered_one_hot
from kip_runner.errors import KipctlError
from kip_runner.pipelines.common import (Kernel, dataset_from_config, krr_evaluate, progress,
                                          raised_solves, require_balanced, solve_note)
from kip_runner.pipelines.estimate import announce
from kip_runner.runs.checkpoint import (latest_checkpoint, prune_checkpoints, resume_checkpoint,
                                        save_checkpoint)
from kip_runner.runs.metrics import JsonLines, write_csv
from kip_runner.runs.rundir import RunDir, fingerprint
from kip_runner.runs.support import save_support

log = logging.getLogger(__name__)

# Changing how long / how often to log, evaluate or checkpoint does not change the training
# trajectory, so `steps=2000` may continue a finished `steps=1000` run in the same run dir.
FINGERPRINT_IGNORE = ("steps", "eval_every", "log_every", "ckpt_every", "ckpt_keep", "eval_x64")


def config_fingerprint(cfg: DistillConfig) -> str:
    """The fingerprint stored in every checkpoint (same ignore list as the CLI's run.json).
    A DP run's noise is calibrated to its step count, so there `steps` is part of it: a
    checkpoint of a DP run with another length is refused instead of continued."""
    ignore = tuple(k for k in FINGERPRINT_IGNORE if not (cfg.dp.enabled and k == "steps"))
    return fingerprint(dataclasses.asdict(cfg), ignore)


class DpPlan(NamedTuple):
    """A DP run's mechanism and its accounting (docs/dp.md)."""

    args: dp_core.DpArgs
    epsilon: float  # spent, add-or-remove-one, at delta (<= the target)
    epsilon_replace_one: float  # the same mechanism under replace-one neighbours
    delta: float

    def meta(self, steps: int) -> dict:
        return {"epsilon": self.epsilon, "epsilon_replace_one": self.epsilon_replace_one,
                "delta": self.delta, "noise_multiplier": self.args.noise,
                "clip": self.args.clip, "sample_rate": self.args.sample_rate, "steps": steps,
                "neighbouring": "add_or_remove_one (replace_one: epsilon_replace_one)",
                "accountant": "dp_accounting PLD"}


def dp_plan(cfg: DistillConfig, n_train: int) -> DpPlan:
    """Noise calibrated so that cfg.steps Poisson steps at q = target_batch / n_train are
    (dp.epsilon, dp.delta)-DP."""
    q = cfg.target_batch / n_train
    if cfg.steps < 1:
        raise KipctlError("a DP run needs steps >= 1 (its noise is calibrated to them)")
    noise = dp_core.calibrate_noise(cfg.dp.epsilon, cfg.dp.delta, q, cfg.steps)
    args = dp_core.DpArgs(noise, cfg.dp.clip, q, dp_core.batch_capacity(n_train, q),
                          cfg.dp.chunk)
    return DpPlan(args, dp_core.spent_epsilon(noise, q, cfg.steps, cfg.dp.delta),
                  dp_core.spent_epsilon(noise, q, cfg.steps, cfg.dp.delta, "replace_one"),
                  cfg.dp.delta)


def init_support(key, ds: Dataset, cfg: DistillConfig, dtype) -> tuple[np.ndarray, np.ndarray]:
    """PAPER.md §2 initialisation. image: class-balanced natural subset with its centred
    one-hot labels; noise: U(-1, 1) images with balanced centred one-hot labels.
    Returns x [n_s,H,W,C], y [n_s,C]."""
    if cfg.init == "image":
        idx = np.asarray(sample_indices(key, ds.y_train, cfg.support, ds.n_classes))  # [n_s]
        return ds.x_train[idx].astype(dtype), ds.targets("train")[idx].astype(dtype)
    x = np.asarray(jax.random.uniform(key, (cfg.support,) + ds.x_train.shape[1:], dtype,
                                      -1.0, 1.0))  # [n_s,H,W,C]
    y = centered_one_hot(np.arange(cfg.support) % ds.n_classes, ds.n_classes)  # [n_s, C]
    return x, y.astype(dtype)


# The default shift range of KIP (a) by image kind. On MNIST shifts up to 10 % (2.8 px) move the
# targets off the centred test digits: RBF KIP (a+l) at support 10 reaches 89.8 % with 5 % and
# 81.4 % with 10 %, FC1 KIP_rho (a) at support 1000, rho 0.9, 93.2 vs 89.7 % (REPRODUCTION.md,
# Tables 1 and A7); on CIFAR-10 the two are within the test set's noise (Table 2's note).
AUG_SHIFT_GRAYSCALE = 0.05
AUG_SHIFT_COLOUR = 0.1


def augment_args(cfg: DistillConfig, channels: int) -> Optional[AugmentArgs]:
    """The target augmentation of KIP (a), or None. Flips and channel shifts default to
    colour datasets only (digits are not mirror-symmetric); the shift defaults to
    AUG_SHIFT_COLOUR on colour data and AUG_SHIFT_GRAYSCALE otherwise."""
    if not cfg.augment:
        return None
    colour = channels == 3
    flip = colour if cfg.aug_flip is None else bool(cfg.aug_flip)
    chan = (0.1 if colour else 0.0) if cfg.aug_channel_shift is None else cfg.aug_channel_shift
    shift = (AUG_SHIFT_COLOUR if colour else AUG_SHIFT_GRAYSCALE) if cfg.aug_shift is None \
        else cfg.aug_shift
    return AugmentArgs(flip=flip, max_shift=float(shift),
                       max_rotate=float(cfg.aug_rotate), channel_shift=float(chan))


def target_sharding(target_batch: int) -> tuple[Optional[NamedSharding], Optional[Mesh]]:
    """Shards the target batch over every visible device (the target side of the kernel is
    the dominant cost). None on one device, or when the batch does not split evenly."""
    devices = jax.devices()
    if len(devices) < 2:
        return None, None
    if target_batch % len(devices):
        log.warning("target_batch=%d does not split over %d devices; running unsharded",
                    target_batch, len(devices))
        return None, None
    mesh = Mesh(np.array(devices), ("data",))
    return NamedSharding(mesh, PartitionSpec("data")), mesh


def member_schedule(kernel_key, start: int, stop: int, n_members: int) -> np.ndarray:
    """The kernel-family member of each step in [start, stop), independent of `steps`."""
    if n_members == 1 or stop <= start:
        return np.zeros(max(stop - start, 0), np.int64)
    draw = jax.vmap(lambda s: jax.random.randint(jax.random.fold_in(kernel_key, s), (), 0,
                                                 n_members))
    return np.asarray(draw(jnp.arange(start, stop)))  # [stop - start]


def gram_fn_of(kernel: KernelConfig, dim: int):
    """FC, RBF and linear kernels run as dot-product kernels: the step then computes only
    x_t.x_s^T and reuses precomputed target norms (the same function as make_kernel_fn's, see
    core.kernels); None for conv/Myrtle kernels."""
    a = kernel.kernel_args()
    return kip.gram_kernel(a["arch"], a["depth"], a["kind"], a["parameterization"], dim,
                           a["w_var"], a["b_var"], a["gamma"], a["width"])


def _check_inputs(cfg: DistillConfig, ds: Dataset) -> None:
    n_train = len(ds.y_train)
    if cfg.target_batch > n_train:
        raise KipctlError(f"target_batch={cfg.target_batch} exceeds the {n_train} training "
                          "examples")
    require_balanced(ds, cfg.target_batch)
    if cfg.init == "image":
        require_balanced(ds, cfg.support)


class RunKeys(NamedTuple):
    """The PRNG streams of a distill run, all from its seed."""

    init: PRNGKey  # the support's initial subset (init=image) or noise
    loop: PRNGKey  # target batches, augmentation, kernel-family choice per step
    corrupt: PRNGKey  # KIP_rho: which coordinates are corrupted, and their noise
    kernel: PRNGKey  # kernel-family member sampling


def run_keys(seed: int) -> RunKeys:
    """run_keys(seed): how `run` splits its seed (report's image figures redraw the natural
    images a run started from with the same keys)."""
    return RunKeys(*jax.random.split(jax.random.PRNGKey(seed), 4))


def run(cfg: DistillConfig, rundir: RunDir) -> dict:
    dtype = np.float64 if cfg.x64 else np.float32  # explicit, never from the global flag
    ds = dataset_from_config(cfg.dataset, cfg.x64)
    _check_inputs(cfg, ds)
    members: list[KernelConfig] = cfg.kernel.member_configs()
    eval_kernel = Kernel(cfg.eval_kernel if cfg.eval_kernel is not None else members[0],
                         x64=cfg.x64 or cfg.eval_x64)
    lr = cfg.learning_rate()
    init_key, loop_key, corrupt_key, kernel_key = run_keys(cfg.seed)
    # Initial support, corrupted coordinates and the optimiser (Adam -> freeze mask).
    x0, y0 = init_support(init_key, ds, cfg, dtype)  # [n_s,H,W,C], [n_s,C]
    corrupted = np.zeros(x0.shape, bool)  # [n_s,H,W,C]
    if cfg.rho > 0:
        x0, corrupted = (np.asarray(a) for a in corrupt(corrupt_key, x0, cfg.rho,
                                                        cfg.corruption))
    frozen = kip.frozen_mask(corrupted, ds.n_classes, cfg.learn_labels)
    tx = kip.make_optimizer(lr, frozen)
    plan = dp_plan(cfg, len(ds.y_train)) if cfg.dp.enabled else None
    if plan is not None:
        rundir.annotate(dp=plan.meta(cfg.steps))  # the spent budget, beside the config
        log.info("DP-KIP: noise multiplier %.4g, clip %g, q %.4g, %d steps: epsilon %.4g "
                 "(replace-one %.4g) at delta %g", plan.args.noise, plan.args.clip,
                 plan.args.sample_rate, cfg.steps, plan.epsilon, plan.epsilon_replace_one,
                 plan.delta)
    state = kip.init_state(x0.astype(dtype), y0.astype(dtype), tx)

    # Resume from checkpoints/LATEST (refusing another config's checkpoint).
    fp = config_fingerprint(cfg)
    ckpt_dir = rundir / "checkpoints"
    jsonl = JsonLines(rundir / "metrics.jsonl")
    ck = resume_checkpoint(ckpt_dir, state, fp, log.warning)
    start = 0
    if ck is not None:
        state, start = jax.tree_util.tree_map(jnp.asarray, ck.tree), ck.step
        jsonl.truncate_after(start)
        log.info("resuming from %s (step %d)", ck.path, start)
    elif jsonl.path.exists():
        jsonl.path.unlink()  # killed before its first checkpoint: start the log afresh

    # Devices: replicate the support/data, shard the target batch.
    sharding, mesh = target_sharding(cfg.target_batch)
    data = kip.target_data(ds.x_train, ds.targets("train"), ds.y_train, dtype)
    if mesh is not None:
        replicated = NamedSharding(mesh, PartitionSpec())
        data = jax.device_put(data, replicated)
        state = jax.device_put(state, replicated)
    aug = augment_args(cfg, ds.x_train.shape[-1])
    dim = int(np.prod(ds.x_train.shape[1:]))
    if plan is None:
        steps_fns = [kip.make_kip_step(make_kernel_fn(**m.kernel_args()), tx, reg=cfg.reg,
                                       target_batch=cfg.target_batch, n_classes=ds.n_classes,
                                       augment_args=aug, target_sharding=sharding,
                                       gram_fn=gram_fn_of(m, dim))
                     for m in members]
    else:
        trainable = jax.tree_util.tree_map(lambda f: jnp.asarray(~f, dtype), frozen)
        steps_fns = [dp_core.make_dp_kip_step(make_kernel_fn(**m.kernel_args()), tx,
                                              reg=cfg.reg, n_train=len(ds.y_train),
                                              dp=plan.args, trainable=trainable,
                                              augment_args=aug)
                     for m in members]
    schedule = member_schedule(kernel_key, start, cfg.steps, len(members))
    y_test = ds.targets("test")  # [n_test, C]
    x_test = np.asarray(ds.x_test, eval_kernel.dtype)  # cast once, not at every evaluation
    solves: list[dict] = []  # every periodic evaluation's solve (method, effective ridge)

    def evaluate(st) -> dict:
        res = krr_evaluate(eval_kernel, np.asarray(st.params["x"]), np.asarray(st.params["y"]),
                           x_test, y_test, cfg.reg, cfg.solve)
        solves.append(res)
        out = {"test_accuracy": res["accuracy"], "test_mse": res["mse"]}
        if res["solve"] != "cholesky":
            out.update(solve=res["solve"], reg_effective=res["reg_effective"])
        return out

    def checkpoint(st, step: int, loss: float) -> None:
        save_checkpoint(ckpt_dir, step, jax.device_get(st), fp,
                        {"loss": loss, "lr": lr, "kernel": cfg.kernel.name})
        prune_checkpoints(ckpt_dir, cfg.ckpt_keep)  # bounded disk: newest ckpt_keep only

    last_eval: dict = {}
    eval_step = -1
    last_loss = float("nan")
    eval_seconds = None  # one periodic evaluation (compilation included), for the estimate
    if start == 0 and cfg.eval_every > 0 and cfg.steps > 0:
        t_eval = time.perf_counter()
        last_eval, eval_step = evaluate(state), 0
        eval_seconds = time.perf_counter() - t_eval
        jsonl.append({"step": 0, **last_eval})
    bar = progress(cfg.steps, f"distill {cfg.kernel.name} n={cfg.support}", initial=start)
    durations: list[float] = []
    first_call = [True] * len(members)
    compile_seconds = 0.0
    step = start
    for i, member in enumerate(schedule):
        t0 = time.perf_counter()
        state, metrics = steps_fns[member](state, loop_key, data)
        loss, acc = float(metrics["loss"]), float(metrics["acc"])  # waits for the step
        seconds = time.perf_counter() - t0
        step = start + i + 1
        if first_call[member]:
            first_call[member] = False
            compile_seconds += seconds
        else:
            durations.append(seconds)
            if len(durations) == 1:  # the first compiled step: the cost of the rest
                left = cfg.steps - step
                evals = (left // cfg.eval_every + 1) if cfg.eval_every > 0 else 1
                announce("distill", left, f"KIP steps of {cfg.support} images x "
                         f"{cfg.target_batch} targets", seconds,
                         extra_seconds=evals * (eval_seconds or 0.0),
                         extra_what=f"for {evals} KRR evaluation(s)" if eval_seconds else "",
                         dry_run=cfg.dry_run)
        if plan is not None and int(metrics["overflow"]) > 0:
            bar.close()
            raise KipctlError(f"step {step} drew {int(metrics['batch'])} targets, more than the "
                              f"{plan.args.capacity} slots of a Poisson batch (probability "
                              "< 1e-20: a bug); the run stops rather than under-sample")
        if not np.isfinite(loss):
            bar.close()
            where = latest_checkpoint(ckpt_dir)
            raise KipctlError(f"non-finite KIP loss ({loss}) at step {step}; the last good "
                              f"checkpoint is {where if where else 'none (no checkpoint yet)'}"
                              "; try a smaller lr or x64=true")
        last_loss = loss
        row = None
        if step % cfg.log_every == 0 or step == cfg.steps:
            row = {"step": step, "loss": loss, "acc": acc, "kernel": members[member].name,
                   "seconds": round(seconds, 5)}
            if plan is not None:  # the drawn Poisson batch and the share of clipped targets
                row.update(batch=int(metrics["batch"]), clipped=float(metrics["clipped"]))
        if cfg.eval_every > 0 and (step % cfg.eval_every == 0 or step == cfg.steps):
            last_eval, eval_step = evaluate(state), step
            row = {**(row or {"step": step, "loss": loss, "acc": acc,
                              "kernel": members[member].name}), **last_eval}
        if row is not None:
            jsonl.append(row)
            bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.3f}",
                            test=f"{last_eval.get('test_accuracy', float('nan')):.4f}")
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            checkpoint(state, step, loss)
        bar.update(1)
    bar.close()

    final_step = int(state.step)
    if eval_step != final_step:
        last_eval = evaluate(state)
    if np.isnan(last_loss):  # resumed at the end: the last logged training loss
        logged = [r["loss"] for r in jsonl.read() if "loss" in r]
        last_loss = logged[-1] if logged else float("nan")
    rows = jsonl.read()
    if rows:
        write_csv(rundir / "metrics.csv", rows)
    frozen = np.asarray(state.opt_state[1].mask["x"])  # [n_s,H,W,C]
    save_support(rundir / "support.npz", np.asarray(state.params["x"]),
                 np.asarray(state.params["y"]), frozen, {
                     "command": "distill", "dataset": ds.name, "n_classes": ds.n_classes,
                     "kernel": dataclasses.asdict(cfg.kernel), "rho": cfg.rho,
                     "corruption": cfg.corruption, "init": cfg.init,
                     "learn_labels": cfg.learn_labels, "augment": cfg.augment,
                     "augmentation": None if aug is None else aug._asdict(),
                     "steps": final_step, "lr": lr, "target_batch": cfg.target_batch,
                     "seed": cfg.seed, "preprocessing": cfg.dataset.preprocessing,
                     "mean": ds.stats.mean.tolist(), "std": ds.stats.std.tolist(),
                     "fingerprint": fp,
                     "dp": None if plan is None else plan.meta(final_step)})
    note = solve_note(solves, "periodic KRR evaluations")
    if note:
        log.warning(note)
    final = solves[-1] if solves else {}
    return {"test_accuracy": last_eval["test_accuracy"], "test_mse": last_eval["test_mse"],
            "solve": final.get("solve"), "reg_effective": final.get("reg_effective"),
            "solve_fallbacks": len(raised_solves(solves)),
            "eval_dtype": eval_kernel.dtype.name, "train_loss": last_loss, "steps": final_step,
            "seconds_per_step": float(np.mean(durations)) if durations else float("nan"),
            "compile_seconds": round(compile_seconds, 3), "resumed_from": start,
            "n_devices": jax.device_count(), "lr": lr, "support": cfg.support,
            "kernel": cfg.kernel.name, "eval_kernel": eval_kernel.cfg.name,
            **({} if plan is None else {f"dp/{k}": v for k, v in plan.meta(final_step).items()
                                        if not isinstance(v, str)})}
