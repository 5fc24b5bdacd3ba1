"""kipctl audit: measure the privacy the paper suggests for KIP_rho images (issue #15,
docs/audit.md): membership inference (global thresholds and LiRA) and nearest-image leakage.

Membership is fixed before any distillation. A class-balanced universe U and a disjoint
population H of the same size are drawn from the training split; run r of `shadows` takes a
class-balanced half of U as its members (core.audit.balanced_membership: every example is a
member in half of the runs) and distils only from them. Every cell of every run is scored on
every x in U, and the attacks pool the (run, x) pairs, each run in turn being LiRA's target
and the other runs its shadows.

Layout of the run directory:

    design.npz                        U / H training indices, labels, member masks, seeds
    data/test.npz                     the test split (raw), hard-linked into every data dir
    runs/r03/members.npz              run 3's member masks over U and H, its seed
    runs/r03/data/members/<ds>/       its members as a dataset (train.npz, test.npz): the
                                      only training data its distillations see
    runs/r03/data/population/<ds>/    its half of H (the null cell)
    runs/r03/kip_rho-rho0.9-<fp>/     a distill child run (run-dir contract, resumable)
    runs/r03/scores/<cell>-rho<rho>.npz   cached per-example scores of U under that cell
    audit.csv, table.{md,csv,tex}, scores.npz, roc.{png,pdf}, neighbours.{png,pdf},
    summary.json

A child run sees only its own dataset directory, so its preprocessing statistics are those of
its members (population, for null); U is scored in each run's own preprocessed space.
Re-running the same command skips finished distillations and reuses cached scores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import NamedTuple, Optional

import jax
import numpy as np
import pandas as pd

from kip_runner.config.audit_schema import AUDIT_SCORES, DISTILLED_CELLS, AuditConfig
from kip_runner.config.schema import DatasetConfig
from kip_runner.core import audit
from kip_runner.core.corrupt import corrupt
from kip_runner.core.sampling import sample_indices
from kip_runner.data import preprocess, sources
from kip_runner.data.synthetic import make_synthetic
from kip_runner.errors import KipctlError
from kip_runner.pipelines import distill
from kip_runner.pipelines.common import (Kernel, dataset_from_config, precision, progress,
                                          solve_krr)
from kip_runner.pipelines.estimate import announce
from kip_runner.pipelines.runner import (RunFailed, config_dict, config_fingerprint, estimate,
                                          execute)
from kip_runner.runs import tables
from kip_runner.runs.metrics import write_csv
from kip_runner.runs.rundir import RunDir, atomic_write
from kip_runner.runs.support import load_support

log = logging.getLogger(__name__)
DISTILL = "kip_runner.pipelines.distill"
# Attack choice, confidence level and figure size do not change any child run or score:
# `kipctl audit attacks=[...]` in the same run dir recomputes only the attack tables;
# adding cells or rhos adds child runs next to the existing ones.
FINGERPRINT_IGNORE = ("attacks", "confidence", "neighbours", "cells", "rhos", "dp_epsilons")
FPR_POINTS = {"1pct": 0.01, "0p1pct": 0.001}  # the columns tpr_at_<key>_fpr
CSV_COLUMNS = ["cell", "rho", "dp_epsilon", "members", "attack", "n_members", "n_nonmembers",
               "auc", "auc_lo", "auc_hi",
               "tpr_at_1pct_fpr", "tpr_at_1pct_fpr_lo", "tpr_at_1pct_fpr_hi", "fpr_1pct",
               "tpr_at_0p1pct_fpr", "tpr_at_0p1pct_fpr_lo", "tpr_at_0p1pct_fpr_hi", "fpr_0p1pct",
               "eps_empirical", "eps_empirical_lo", "eps_empirical_hi", "eps_empirical_at",
               "eps_lower_bound", "eps_lower_bound_attack", "eps_guarantee", "test_accuracy",
               "test_accuracy_std",
               "support_drift", "strongest"]


# ------------------------------------------------------------------- design and data


class Design(NamedTuple):
    """Membership fixed before any distillation (saved as design.npz)."""

    universe: np.ndarray  # [u] training indices of U
    population: np.ndarray  # [u] training indices of H
    labels: np.ndarray  # [u] classes of U
    member: np.ndarray  # [R, u] bool: U members of each run
    population_member: np.ndarray  # [R, u] bool: the half of H each run's null cell sees
    seeds: np.ndarray  # [R] int: each run's distill seed
    partner: np.ndarray  # [u] int: the other example of each U example's pair

    def digest(self) -> str:
        h = hashlib.sha256()
        for a in self:
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]


def raw_splits(cfg: DatasetConfig) -> sources.RawSplits:
    """The dataset's raw (uint8) splits, as load_dataset reads them (n_train / n_test kept)."""
    if cfg.name == "synthetic":
        raw = make_synthetic(n_classes=cfg.n_classes)
    elif cfg.data_dir:
        raw = sources.read_from_dir(cfg.name, cfg.data_dir)
    else:
        raw = sources.read_from_tfds(cfg.name)
    n_tr = len(raw.y_train) if cfg.n_train is None else cfg.n_train
    n_te = len(raw.y_test) if cfg.n_test is None else cfg.n_test
    return raw._replace(x_train=raw.x_train[:n_tr], y_train=raw.y_train[:n_tr],
                        x_test=raw.x_test[:n_te], y_test=raw.y_test[:n_te])


def make_design(cfg: AuditConfig, labels: np.ndarray) -> Design:
    """U, H, the balanced member masks and the runs' seeds, all from cfg.seed."""
    k_universe, k_member, k_population, k_seeds = jax.random.split(
        jax.random.PRNGKey(cfg.seed), 4)
    try:
        u_idx, h_idx = audit.universe_and_population(k_universe, labels, cfg.universe,
                                                     cfg.dataset.n_classes)
    except ValueError as e:
        raise KipctlError(f"{cfg.dataset.name}: {e}") from None
    member, partner = audit.paired_membership(k_member, labels[u_idx], cfg.shadows)
    population_member = audit.paired_membership(k_population, labels[h_idx], cfg.shadows)[0]
    seeds = np.asarray(jax.random.randint(k_seeds, (cfg.shadows,), 0, 2 ** 31 - 1,
                                          dtype=np.int32), np.int64)  # [R]
    return Design(u_idx, h_idx, labels[u_idx], member, population_member, seeds, partner)


def _save_npz(path: Path, compressed: bool = True, **arrays) -> None:
    def w(tmp: str) -> None:
        with open(tmp, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(f, **arrays)
    atomic_write(path, w)


def save_or_check_design(path: Path, design: Design) -> None:
    """Writes design.npz, or checks that an existing one (a resumed audit) is identical."""
    if path.exists():
        with np.load(path) as f:
            if not set(Design._fields) <= set(f.files):
                raise KipctlError(f"{path} is an older audit's design (no member pairs); use a "
                                  "new hydra.run.dir")
            old = Design(*(f[k] for k in Design._fields))
        if old.digest() != design.digest():
            raise KipctlError(f"{path} holds another membership design than this config "
                              "draws; use a new hydra.run.dir")
        return
    _save_npz(path, **design._asdict())


def child_dataset_name(name: str) -> str:
    # `synthetic` is generated in memory whatever data_dir says; its subsets need a real name
    return "synthetic_subset" if name == "synthetic" else name


def write_dataset(folder: Path, x: np.ndarray, y: np.ndarray, test: Path) -> None:
    """<folder>/train.npz (x, y) and test.npz (a hard link to the shared test split)."""
    if not (folder / "train.npz").exists():
        _save_npz(folder / "train.npz", x=x, y=y)
    if not (folder / "test.npz").exists():
        folder.mkdir(parents=True, exist_ok=True)
        try:
            os.link(test, folder / "test.npz")
        except OSError:
            shutil.copyfile(test, folder / "test.npz")


class RunData(NamedTuple):
    members: DatasetConfig  # the run's members as a dataset (train split = members only)
    population: DatasetConfig  # its half of H (the null cell's only data)


def prepare_runs(cfg: AuditConfig, root: Path, raw: sources.RawSplits,
                 design: Design) -> list[RunData]:
    """Writes each run's members.npz and dataset directories (skipping existing files)."""
    test = root / "data" / "test.npz"
    if not test.exists():
        _save_npz(test, x=raw.x_test, y=raw.y_test)
    name = child_dataset_name(cfg.dataset.name)
    out = []
    for r in range(cfg.shadows):
        run = root / "runs" / f"r{r:02d}"
        m_idx = design.universe[design.member[r]]  # [u/2] training indices
        h_idx = design.population[design.population_member[r]]  # [u/2]
        if not (run / "members.npz").exists():
            _save_npz(run / "members.npz", compressed=False, seed=design.seeds[r],
                      member=design.member[r], population_member=design.population_member[r],
                      universe=design.universe, population=design.population)
        configs = []
        for kind, idx in (("members", m_idx), ("population", h_idx)):
            folder = run / "data" / kind
            write_dataset(folder / name, raw.x_train[idx], raw.y_train[idx], test)
            configs.append(dataclasses.replace(cfg.dataset, name=name, data_dir=str(folder),
                                               n_train=None, n_test=None))
        out.append(RunData(*configs))
    return out


# ------------------------------------------------------------------- one cell of one run


def make_kernel(cfg: AuditConfig) -> Kernel:
    return Kernel(cfg.kernel, cfg.x64)


def cell_name(cell: str, rho: float) -> str:
    """`value` is the target epsilon of a dp_kip cell, rho otherwise."""
    return f"dp_kip-eps{rho:g}" if cell == "dp_kip" else f"{cell}-rho{rho:g}"


def rho_of(cell: str, value: float) -> float:
    return 0.0 if cell == "dp_kip" else value


def _file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


class Support(NamedTuple):
    x: np.ndarray  # [m, H, W, C] float32, the run's preprocessed space
    y: np.ndarray  # [m, C]
    init_pos: np.ndarray  # [k] positions in U of the init images (empty: none from U)
    drift: float  # mean ||x - x0|| / ||x0|| over the support (nan: not distilled)
    mask: Optional[np.ndarray] = None  # [m, H, W, C] bool, the released frozen pixels
    eps_guarantee: float = float("nan")  # DP-KIP: the run's replace-one epsilon


def initial_support(dcfg, ds) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """A distill run's initial support (after rho-corruption) and, for init=image, the
    positions of its init images in ds's train split, drawn as pipelines.distill draws them
    (distill.run_keys(seed), in the run's own precision). Returns (x0 [m,H,W,C] float32,
    idx [m] or None).

    Raises:
      KipctlError: the recomputed init images are not rows of ds (distill's draw changed:
        the init / other split would be wrong).
    """
    with jax.enable_x64(bool(dcfg.x64)):
        keys = distill.run_keys(dcfg.seed)
        x0, _ = distill.init_support(keys.init, ds, dcfg, np.float32)
        x0 = np.asarray(x0, np.float32)  # [m,H,W,C]
        idx = None
        if dcfg.init == "image":
            idx = np.asarray(sample_indices(keys.init, ds.y_train, dcfg.support,
                                            ds.n_classes))  # [m]
            if not np.array_equal(x0, ds.x_train[idx].astype(np.float32)):
                raise KipctlError("could not identify the init images of a distill run (its "
                                  "init draw changed); the init/other split would be wrong")
        if dcfg.rho > 0:
            x0 = np.asarray(corrupt(keys.corrupt, x0, dcfg.rho, dcfg.corruption)[0],
                            np.float32)
    return x0, idx


def get_support(cfg: AuditConfig, design: Design, data: RunData, r: int, cell: str,
                rho: float, ds_members, ds_population, child: Optional[Path]) -> Support:
    """The support of one cell of run r (distilling it first if needed)."""
    member_pos = np.flatnonzero(design.member[r])  # [u/2] U positions, in train.npz order
    if cell in ("natural", "leak"):
        ds = ds_members
        if cell == "leak":
            idx = np.arange(len(ds.y_train))
        else:  # the kip cells' init images: natural and KIP supports are paired
            kip = cfg.distill_config("kip", 0.0, data.members, int(design.seeds[r]))
            idx = initial_support(kip, ds)[1]
        return Support(ds.x_train[idx], ds.targets("train")[idx], member_pos[idx],
                       float("nan"))
    ds = ds_population if cell == "null" else ds_members
    dcfg = cfg.distill_config(cell, rho, data.population if cell == "null" else data.members,
                              int(design.seeds[r]))
    container = config_dict(dcfg)
    try:
        execute(DISTILL, dcfg, container, RunDir(child, "distill"))
    except RunFailed as e:
        raise KipctlError(str(e)) from None
    sup = load_support(child / "support.npz", ds.n_classes, ds.x_train.shape[1:])
    if sup.images.shape[0] != cfg.support:
        raise KipctlError(f"{child}/support.npz has {sup.images.shape[0]} images, expected "
                          f"{cfg.support}")
    x0, idx = initial_support(dcfg, ds)  # [m,H,W,C], [m] or None
    frozen = sup.mask if sup.mask is not None else np.zeros(x0.shape, bool)
    if not np.allclose(sup.images[frozen], x0[frozen], rtol=0, atol=1e-6):
        raise KipctlError(f"{child}: the frozen pixels of the support do not match the "
                          "recomputed corrupted init images (distill's init draw changed)")
    # how far KIP moved the support from its initialisation (relative l2, mean over images)
    flat0 = x0.reshape(len(x0), -1)
    change = np.linalg.norm(sup.images.reshape(len(x0), -1) - flat0, axis=1)
    drift = float(np.mean(change / np.maximum(np.linalg.norm(flat0, axis=1), 1e-12)))
    init_pos = member_pos[idx] if idx is not None and cell != "null" else np.zeros(0, np.int64)
    dp = sup.meta.get("dp") or {}
    return Support(sup.images, sup.labels, init_pos, drift, sup.mask,
                   float(dp.get("epsilon_replace_one", float("nan"))))


def standardised(raw_x: np.ndarray, stats: preprocess.Stats) -> np.ndarray:
    """Raw images in a run's preprocessed space, exactly as its dataset was built
    (float32, like the support). [n,H,W,C]"""
    x = preprocess.standardize(raw_x, stats.mean, stats.std)
    if stats.zca is not None:
        x = preprocess.apply_zca(x, stats.zca)
    return np.asarray(x, np.float32)


def score_cell(cfg: AuditConfig, kernel: Kernel, sup: Support, x_u: np.ndarray,
               y_u: np.ndarray, ds, rho: float, member: np.ndarray,
               with_neighbours: bool) -> dict:
    """Per-example scores of U (higher = member) and the cell's KRR test accuracy."""
    n_classes = cfg.dataset.n_classes
    targets_u = preprocess.centered_one_hot(y_u, n_classes)  # [u, C]
    k_ss = kernel.matrix(sup.x)  # [m, m]
    k_us = kernel.matrix(x_u, sup.x)  # [u, m]
    k_ts = kernel.matrix(ds.x_test, sup.x)  # [n_test, m]
    k_uu = kernel.diag(x_u)  # [u]
    with precision(cfg.x64):
        fit = solve_krr(k_ss, np.asarray(sup.y, kernel.dtype), cfg.reg, cfg.solve)
        alpha = np.asarray(fit.alpha)  # [m, C]
    pred_u = k_us @ alpha  # [u, C]
    pred_t = k_ts @ alpha  # [n_test, C]
    acc = float(np.mean(pred_t.argmax(1) == ds.y_test))
    d = int(np.prod(x_u.shape[1:]))
    keep = audit.unfrozen_count(d, rho)
    nn_l2, _ = audit.nearest_sq_distance(x_u, sup.x)
    nn_trim = nn_l2 / d if keep >= d else audit.trimmed_nearest(x_u, sup.x, keep)[0]
    learned = (np.ones(sup.x.shape) if sup.mask is None else
               (~np.asarray(sup.mask, bool)).astype(np.float64))  # [m, H, W, C]
    # the margin of 9 one-pixel shifts of each x (KIP (a) saw shifted targets)
    views = np.stack([np.asarray(kernel.matrix(shift_view(x_u, di, dj), sup.x)) @ alpha
                      for di, dj in SHIFTS], axis=-1)  # [u, C, 9]
    margin_aug = np.stack([audit.margin(views[..., q], y_u) for q in range(len(SHIFTS))],
                          axis=-1)  # [u, 9]
    out = {"loss": -audit.squared_loss(pred_u, targets_u), "margin": audit.margin(pred_u, y_u),
           "margin_aug": margin_aug, "nn_l2": -nn_l2, "nn_trim": -nn_trim,
           "nn_certain": -audit.weighted_nearest(x_u, sup.x, audit.certain_weights(sup.x))[0],
           "nn_mask": -audit.weighted_nearest(x_u, sup.x, learned)[0],
           "nn_est": -audit.weighted_nearest(
               x_u, sup.x, audit.estimated_unfrozen(sup.x, rho if sup.mask is not None
                                                    else 0.0))[0],
           "eps_guarantee": np.float64(sup.eps_guarantee),
           "kernel_sim": audit.kernel_similarity(k_us, k_uu, np.diagonal(k_ss)),
           "test_accuracy": np.float64(acc), "drift": np.float64(sup.drift),
           "solve_fallback": np.float64(fit.method != "cholesky"),
           "init_pos": sup.init_pos}
    if with_neighbours:
        # each support image's nearest member of this run, by the mean squared difference
        # over its `keep` closest pixels (all pixels when rho = 0)
        pos = np.flatnonzero(member)  # [u/2]
        dist, idx = audit.trimmed_nearest(sup.x, x_u[pos], keep)
        out.update(nb_support=sup.x, nb_member=pos[idx], nb_dist=dist)
    return out


SHIFTS = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)]  # pixels, margin_aug's queries


def shift_view(x: np.ndarray, di: int, dj: int) -> np.ndarray:
    """x [n,H,W,C] moved by (di, dj) pixels, zero (the standardised mean) filled in, as KIP
    (a)'s augmentation fills. [n,H,W,C]"""
    out = np.zeros_like(x)
    h, w = x.shape[1:3]
    out[:, max(di, 0):h + min(di, 0), max(dj, 0):w + min(dj, 0)] = \
        x[:, max(-di, 0):h + min(-di, 0), max(-dj, 0):w + min(-dj, 0)]
    return out


def cell_scores(cfg: AuditConfig, kernel: Kernel, design: Design, data: RunData, r: int,
                cell: str, rho: float, run_dir: Path, raw_u: np.ndarray, cache: dict) -> dict:
    """Scores of one cell of run r: from runs/rXX/scores/ when cached for this support and
    scoring config, else computed (distilling first when needed) and cached."""
    child = None
    if cell in DISTILLED_CELLS:
        dcfg = cfg.distill_config(cell, rho, data.population if cell == "null" else data.members,
                                  int(design.seeds[r]))
        fp = config_fingerprint(DISTILL, config_dict(dcfg))[:8]
        child = run_dir / f"{cell_name(cell, rho)}-{fp}"
    path = run_dir / "scores" / f"{cell_name(cell, rho)}.npz"
    scoring = json.dumps({"kernel": dataclasses.asdict(cfg.kernel), "reg": cfg.reg,
                          "x64": cfg.x64, "design": design.digest(), "r": r, "rho": rho,
                          "neighbours": r == 0 and cfg.neighbours > 0,
                          "child": None if child is None else child.name}, sort_keys=True)
    done = child is None or RunDir(child).status() == "done"
    if path.exists() and done:
        with np.load(path) as f:
            if str(f["scoring"]) == scoring and (child is None or str(f["support_digest"]) ==
                                                 _file_digest(child / "support.npz")):
                return {k: f[k] for k in f.files}
    key = (r, "population" if cell == "null" else "members")
    if key not in cache:  # a run's datasets are loaded once, for all its cells
        cache.clear()
        ds_m = dataset_from_config(data.members)
        ds_h = dataset_from_config(data.population)
        cache.update({(r, "members"): ds_m, (r, "population"): ds_h})
    ds_m, ds_h = cache[(r, "members")], cache[(r, "population")]
    sup = get_support(cfg, design, data, r, cell, rho, ds_m, ds_h, child)
    ds = cache[key]
    x_u = standardised(raw_u, ds.stats)  # [u,H,W,C]
    scores = score_cell(cfg, kernel, sup, x_u, design.labels, ds, rho_of(cell, rho),
                        design.member[r],
                        with_neighbours=(r == 0 and cfg.neighbours > 0 and cell != "leak"))
    scores.update(scoring=np.asarray(scoring), mean=ds.stats.mean, std=ds.stats.std,
                  support_digest=np.asarray(_file_digest(child / "support.npz")
                                            if child is not None else ""))
    _save_npz(path, compressed=False, **scores)
    return scores


# ------------------------------------------------------------------- attacks


N_BOOT = 2000  # cluster-bootstrap draws of the rates (cheap: one einsum)
N_BOOT_AUC = 200  # of the AUC (one weighted Mann-Whitney per draw)
N_BOOT_GATE = 2000  # of the null cell's AUC, at a Bonferroni-adjusted level


def cell_attacks(cfg: AuditConfig, per_run: list[dict], member: np.ndarray) -> dict:
    """Every attack's scores [R, u] of one cell: the raw scores (margin_aug: the mean over its
    shifted queries) and LiRA offline / online on each (margin_aug: over its queries)."""
    lira_key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 0x7117A)
    out = {}
    for name in cfg.attacks:
        mode, _, score = name.rpartition(":")
        raw = np.stack([np.asarray(p[score], np.float64) for p in per_run])  # [R, u(, q)]
        if not mode:
            out[name] = raw.mean(axis=-1) if raw.ndim == 3 else raw
        else:
            out[name] = audit.lira_scores(raw, member, mode == "lira_online", lira_key)
    return out


def _point(sc, positive, negative, select, max_fpr):
    """Held-out operating point: threshold on the selection runs, rates on the others.
    Returns (flags of the evaluation runs [R, u], tp, fp, n_pos, n_neg, (TPR, FPR) on the
    selection runs)."""
    use_s = (positive | negative) & select[:, None]
    hit = audit.flagged(sc, audit.heldout_threshold(sc[use_s], positive[use_s], max_fpr))
    ev = ~select
    flag = hit & ev[:, None]
    tp, fp = int(np.sum(flag & positive)), int(np.sum(flag & negative))
    n_pos, n_neg = int(np.sum(positive & ev[:, None])), int(np.sum(negative & ev[:, None]))
    sel_flag = hit & select[:, None]
    sel = (np.sum(sel_flag & positive) / max(np.sum(positive & select[:, None]), 1),
           np.sum(sel_flag & negative) / max(np.sum(negative & select[:, None]), 1))
    return flag, tp, fp, n_pos, n_neg, sel


def attack_rows(cfg: AuditConfig, cell: str, rho: float, per_run: list[dict],
                design: Design, select: np.ndarray) -> tuple[list[dict], dict, dict]:
    """audit.csv rows of one (cell, value): every attack x member group (all members; the
    init images; the other members). Thresholds, operating points and the strongest attack
    are chosen on the selection runs; every figure is measured on the evaluation runs, with
    two-way (runs x images) cluster-bootstrap intervals.

    Returns (rows, attack scores [R, u] by name, ROC of the strongest attack on all members
    (evaluation runs)).
    """
    member = design.member
    runs, n = member.shape
    attacks = cell_attacks(cfg, per_run, member)
    init = np.zeros((runs, n), bool)  # [R, u]
    for r, p in enumerate(per_run):
        init[r, np.asarray(p["init_pos"], np.int64)] = True
    if np.any(init & ~member):
        raise KipctlError(f"{cell}: an init image is not a member of its run (design bug)")
    groups = [("all", member)]
    if init.any() and (member & ~init).any():
        groups += [("init", init), ("other", member & ~init)]
    acc = np.array([float(p["test_accuracy"]) for p in per_run])
    drift = np.array([float(p["drift"]) for p in per_run])
    guarantee = float(np.nanmax([float(p.get("eps_guarantee", np.nan)) for p in per_run]
                                + [np.nan])) if cell == "dp_kip" else np.nan
    base = {"cell": cell, "rho": rho_of(cell, rho),
            "dp_epsilon": rho if cell == "dp_kip" else np.nan,
            "eps_guarantee": guarantee, "test_accuracy": float(acc.mean()),
            "test_accuracy_std": float(acc.std()),
            "support_drift": float(np.mean(drift)) if np.isfinite(drift).all() else np.nan}
    key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 0xB007)
    ev = ~select
    boot = audit.cluster_bootstrap(key, int(ev.sum()), n, N_BOOT)
    boot_auc = audit.Bootstrap(boot.runs[:N_BOOT_AUC], boot.items[:N_BOOT_AUC])
    one_run = audit.audit_one_run(attacks, member, design.partner, select, cfg.confidence)
    negative = ~member
    rows, rocs = [], {}
    for group, positive in groups:
        group_rows = []
        use_e = (positive | negative) & ev[:, None]  # the group's pairs, evaluation runs
        use_s = (positive | negative) & select[:, None]  # and selection runs
        for name, sc in attacks.items():
            roc = audit.roc_curve(sc[use_e], positive[use_e])
            sel_auc = audit.roc_auc(audit.roc_curve(sc[use_s], positive[use_s]))
            auc_b = audit.bootstrap_auc(sc[ev], positive[ev], negative[ev], boot_auc)
            row = {**base, "members": group, "attack": name, "n_members": roc.n_pos,
                   "n_nonmembers": roc.n_neg, "auc": audit.roc_auc(roc)}
            row["auc_lo"], row["auc_hi"] = audit.interval(auc_b, cfg.confidence)
            best_sel, sel_key = None, {}
            for fkey, max_fpr in FPR_POINTS.items():
                flag, tp, fp, n_pos, n_neg, sel = _point(sc, positive, negative, select,
                                                         max_fpr)
                tpr_b, fpr_b = audit.bootstrap_rates(flag[ev], positive[ev], negative[ev], boot)
                lo, hi = audit.interval(tpr_b, cfg.confidence)
                row.update({f"tpr_at_{fkey}_fpr": tp / n_pos, f"tpr_at_{fkey}_fpr_lo": lo,
                            f"tpr_at_{fkey}_fpr_hi": hi, f"fpr_{fkey}": fp / n_neg})
                sel_key[fkey] = sel[0]
                floor = 1.0 / max(n_neg, 1)
                sel_eps = float(audit.empirical_epsilon(sel[0], sel[1], floor))
                if best_sel is None or sel_eps > best_sel[0]:
                    eps_b = audit.empirical_epsilon(tpr_b, fpr_b, floor)
                    best_sel = (sel_eps, float(audit.empirical_epsilon(tp / n_pos, fp / n_neg,
                                                                       floor)),
                                *audit.interval(eps_b, cfg.confidence), fkey)
            row["eps_empirical"], row["eps_empirical_lo"], row["eps_empirical_hi"] = \
                best_sel[1:4]
            row["eps_empirical_at"] = best_sel[4]
            # the certified bound is the cell's (one attack and k, chosen on the selection
            # runs): on every all-members row, with the attack that gave it
            row["eps_lower_bound"] = one_run.epsilon if group == "all" else np.nan
            row["eps_lower_bound_attack"] = one_run.attack if group == "all" else ""
            if cell == "null" and group == "all":
                level = 1.0 - (1.0 - cfg.confidence) / len(attacks)  # Bonferroni over attacks
                gate_b = audit.Bootstrap(boot.runs[:N_BOOT_GATE], boot.items[:N_BOOT_GATE])
                row["gate_ok"] = audit.null_gate(sc, positive, negative, select, gate_b,
                                                 level)[0]
            group_rows.append((row, roc, (best_sel[0], sel_key["0p1pct"], sel_key["1pct"],
                                          sel_auc)))
        # the strongest attack, chosen on the selection runs: the largest empirical epsilon
        # (a TPR at a low FPR means little when that FPR came out higher: on the null cell
        # the highest TPR at 0.1 % belonged to an attack at 0.67 % FPR), then TPR at 0.1 %
        # FPR, at 1 %, then AUC
        best = max(range(len(group_rows)), key=lambda i: group_rows[i][2])
        for i, (row, roc, _) in enumerate(group_rows):
            row["strongest"] = i == best
            rows.append(row)
        if group == "all":
            rocs = {"attack": group_rows[best][0]["attack"], "roc": group_rows[best][1],
                    "one_run": one_run._asdict()}
    return rows, attacks, rocs


def sanity(rows: list[dict]) -> dict:
    """The gates: the null cell at chance for every attack (its AUC's and its TPR - FPR's
    cluster-bootstrap intervals at a Bonferroni-adjusted level cover 0.5 and 0, both sides),
    the leak cell found by nn_l2, and no dp_kip attack measuring more than the guarantee."""
    out: dict = {}
    null = [r for r in rows if r["cell"] == "null" and r["members"] == "all"]
    if null:
        out["sanity/null_max_auc"] = max(r["auc"] for r in null)
        out["sanity/null_min_auc"] = min(r["auc"] for r in null)
        failed = [r["attack"] for r in null if not r.get("gate_ok", True)]
        out["sanity/null_failed_attacks"] = ", ".join(failed)
        out["sanity/null_ok"] = not failed
    leak = [r for r in rows if r["cell"] == "leak" and r["members"] == "all"
            and r["attack"] == "nn_l2"]
    if leak:
        out["sanity/leak_nn_l2_auc"] = leak[0]["auc"]
        out["sanity/leak_ok"] = bool(leak[0]["auc"] >= 0.99)
    dp = [r for r in rows if r["cell"] == "dp_kip"]
    if dp:
        over = [f"{r['attack']} ({r['members']}, eps {r['dp_epsilon']:g}: empirical "
                f"{r['eps_empirical']:.2f} [{r['eps_empirical_lo']:.2f}, "
                f"{r['eps_empirical_hi']:.2f}], certified {r['eps_lower_bound']:.2f} > "
                f"guarantee {r['eps_guarantee']:.2f})" for r in dp
                if r["eps_empirical_lo"] > r["eps_guarantee"]
                or (np.isfinite(r["eps_lower_bound"])
                    and r["eps_lower_bound"] > r["eps_guarantee"])]
        out["sanity/dp_over_guarantee"] = "; ".join(over)
        out["sanity/dp_ok"] = not over
        for eps in sorted({r["dp_epsilon"] for r in dp}):
            cell = [r for r in dp if r["dp_epsilon"] == eps]
            top = max(cell, key=lambda r: r["eps_empirical"])
            out[f"sanity/dp_eps{eps:g}_max_empirical"] = top["eps_empirical"]
            out[f"sanity/dp_eps{eps:g}_guarantee"] = top["eps_guarantee"]
    return out


def read_audit_csv(path) -> pd.DataFrame:
    """audit.csv as written: the cell named `null` stays a string (pandas' default NA
    markers would turn it into NaN); only empty fields are missing values."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


# ------------------------------------------------------------------- figures


def _pyplot():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    return plt


def _save_figure(fig, stem: Path) -> list[Path]:
    written = []
    for ext in ("png", "pdf"):
        path = stem.with_suffix(f".{ext}")
        atomic_write(path, lambda tmp, e=ext: fig.savefig(tmp, format=e, dpi=130))
        written.append(path)
    _pyplot().close(fig)
    return written


def draw_roc(rocs: dict, caption: str, stem: Path) -> list[Path]:
    """Log-log ROC of the strongest attack (all members) per cell, chance as a diagonal."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    for label, item in rocs.items():
        roc = item["roc"]
        keep = roc.fpr > 0
        ax.plot(roc.fpr[keep], roc.tpr[keep], label=f"{label} ({item['attack']}, "
                f"AUC {audit.roc_auc(roc):.3f})", lw=1.2)
    lo = 1.0 / max(max(item["roc"].n_neg for item in rocs.values()), 1)
    ax.plot([lo, 1], [lo, 1], "k--", lw=0.8, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, 1)
    ax.set_ylim(lo, 1.05)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=6, loc="lower right")
    ax.set_title(caption, fontsize=7, wrap=True)
    fig.tight_layout()
    return _save_figure(fig, stem)


def draw_privacy_utility(table: pd.DataFrame, caption: str, stem: Path) -> list[Path]:
    """TPR at 0.1% FPR of the strongest attack on all members (evaluation runs, bootstrap
    interval) against the cell's KRR test accuracy, one point per cell x rho / epsilon."""
    plt = _pyplot()
    df = table[(table.members == "all") & table.strongest]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for cell, d in df.groupby("cell", sort=False):
        y = 100 * d.tpr_at_0p1pct_fpr
        err = [100 * (d.tpr_at_0p1pct_fpr - d.tpr_at_0p1pct_fpr_lo).clip(lower=0),
               100 * (d.tpr_at_0p1pct_fpr_hi - d.tpr_at_0p1pct_fpr).clip(lower=0)]
        ax.errorbar(100 * d.test_accuracy, y, yerr=err, fmt="o", ms=4, capsize=2, label=cell)
        for _, r in d.iterrows():
            tag = (f"eps {r.dp_epsilon:g}" if cell == "dp_kip" else
                   f"rho {r.rho:g}" if cell == "kip_rho" else "")
            if tag:
                ax.annotate(tag, (100 * r.test_accuracy, 100 * r.tpr_at_0p1pct_fpr),
                            fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.axhline(0.1, color="k", ls="--", lw=0.8, label="chance (TPR = FPR = 0.1%)")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylim(0, 150)
    ax.set_xlabel("KRR test accuracy of the support (%)")
    ax.set_ylabel("TPR at 0.1% FPR, strongest attack (%)")
    ax.legend(fontsize=6)
    ax.set_title(caption + "; privacy-utility", fontsize=6, wrap=True)
    fig.tight_layout()
    return _save_figure(fig, stem)


def vulnerability(table: pd.DataFrame, arrays: dict, design: Design, pairs, failed,
                  top: int = 8) -> pd.DataFrame:
    """The most exposed examples of each cell under its strongest attack on all members: the
    gap between an example's mean within-run percentile rank in the runs where it was a member
    and where it was not (per-example vulnerability; 1 = always ranked first as a member and
    last as a non-member; at chance the top 8 of 4000 reach ~0.5 with 16 runs)."""
    out = []
    for cell, rho in pairs:
        if (cell, rho) in failed:
            continue
        name = cell_name(cell, rho)
        row = table[(table.cell == cell) & (table.members == "all") & table.strongest]
        row = row[(row.dp_epsilon == rho) if cell == "dp_kip" else (row.rho == rho)]
        if row.empty:
            continue
        attack = row.attack.iloc[0]
        sc = np.asarray(arrays[f"{name}__{attack}"], np.float64)  # [R, u]
        # within-run percentile ranks: heavy-tailed scores (a LiRA ratio with a small pooled
        # std) cannot let one run dominate an example's mean
        z = np.stack([audit.percentile_ranks(row) for row in sc])  # [R, u] in [0, 1]
        m = design.member
        gap = (np.sum(z * m, 0) / np.maximum(m.sum(0), 1)
               - np.sum(z * ~m, 0) / np.maximum((~m).sum(0), 1))  # [u]
        init = arrays[f"{name}__init"].sum(axis=0)  # [u]
        for pos in np.argsort(-gap, kind="stable")[:top]:
            out.append({"cell": cell, "rho": rho_of(cell, rho),
                        "dp_epsilon": rho if cell == "dp_kip" else np.nan, "attack": attack,
                        "universe_pos": int(pos), "train_index": int(design.universe[pos]),
                        "label": int(design.labels[pos]), "gap": float(gap[pos]),
                        "member_runs": int(m[:, pos].sum()), "init_runs": int(init[pos])})
    return pd.DataFrame(out)


def draw_vulnerable(df: pd.DataFrame, x_train: np.ndarray, caption: str, stem: Path
                    ) -> list[Path]:
    """The most exposed training images of each cell, one row per cell x rho / epsilon."""
    if df.empty:
        return []
    plt = _pyplot()
    keys = list(dict.fromkeys(zip(df.cell, df.rho, df.dp_epsilon.fillna(-1))))
    top = int(df.groupby(["cell", "rho", "dp_epsilon"], dropna=False).size().max())
    fig, axes = plt.subplots(len(keys), top, figsize=(1.1 * top, 1.25 * len(keys) + 0.6),
                             squeeze=False)
    for i, (cell, rho, eps) in enumerate(keys):
        d = df[(df.cell == cell) & (df.rho == rho) & (df.dp_epsilon.fillna(-1) == eps)]
        for j in range(top):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(d):
                ax.axis("off")
                continue
            r = d.iloc[j]
            img = x_train[int(r.train_index)].astype(np.float64) / 255.0
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"gap {r.gap:.2f}" + (f", init {r.init_runs}" if r.init_runs else ""),
                         fontsize=5)
            if j == 0:
                tag = f"eps {eps:g}" if cell == "dp_kip" else f"rho {rho:g}"
                ax.set_ylabel(f"{cell}\n{tag}\n{r.attack}", fontsize=5)
    fig.suptitle(caption + "; most exposed examples (gap: mean within-run percentile rank of "
                 "the attack score as a member minus as a non-member; init: runs that started "
                 "from it)", fontsize=6, wrap=True)
    fig.tight_layout()
    return _save_figure(fig, stem)


def draw_neighbours(panels: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
                    caption: str, stem: Path, per_row: int = 10) -> list[Path]:
    """Each support image (left) beside its nearest member (right), sorted by distance;
    one panel per cell. panels: (title, support [k,H,W,C], member [k,H,W,C] in [0,1], dist)."""
    plt = _pyplot()
    h, w, c = panels[0][1].shape[1:]
    gap, pair_gap = 1, max(2, w // 5)  # narrow inside a pair, wide between pairs
    stride = 2 * w + gap + pair_gap
    width = 9.0  # inches; each panel as tall as its mosaic's aspect needs, plus a title
    rows_of = [max(1, -(-len(p[1]) // per_row)) for p in panels]
    heights = [width * r * (h + gap) / (per_row * stride) + 0.3 for r in rows_of]
    fig, axes = plt.subplots(len(panels), 1, figsize=(width, sum(heights) + 0.6),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (title, sup, mem, dist), rows in zip(axes[:, 0], panels, rows_of):
        tile = np.ones((rows * (h + gap), per_row * stride, c))  # white background
        for i in range(len(sup)):
            y0, x0 = (i // per_row) * (h + gap), (i % per_row) * stride
            tile[y0:y0 + h, x0:x0 + w] = sup[i]
            tile[y0:y0 + h, x0 + w:x0 + w + gap] = 0.5  # grey inside a pair
            tile[y0:y0 + h, x0 + w + gap:x0 + 2 * w + gap] = mem[i]
        ax.imshow(tile[..., 0] if c == 1 else tile, cmap="gray" if c == 1 else None,
                  vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{title}: distance to the nearest member (mean squared difference over "
                     f"the (1 - rho) d closest pixels): median {np.median(dist):.3g}, "
                     f"min {np.min(dist):.3g}", fontsize=7)
    fig.suptitle(caption, fontsize=7, wrap=True)
    fig.tight_layout()
    return _save_figure(fig, stem)


# ------------------------------------------------------------------- the command


def run(cfg: AuditConfig, rundir: RunDir) -> dict:
    started = time.time()
    root = rundir.path
    raw = raw_splits(cfg.dataset)
    n_classes = cfg.dataset.n_classes
    if raw.y_train.size and (raw.y_train.min() < 0 or raw.y_train.max() >= n_classes):
        raise KipctlError(f"{cfg.dataset.name} labels exceed n_classes={n_classes}")
    design = make_design(cfg, raw.y_train)
    save_or_check_design(root / "design.npz", design)
    data = prepare_runs(cfg, root, raw, design)
    raw_u = raw.x_train[design.universe]  # [u,H,W,C] uint8
    kernel = make_kernel(cfg)
    pairs = cfg.cell_rhos()
    units = [(r, cell, rho) for r in range(cfg.shadows) for cell, rho in pairs]
    log.info("audit: %d runs x %d cells = %d units (universe %d, support %d) in %s",
             cfg.shadows, len(pairs), len(units), cfg.universe, cfg.support, root)
    if cfg.dry_run:
        estimate_units(cfg, kernel, design, data, units, root, raw_u)
    per_cell: dict = {p: [None] * cfg.shadows for p in pairs}
    failed: dict = {}
    cache: dict = {}
    bar = progress(len(units), "audit", unit="cell")
    for r, cell, rho in units:
        bar.set_postfix_str(f"run {r} {cell_name(cell, rho)}")
        t0 = time.time()
        try:
            per_cell[(cell, rho)][r] = cell_scores(cfg, kernel, design, data[r], r, cell, rho,
                                                   root / "runs" / f"r{r:02d}", raw_u, cache)
        except KipctlError as e:
            log.error("run %d %s failed: %s", r, cell_name(cell, rho), e)
            failed.setdefault((cell, rho), []).append(f"r{r:02d}: {e}")
        log.info("run %d %s: %.1f s", r, cell_name(cell, rho), time.time() - t0)
        bar.update(1)
    bar.close()

    rows, arrays, rocs, panels = [], {}, {}, []
    select = audit.split_runs(jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 0x5E1EC7),
                              cfg.shadows)
    for cell, rho in pairs:
        if (cell, rho) in failed:
            continue
        name = cell_name(cell, rho)
        cell_rows, attacks, roc = attack_rows(cfg, cell, rho, per_cell[(cell, rho)], design,
                                              select)
        rows += cell_rows
        rocs[name] = roc
        for key, value in attacks.items():
            arrays[f"{name}__{key}"] = value.astype(np.float32)
        init = np.zeros(design.member.shape, bool)
        for r, p in enumerate(per_cell[(cell, rho)]):
            init[r, np.asarray(p["init_pos"], np.int64)] = True
        arrays[f"{name}__init"] = init
        first = per_cell[(cell, rho)][0]
        if "nb_support" in first:
            panels.append((name, first))
    if not rows:
        raise KipctlError(f"every cell failed: {'; '.join(sum(failed.values(), []))[:500]}")

    table = pd.DataFrame(rows)[CSV_COLUMNS]
    write_csv(rundir / "audit.csv", table)
    _save_npz(rundir / "scores.npz", universe=design.universe, labels=design.labels,
              member=design.member, seeds=design.seeds, partner=design.partner,
              selection_runs=select, **arrays)
    caption = (f"kipctl audit, {cfg.dataset.name}, kernel {cfg.kernel.name}, support "
               f"{cfg.support}, universe {cfg.universe}, {cfg.shadows} runs, KIP "
               f"{cfg.distill.steps} steps x {cfg.distill.target_batch} member targets; "
               f"test split n={len(raw.y_test)}; runs {', '.join(map(str, np.flatnonzero(select)))}"
               " select thresholds and attacks, the other runs are measured")
    strongest = table[table.strongest].drop(columns="strongest")
    tables.write_table(strongest, rundir / "table", caption=caption + "; strongest attack "
                       "per cell and member group (all rows: audit.csv)")
    draw_roc(rocs, caption, rundir / "roc")
    draw_privacy_utility(table, caption, rundir / "privacy_utility")
    vulnerable = vulnerability(table, arrays, design, pairs, failed)
    write_csv(rundir / "vulnerable.csv", vulnerable)
    draw_vulnerable(vulnerable, raw.x_train, caption, rundir / "vulnerable")
    if panels:
        draw_neighbours([_panel(cfg, name, p, raw_u) for name, p in panels],
                        caption + "; run 0: support image | nearest member",
                        rundir / "neighbours")

    metrics: dict = {"n_runs": cfg.shadows, "n_cells": len(pairs), "n_units": len(units),
                     "n_failed_cells": len(failed), "universe": cfg.universe,
                     "support": cfg.support, "wall_seconds": round(time.time() - started, 1)}
    # KRR solves of the supports that needed a larger ridge (docs/precision.md); None when
    # some cached scores predate the count
    flags = [p.get("solve_fallback") for ps in per_cell.values() for p in ps if p is not None]
    metrics["solve_fallbacks"] = (None if any(f is None for f in flags)
                                  else int(sum(float(f) for f in flags)))
    if metrics["solve_fallbacks"]:
        log.warning("%d of %d support KRR solves did not factor at reg=%g and used a larger "
                    "ridge (solve=%s)", metrics["solve_fallbacks"], len(flags), cfg.reg,
                    cfg.solve)
    # the strongest attack of each cell x rho x member group, nested: one dict-valued metric
    # (kipctl report collects scalar metrics only; ~100 columns per run would swamp it)
    metrics["strongest"] = {
        f"{row['cell']}/rho{row['rho']:g}/{row['members']}": {
            "attack": row["attack"], **{col: row[col] for col in (
                "auc", "tpr_at_1pct_fpr", "tpr_at_0p1pct_fpr", "eps_empirical",
                "eps_lower_bound", "eps_guarantee", "test_accuracy")}}
        for row in rows if row["strongest"]}
    metrics["certified"] = {name: item["one_run"] for name, item in rocs.items()}
    checks = sanity(rows)
    metrics.update(checks)
    gates = {"null": (checks.get("sanity/null_ok"), "an attack is off chance on the null "
                      f"cell (biased attack or design): {checks.get('sanity/null_failed_attacks')}"),
             "leak": (checks.get("sanity/leak_ok"), "nn_l2 does not find the leak cell's "
                      f"members (AUC {checks.get('sanity/leak_nn_l2_auc')})"),
             "dp": (checks.get("sanity/dp_ok"), "an attack measures more than the DP "
                    f"guarantee (a bug in DP-KIP or in the audit): "
                    f"{checks.get('sanity/dp_over_guarantee')}")}
    broken = [msg for ok, msg in gates.values() if ok is False]
    if broken and not failed:
        err = KipctlError("audit gate failed: " + "; ".join(broken) + f" (tables in {root})")
        err.metrics = metrics
        raise err
    if failed:
        err = KipctlError(f"{len(failed)} cell(s) failed in some run: "
                          + "; ".join(f"{cell_name(*k)} ({v[0]})" for k, v in failed.items()))
        err.metrics = metrics
        raise err
    return metrics


def estimate_units(cfg: AuditConfig, kernel: Kernel, design: Design, data: list[RunData],
                   units: list, root: Path, raw_u: np.ndarray) -> None:
    """dry_run: the estimate of a fresh audit's cell units. Run 0's unit of every cell is
    timed: a distilled cell by its distill child's own dry run plus the scoring of a natural
    unit (scored for real), natural and leak by scoring them. Raises estimate.DryRun; the
    attack tables that follow the units are not included."""
    groups: dict = {}
    for r, cell, rho in units:
        groups.setdefault((cell, rho), []).append(r)
    run0 = root / "runs" / "r00"
    cache: dict = {}

    def scored(cell: str) -> float:
        t0 = time.time()
        cell_scores(cfg, kernel, design, data[0], 0, cell, 0.0, run0, raw_u, cache)
        return time.time() - t0
    score_s = scored("natural")
    total = 0.0
    bar = progress(len(groups), "audit dry run", unit="cell")
    for (cell, rho), runs in groups.items():
        if cell in DISTILLED_CELLS:
            dcfg = cfg.distill_config(cell, rho, data[0].population if cell == "null"
                                      else data[0].members, int(design.seeds[0]))
            seconds, line = estimate(DISTILL, dataclasses.replace(dcfg, dry_run=True),
                                     "distill")
            log.info("%s: %s", cell_name(cell, rho), line)
            each = seconds + score_s
        else:
            each = score_s if cell == "natural" else scored(cell)
        total += each * len(runs)
        bar.update(1)
    bar.close()
    announce("audit", len(units), f"cell units ({len(groups)} cells x {cfg.shadows} runs; a "
             "fresh run, the attack tables after them not included)",
             total / max(len(units), 1), dry_run=True)


def _panel(cfg: AuditConfig, name: str, p: dict, raw_u: np.ndarray):
    from kip_runner.paper.figures import display_images  # noqa: PLC0415 (matplotlib: lazy)

    meta = {"preprocessing": cfg.dataset.preprocessing, "mean": p["mean"].tolist(),
            "std": p["std"].tolist()}
    order = np.argsort(p["nb_dist"], kind="stable")[:cfg.neighbours]  # closest first
    sup = display_images(p["nb_support"][order], meta)  # [k,H,W,C] in [0, 1]
    member = raw_u[p["nb_member"][order]].astype(np.float64) / 255.0  # [k,H,W,C], as stored
    return name, sup, member, p["nb_dist"][order]
