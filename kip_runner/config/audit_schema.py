"""Typed config of `kipctl audit` (issue #15; docs/audit.md) and its validation.

Kept apart from schema.py (which only calls `register_audit` from its `register`): the audit
reuses the shared schemas (kernel, dataset, the scale-invariant ridge) and builds one
DistillConfig per distilled cell, so bad pass-through values fail before anything is written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore

from kip_runner.config.schema import (CommonConfig, DatasetConfig, DistillConfig, DpOptions,
                                      _check,
                                      check_at_least_classes, check_rho, check_single_kernel,
                                      set_fields)
from kip_runner.core.corrupt import CORRUPTIONS

# natural: a class-balanced subset of the members (the kip cells' init images);
# kip: KIP, image init; kip_noise: KIP, noise init; kip_rho: KIP_rho (a), one per rho;
# null: KIP (image init) from the population H only (sanity: nothing about U can leak);
# leak: the support is every member image (sanity: nearest-image attacks must win);
# dp_kip: DP-KIP from noise init, one per dp_epsilons (the positive control: no attack may
# measure more than its guarantee).
AUDIT_CELLS = ("natural", "kip", "kip_noise", "kip_rho", "null", "leak", "dp_kip")
DISTILLED_CELLS = ("kip", "kip_noise", "kip_rho", "null", "dp_kip")
# Per-example scores, higher = member (core.audit): -loss, margin, margin_aug (the margin
# averaged over 9 one-pixel shifts of x), -nn_l2, -nn_trim, -nn_certain (only pixels outside
# the noise range), -nn_mask (only the released mask's learned pixels), -nn_est (pixels
# weighted by their estimated probability of being learned), kernel_sim.
AUDIT_SCORES = ("loss", "margin", "margin_aug", "nn_l2", "nn_trim", "nn_certain", "nn_mask",
                "nn_est", "kernel_sim")
# LiRA (offline / online, the other runs as shadows) on every score; on margin_aug over its 9
# shifted queries
LIRA_ATTACKS = tuple(f"lira_{mode}:{score}" for mode in ("offline", "online")
                     for score in AUDIT_SCORES)
AUDIT_ATTACKS = AUDIT_SCORES + LIRA_ATTACKS


@dataclass
class AuditDistillOptions:
    """audit `distill.*`: passed to every distilled cell's DistillConfig (None = the child's
    default). Whether a cell augments (kip_rho only), its init and rho come from the cell."""

    steps: int = 300
    target_batch: int = 1000
    lr: Optional[float] = None
    aug_flip: Optional[bool] = None
    aug_shift: Optional[float] = None
    aug_rotate: Optional[float] = None
    aug_channel_shift: Optional[float] = None
    log_every: Optional[int] = None
    ckpt_every: Optional[int] = None
    x64: Optional[bool] = None


@dataclass
class AuditConfig(CommonConfig):
    """kipctl audit: membership inference and nearest-image leakage of KIP / KIP_rho supports.

    `universe` examples U (class-balanced) and a disjoint population H of the same size are
    drawn from the training split; run r of `shadows` distils from its members (a balanced
    half of U, fixed before any distillation) and every x in U is scored under every run.
    `x64` is the precision of the scoring (kernel matrices, KRR solve); the distillations
    train in float32 (distill.x64).
    """

    support: int = 100
    universe: int = 4000
    shadows: int = 16
    # Optional: YAML and Hydra's override grammar read a bare `null` as None; it means the
    # `null` cell (normalised in __post_init__), so `cells=[kip,null]` works unquoted
    cells: list[Optional[str]] = field(default_factory=lambda: list(AUDIT_CELLS))
    rhos: list[float] = field(default_factory=lambda: [0.0, 0.5, 0.75, 0.9])  # kip_rho only
    dp_epsilons: list[float] = field(default_factory=lambda: [1.0, 8.0])  # dp_kip only
    dp_delta: float = 1e-5
    dp_clip: float = 0.1
    # dp_kip's expected Poisson batch of member targets (per-example gradients cost ~100x a
    # plain step; 100 of 2000 members is q = 0.05); None: distill.target_batch
    dp_target_batch: Optional[int] = 100
    corruption: str = "noise"  # noise | zero, kip_rho's frozen coordinates
    attacks: list[str] = field(default_factory=lambda: list(AUDIT_ATTACKS))
    confidence: float = 0.95  # bootstrap intervals, the certified epsilon bound, the gates
    neighbours: int = 100  # support images per cell in neighbours.png (run 0); 0: no figure
    distill: AuditDistillOptions = field(default_factory=AuditDistillOptions)
    # time one unit of each cell (a distill child's own dry run + scoring), print the estimated
    # total of a fresh audit, exit
    dry_run: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cells = ["null" if c is None else str(c) for c in self.cells]
        check_single_kernel(self.kernel, "audit")
        n_classes = self.dataset.n_classes
        _check(self.shadows >= 2, f"shadows must be >= 2 (LiRA's balanced design needs runs "
               f"with and without each example), got {self.shadows}")
        check_at_least_classes(self.support, n_classes)
        _check(self.universe >= 2 * n_classes and self.universe % (2 * n_classes) == 0,
               f"universe={self.universe} is not class-balanced: it must be a multiple of "
               f"2 x n_classes = {2 * n_classes} (each class splits into member / non-member "
               "pairs)")
        per_class = self.universe // (2 * n_classes)  # members of each class in every run
        _check(-(-self.support // n_classes) <= per_class,
               f"universe={self.universe} is too small for support={self.support}: each run "
               f"distils from universe/2 = {self.universe // 2} members ({per_class} per "
               f"class) and a class-balanced support of {self.support} needs "
               f"{-(-self.support // n_classes)} per class")
        for name, values, allowed in (("cells", self.cells, AUDIT_CELLS),
                                      ("attacks", self.attacks, AUDIT_ATTACKS)):
            _check(len(values) > 0, f"{name} is empty; choose from {', '.join(allowed)}")
            bad = [v for v in values if v not in allowed]
            _check(not bad, f"unknown {name[:-1]} {bad}; choose from {', '.join(allowed)}")
            _check(len(set(values)) == len(values), f"{name} has duplicates: {values}")
        if "kip_rho" in self.cells:
            _check(len(self.rhos) > 0, "rhos is empty but cells has kip_rho; e.g. "
                   "rhos=[0,0.5,0.75,0.9]")
            _check(len(set(map(float, self.rhos))) == len(self.rhos),
                   f"rhos has duplicates: {self.rhos}")
        for rho in self.rhos:
            check_rho(rho, "every rho in rhos")
        _check(self.corruption in CORRUPTIONS,
               f"corruption must be one of {', '.join(CORRUPTIONS)}, got '{self.corruption}'")
        _check(0.5 < self.confidence < 1.0,
               f"confidence must lie in (0.5, 1), got {self.confidence}")
        _check(self.neighbours >= 0, f"neighbours must be >= 0, got {self.neighbours}")
        if any(c in DISTILLED_CELLS for c in self.cells):
            tb = self.distill.target_batch
            _check(-(-tb // n_classes) <= per_class,
                   f"distill.target_batch={tb} needs {-(-tb // n_classes)} members per class "
                   f"but each run has {per_class} (universe/2 = {self.universe // 2} members); "
                   "lower distill.target_batch or raise universe")
            # building one child validates the pass-through options (steps, lr, ...)
            self.distill_config("kip_rho", max(self.rhos or [0.0]), self.dataset, 0)
        if "dp_kip" in self.cells:
            _check(len(self.dp_epsilons) > 0 and all(e > 0 for e in self.dp_epsilons),
                   f"dp_epsilons must be positive values, got {self.dp_epsilons}")
            _check(len(set(map(float, self.dp_epsilons))) == len(self.dp_epsilons),
                   f"dp_epsilons has duplicates: {self.dp_epsilons}")
            _check(self.dp_target_batch is None or
                   self.dp_target_batch <= self.universe // 2,
                   f"dp_target_batch={self.dp_target_batch} exceeds the universe/2 = "
                   f"{self.universe // 2} members of a run")
            self.distill_config("dp_kip", float(self.dp_epsilons[0]), self.dataset, 0)

    def cell_rhos(self) -> list[tuple[str, float]]:
        """The audited (cell, value) pairs in order: value is rho for kip_rho, the target
        epsilon for dp_kip, 0 for every other cell."""
        return [(c, float(r)) for c in self.cells
                for r in (self.rhos if c == "kip_rho" else self.dp_epsilons if c == "dp_kip"
                          else [0.0])]

    def distill_config(self, cell: str, rho: float, dataset: DatasetConfig,
                       seed: int) -> DistillConfig:
        """The DistillConfig of a distilled cell of one run (dataset: that run's members or
        population, written by the pipeline)."""
        common = {f.name: getattr(self, f.name) for f in dataclasses.fields(CommonConfig)
                  if f.name not in ("kernel", "dataset", "seed", "x64")}
        options = set_fields(self.distill)
        dp = DpOptions()
        if cell == "dp_kip":
            dp = DpOptions(epsilon=float(rho), delta=self.dp_delta, clip=self.dp_clip)
            if self.dp_target_batch is not None:
                options["target_batch"] = self.dp_target_batch
        return DistillConfig(kernel=self.kernel, dataset=dataset, seed=seed,
                             support=self.support,
                             init="noise" if cell in ("kip_noise", "dp_kip") else "image",
                             rho=float(rho) if cell == "kip_rho" else 0.0,
                             corruption=self.corruption, augment=cell == "kip_rho",
                             learn_labels=False, eval_every=0, dp=dp, **common, **options)


def register_audit(cs: Optional[ConfigStore] = None) -> None:
    """Stores the audit schema in Hydra's ConfigStore (idempotent; schema.register calls it)."""
    (cs or ConfigStore.instance()).store(name="audit_schema", node=AuditConfig)
