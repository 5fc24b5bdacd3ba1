"""Typed config schemas (Hydra structured configs) and their validation.

Each YAML option names its schema as its first default, so typos and wrong types fail at
composition; range checks live in `__post_init__` and run in `OmegaConf.to_object`.
Schemas are not frozen (Hydra cannot merge into read-only nodes); treat them as read-only.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore

from kip_runner.core.corrupt import CORRUPTIONS
from kip_runner.core.kernels import validate_kernel_args
from kip_runner.core.krr import SOLVE_POLICIES
from kip_runner.core.nn import LOSSES, OPTIMIZERS, validate_net_args
from kip_runner.data.datasets import PREPROCESSINGS
from kip_runner.errors import KipctlError

SAMPLINGS = ("balanced", "random")


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise KipctlError(msg)


def check_rho(rho: float, name: str = "rho") -> None:
    _check(0.0 <= rho < 1.0, f"{name} must lie in [0, 1), got {rho}")


SOURCE_SPACES = ("auto", "raw", "preprocessed")  # how a source's pixels are read (interop)


def check_source_space(space: str) -> None:
    _check(space in SOURCE_SPACES,
           f"source_space must be one of {', '.join(SOURCE_SPACES)}, got '{space}'")


def check_at_least_classes(value: int, n_classes: int, name: str = "support") -> None:
    """Class-balanced sampling needs at least one example per class."""
    _check(value >= n_classes, f"{name}={value} is smaller than the number of classes "
           f"({n_classes}); use {name} >= {n_classes}")


def check_single_kernel(kernel: "KernelConfig", command: str) -> None:
    """Kernel families are sampled per KIP step; one-shot solves need one kernel."""
    _check(kernel.arch != "family", f"kernel={kernel.name} is a kernel family (kipctl distill "
           f"and corrupt-sweep only); {command} needs one kernel, e.g. kernel=fc1")


@dataclass
class KernelConfig:
    """One kernel of the zoo (conf/kernel/*.yaml)."""

    name: str = "fc1"
    arch: str = "fc"  # fc | conv | myrtle | rbf | linear | family (kipctl distill only)
    members: list = field(default_factory=list)  # arch=family: e.g. [fc1, conv2] (see below)
    depth: int = 1
    kind: str = "ntk"  # ntk | nngp
    parameterization: str = "ntk"  # ntk | standard
    width: int = 1024  # matters for the standard parameterisation only
    w_var: float = 2.0  # sigma_w^2
    b_var: float = 1e-4  # sigma_b^2
    gamma: float = 1.0  # RBF bandwidth
    block_size: int = 4000  # tile edge for blocked kernel matrices (memory bound)

    def __post_init__(self) -> None:
        if self.arch == "family":  # PAPER.md §4 "Avg All": one member sampled per KIP step
            _check(len(self.members) >= 1, f"kernel '{self.name}': arch=family needs a "
                   "non-empty members list, e.g. [fc1, fc2, fc3, conv1, conv2, conv3]")
            self.member_configs()  # validates every member
        else:
            _check(not self.members, f"kernel '{self.name}': members is only for arch=family")
            try:
                validate_kernel_args(self.arch, self.depth, self.kind, self.parameterization,
                                     self.width)
            except ValueError as e:
                raise KipctlError(f"kernel '{self.name}': {e}") from None
        _check(self.block_size >= 1, f"kernel.block_size must be >= 1, got {self.block_size}")
        _check(self.gamma > 0, f"kernel.gamma must be > 0, got {self.gamma}")

    def member_configs(self) -> list:
        """arch=family: one KernelConfig per member name (fcM | convM | myrtleN | rbf |
        linear), sharing this config's kind, parameterisation, variances and gamma; FC members
        use `width`, conv/Myrtle members width 128 (PAPER.md §4). Otherwise [self]."""
        if self.arch != "family":
            return [self]
        out = []
        for member in self.members:
            m = re.fullmatch(r"(fc|conv|myrtle)(\d+)|(rbf|linear)", str(member))
            _check(m is not None, f"kernel '{self.name}': unknown family member '{member}'; "
                   "use fcM, convM, myrtleN, rbf or linear")
            arch = m.group(1) or m.group(3)
            depth = int(m.group(2)) if m.group(2) else 1
            out.append(KernelConfig(
                name=str(member), arch=arch, depth=depth, kind=self.kind,
                parameterization=self.parameterization,
                width=self.width if arch == "fc" else 128, w_var=self.w_var, b_var=self.b_var,
                gamma=self.gamma, block_size=self.block_size))
        return out

    def kernel_args(self) -> dict:
        """Plain keyword arguments for core.kernels.make_kernel_fn."""
        return dict(arch=self.arch, depth=self.depth, kind=self.kind,
                    parameterization=self.parameterization, width=self.width,
                    w_var=self.w_var, b_var=self.b_var, gamma=self.gamma)


@dataclass
class DatasetConfig:
    """A dataset and its preprocessing (conf/dataset/*.yaml)."""

    name: str = "mnist"
    n_classes: int = 10
    preprocessing: str = "standardize"  # standardize | zca | none
    zca_strength: float = 1e-5
    data_dir: Optional[str] = None  # the YAML defaults this to ${oc.env:KIP_DATA_DIR,null}
    n_train: Optional[int] = None  # keep the first n training examples (None: all)
    n_test: Optional[int] = None  # keep the first n test examples (None: all)

    def __post_init__(self) -> None:
        _check(self.preprocessing in PREPROCESSINGS,
               f"dataset.preprocessing must be one of {', '.join(PREPROCESSINGS)}, "
               f"got '{self.preprocessing}'")
        _check(self.n_classes >= 2, f"dataset.n_classes must be >= 2, got {self.n_classes}")


@dataclass
class CommonConfig:
    kernel: KernelConfig = field(default_factory=KernelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    seed: int = 0
    reg: float = 1e-6  # scale-invariant ridge: reg * tr(K_ss) / n_s
    x64: bool = True  # float64 end to end: inputs, kernel matrices, solve (PAPER.md §8)
    # K_ss + ridge not positive definite: jitter = raise the ridge tenfold (<= 6 times) and
    # record it per row; strict = fail (docs/precision.md)
    solve: str = "jitter"

    def __post_init__(self) -> None:
        _check(self.reg >= 0, f"reg must be >= 0, got {self.reg}")
        _check(self.solve in SOLVE_POLICIES,
               f"solve must be one of {', '.join(SOLVE_POLICIES)}, got '{self.solve}'")


@dataclass
class EvalKrrConfig(CommonConfig):
    """kipctl eval-krr: KRR test accuracy of natural subsets or of a learned support.npz."""

    # natural | a support.npz / run dir / exported npz, imagefolder dir or .pt, another method's
    # npz of images + labels (docs/export.md)
    source: str = "natural"
    source_space: str = "auto"  # auto | raw (pixels [0,1] / uint8) | preprocessed (docs/export.md)
    support: int = 100
    seeds: int = 20  # resamplings of the natural subset (Tables A1/A2 protocol)
    rho: float = 0.0  # natural-image corruption fraction
    corruption: str = "noise"  # noise | zero
    sampling: str = "balanced"  # balanced | random
    dry_run: bool = False  # time one kernel tile, print the estimated total, exit

    def __post_init__(self) -> None:
        super().__post_init__()
        check_single_kernel(self.kernel, "eval-krr")
        check_rho(self.rho)
        _check(self.seeds >= 1, f"seeds must be >= 1, got {self.seeds}")
        _check(self.corruption in CORRUPTIONS,
               f"corruption must be one of {', '.join(CORRUPTIONS)}, got '{self.corruption}'")
        _check(self.sampling in SAMPLINGS,
               f"sampling must be one of {', '.join(SAMPLINGS)}, got '{self.sampling}'")
        check_source_space(self.source_space)
        if self.source == "natural":
            check_at_least_classes(self.support, self.dataset.n_classes)


@dataclass
class LabelSolveConfig(CommonConfig):
    """kipctl label-solve: closed-form Label Solve (PAPER.md §3) of a support set's labels."""

    source: str = "natural"  # natural (class-balanced subset of `support`) | <support.npz path>
    support: int = 100
    n_targets: Optional[int] = None  # None: every training example; else class-balanced subset
    eval_kernel: Optional[KernelConfig] = None  # transfer kernel (eval_kernel=<kernel option>)
    block_rows: int = 1000  # target rows per K_ts block (saved to kernel_blocks/ for resume)
    keep_blocks: bool = False  # keep kernel_blocks/ after a successful run
    dry_run: bool = False  # time one kernel tile, print the estimated total, exit

    def __post_init__(self) -> None:
        super().__post_init__()
        check_single_kernel(self.kernel, "label-solve")
        _check(self.block_rows >= 1, f"block_rows must be >= 1, got {self.block_rows}")
        _check(self.eval_kernel is None or self.eval_kernel.arch != "family",
               "eval_kernel must be a single kernel, not a family")
        if self.n_targets is not None:
            check_at_least_classes(self.n_targets, self.dataset.n_classes, "n_targets")
        if self.source == "natural":
            check_at_least_classes(self.support, self.dataset.n_classes)


@dataclass
class NetConfig:
    """A finite network for eval-nn (conf/net/*.yaml); see core.nn.make_net."""

    name: str = "fc1"
    arch: str = "fc"  # fc | conv | myrtle | lenet | wrn
    depth: int = 1  # FC/Conv layers, Myrtle N, WRN 6n+4 (ignored by lenet)
    width: int = 1024  # hidden width / channels; lenet: first conv; wrn: widening factor
    parameterization: str = "ntk"  # ntk | standard
    w_var: float = 2.0
    b_var: float = 1e-4
    readout_w_var: Optional[float] = None  # readout layer only; None = w_var

    def __post_init__(self) -> None:
        try:
            validate_net_args(self.arch, self.depth, self.width, self.parameterization)
        except ValueError as e:
            raise KipctlError(f"net '{self.name}': {e}") from None
        _check(self.w_var > 0 and self.b_var >= 0,
               f"net '{self.name}': w_var must be > 0 and b_var >= 0")
        _check(self.readout_w_var is None or self.readout_w_var > 0,
               f"net '{self.name}': readout_w_var must be > 0 or null")

    def net_args(self) -> dict:
        """Plain keyword arguments for core.nn.make_net (without n_out)."""
        return dict(arch=self.arch, depth=self.depth, width=self.width, w_var=self.w_var,
                    b_var=self.b_var, parameterization=self.parameterization,
                    readout_w_var=self.readout_w_var)


@dataclass
class EvalNnConfig:
    """kipctl eval-nn: finite networks trained on natural subsets or on a support.npz.

    Not a CommonConfig: eval-nn has no kernel and no KRR ridge, so it does not carry them.
    """

    net: NetConfig = field(default_factory=NetConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    seed: int = 0  # data sampling / validation split / init streams
    x64: bool = False  # float32 training by default
    data: str = "natural"  # natural | <path>: any set eval-krr's source= reads (docs/export.md)
    source_space: str = "auto"  # auto | raw | preprocessed: how data=<path>'s pixels are read
    support: int = 1000  # natural subset size
    rho: float = 0.0  # natural-image corruption fraction (as eval-krr)
    corruption: str = "noise"  # noise | zero
    sampling: str = "balanced"  # balanced | random
    seeds: int = 5  # random inits -> mean +- std
    optimizer: str = "adam"  # adam | momentum (0.9)
    loss: str = "mse"  # mse (on the data's labels) | xent (one-hot of argmax)
    lr: float = 4e-4
    l2: float = 0.0
    lr_grid: list[float] = field(default_factory=list)  # [] -> [lr]
    l2_grid: list[float] = field(default_factory=list)  # [] -> [l2]
    val_size: int = 1000  # held out from TRAIN for the grid choice (only when grid > 1)
    steps: int = 500  # PAPER.md §6: "a few hundred training steps"; §8 measured 500
    batch_size: Optional[int] = None  # None: full batch
    eval_batch_size: int = 1000  # test/validation chunk
    log_every: int = 100  # metrics.jsonl rows / progress postfix
    center: bool = True  # train/evaluate f(x; theta) - f(x; theta_0): PAPER.md §8, Table A7
    dry_run: bool = False  # time a few training steps, print the estimated total, exit

    def __post_init__(self) -> None:
        check_rho(self.rho)
        check_source_space(self.source_space)
        _check(self.seeds >= 1, f"seeds must be >= 1, got {self.seeds}")
        _check(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        _check(self.optimizer in OPTIMIZERS,
               f"optimizer must be one of {', '.join(OPTIMIZERS)}, got '{self.optimizer}'")
        _check(self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}, got '{self.loss}'")
        _check(self.corruption in CORRUPTIONS,
               f"corruption must be one of {', '.join(CORRUPTIONS)}, got '{self.corruption}'")
        _check(self.sampling in SAMPLINGS,
               f"sampling must be one of {', '.join(SAMPLINGS)}, got '{self.sampling}'")
        _check(all(v > 0 for v in [self.lr] + list(self.lr_grid)), "lr values must be > 0")
        _check(all(v >= 0 for v in [self.l2] + list(self.l2_grid)), "l2 values must be >= 0")
        _check(self.batch_size is None or self.batch_size >= 1,
               f"batch_size must be >= 1 or null, got {self.batch_size}")
        _check(self.eval_batch_size >= 1 and self.log_every >= 1,
               "eval_batch_size and log_every must be >= 1")
        if max(1, len(self.lr_grid)) * max(1, len(self.l2_grid)) > 1:
            _check(self.val_size >= 1, "a lr/l2 grid needs val_size >= 1 (the choice is made "
                   "on a validation split held out from the training set)")
        if self.data == "natural":
            check_at_least_classes(self.support, self.dataset.n_classes)


@dataclass
class DpOptions:
    """DP-KIP (docs/dp.md): DP-SGD on the KRR loss; off while epsilon is null."""

    epsilon: Optional[float] = None  # the (epsilon, delta) target, add-or-remove-one neighbours
    delta: float = 1e-5
    # l2 bound of each target's gradient (support pixels and learned labels); FC1 on MNIST from
    # noise init: median norms 0.06 (support 10) and 0.21 (support 100), docs/dp.md
    clip: float = 0.1
    chunk: int = 100  # per-example gradients computed this many targets at a time

    @property
    def enabled(self) -> bool:
        return self.epsilon is not None


@dataclass
class DistillConfig(CommonConfig):
    """kipctl distill: KIP / KIP_rho (Algorithm 1, PAPER.md §2) learning a support set."""

    support: int = 100  # n_s, the number of learned images (the whole support each step)
    steps: int = 1000
    lr: Optional[float] = None  # Adam; None: 0.04 for cifar10/cifar100/svhn, else 0.01
    target_batch: int = 6000  # class-balanced targets sampled per step
    init: str = "image"  # image (class-balanced natural subset) | noise (uniform [-1, 1])
    learn_labels: bool = False  # KIP (l): also learn y_s
    rho: float = 0.0  # KIP_rho: fraction of each support image corrupted and frozen
    corruption: str = "noise"  # noise | zero
    augment: bool = False  # KIP (a): augment the target batch each step
    aug_flip: Optional[bool] = None  # None: flips for colour (3-channel) datasets only
    # height/width shift, fraction of the image size; None: 0.05 on grayscale (1-channel) data
    # such as MNIST, 0.1 on colour data (measured: REPRODUCTION.md, Tables 1 and A7)
    aug_shift: Optional[float] = None
    aug_rotate: float = 10.0  # degrees
    aug_channel_shift: Optional[float] = None  # None: 0.1 for colour datasets, 0 otherwise
    eval_kernel: Optional[KernelConfig] = None  # None: the training kernel (first member)
    eval_every: int = 100  # test accuracy/MSE every n steps (0: only at the end)
    log_every: int = 10  # metrics.jsonl rows / progress bar refresh
    ckpt_every: int = 100  # checkpoints/step_XXXXXX.npz + LATEST
    ckpt_keep: int = 3  # newest checkpoints kept (the final state is the newest); >= 1
    x64: bool = False  # float32 training (PAPER.md §8: training steps are where f32 pays)
    eval_x64: bool = True  # the periodic KRR evaluation in float64 (one solve: affordable)
    dry_run: bool = False  # time two KIP steps and an evaluation, print the estimate, exit
    # DP-KIP: target_batch becomes the expected Poisson batch (rate target_batch / n_train)
    dp: DpOptions = field(default_factory=DpOptions)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_rho(self.rho)
        if self.dp.enabled:
            _check(self.dp.epsilon > 0, f"dp.epsilon must be > 0, got {self.dp.epsilon}")
            _check(0 < self.dp.delta < 1, f"dp.delta must lie in (0, 1), got {self.dp.delta}")
            _check(self.dp.clip > 0, f"dp.clip must be > 0, got {self.dp.clip}")
            _check(self.dp.chunk >= 1, f"dp.chunk must be >= 1, got {self.dp.chunk}")
            _check(self.init == "noise", "dp.epsilon needs a data-independent initialisation: "
                   "init=image would release training images as they are; use init=noise")
        n_classes = self.dataset.n_classes
        check_at_least_classes(self.support, n_classes)
        _check(self.target_batch >= n_classes, f"target_batch={self.target_batch} is smaller "
               f"than the number of classes ({n_classes})")
        _check(self.steps >= 0, f"steps must be >= 0, got {self.steps}")
        _check(self.lr is None or self.lr > 0, f"lr must be > 0 (or null), got {self.lr}")
        _check(self.init in ("image", "noise"), f"init must be image or noise, got '{self.init}'")
        _check(self.corruption in CORRUPTIONS,
               f"corruption must be one of {', '.join(CORRUPTIONS)}, got '{self.corruption}'")
        _check(self.aug_shift is None or 0.0 <= self.aug_shift < 1.0,
               f"aug_shift must lie in [0, 1) (or null), got {self.aug_shift}")
        _check(0.0 <= self.aug_rotate <= 180.0,
               f"aug_rotate must lie in [0, 180] degrees, got {self.aug_rotate}")
        _check(self.aug_channel_shift is None or self.aug_channel_shift >= 0,
               f"aug_channel_shift must be >= 0, got {self.aug_channel_shift}")
        _check(self.eval_every >= 0, f"eval_every must be >= 0, got {self.eval_every}")
        _check(self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}")
        _check(self.ckpt_every >= 1, f"ckpt_every must be >= 1, got {self.ckpt_every}")
        _check(self.ckpt_keep >= 1, f"ckpt_keep must be >= 1, got {self.ckpt_keep}")
        _check(self.eval_kernel is None or self.eval_kernel.arch != "family",
               "eval_kernel must be a single kernel, not a family")

    def learning_rate(self) -> float:
        """lr, or the paper's per-dataset default (PAPER.md §2: 0.01 MNIST, 0.04 CIFAR-10)."""
        if self.lr is not None:
            return float(self.lr)
        return 0.04 if self.dataset.name in ("cifar10", "cifar100", "svhn_cropped") else 0.01


DATA_TYPES = ("natural", "kip", "kip_l")
EVALUATORS = ("krr", "nn")


def set_fields(options) -> dict:
    """The fields of an options dataclass that were set (None means: the child's default)."""
    return {k: v for k, v in dataclasses.asdict(options).items() if v is not None}


@dataclass
class SweepDistillOptions:
    """corrupt-sweep `distill.*`: passed to every KIP cell's DistillConfig (None = default)."""

    steps: Optional[int] = None
    target_batch: Optional[int] = None
    lr: Optional[float] = None
    init: Optional[str] = None
    augment: Optional[bool] = True  # the sweep's KIP cells are KIP_rho (a) by default
    aug_flip: Optional[bool] = None
    aug_shift: Optional[float] = None
    aug_rotate: Optional[float] = None
    aug_channel_shift: Optional[float] = None
    eval_every: Optional[int] = 0  # the evaluator cells evaluate; no periodic eval needed
    log_every: Optional[int] = None
    ckpt_every: Optional[int] = None
    x64: Optional[bool] = None


@dataclass
class SweepNnOptions:
    """corrupt-sweep `nn.*`: passed to every nn evaluator cell's EvalNnConfig (None = default)."""

    seeds: Optional[int] = None
    optimizer: Optional[str] = None
    loss: Optional[str] = None
    lr: Optional[float] = None
    l2: Optional[float] = None
    lr_grid: Optional[list[float]] = None
    l2_grid: Optional[list[float]] = None
    val_size: Optional[int] = None
    steps: Optional[int] = None
    batch_size: Optional[int] = None
    eval_batch_size: Optional[int] = None
    log_every: Optional[int] = None
    x64: Optional[bool] = None
    center: Optional[bool] = None


@dataclass
class CorruptSweepConfig(CommonConfig):
    """kipctl corrupt-sweep: data type x support x rho x evaluator (Tables A5-A10, Fig. A3).

    `distill.*` and `nn.*` pass through to the child DistillConfig / EvalNnConfig (e.g.
    distill.steps=300, nn.loss=xent); one child of each kind is built here, so bad values
    fail before anything is written.
    """

    rhos: list[float] = field(default_factory=lambda: [0.0, 0.5, 0.75, 0.9])
    supports: list[int] = field(default_factory=lambda: [100])
    data_types: list[str] = field(default_factory=lambda: ["natural", "kip"])
    evaluators: list[str] = field(default_factory=lambda: ["krr"])
    eval_kernel: Optional[KernelConfig] = None  # KRR evaluator kernel; None: the KIP kernel
    net: NetConfig = field(default_factory=NetConfig)  # the nn evaluator's network
    seeds: int = 1  # natural-data KRR resamplings per cell
    corruption: str = "noise"  # noise | zero, for natural and KIP_rho data alike
    cells_dir: Optional[str] = None  # child runs' directory; None: <run dir>/cells (shareable)
    dry_run: bool = False  # estimate every cell still to run (each child's dry run), exit
    distill: SweepDistillOptions = field(default_factory=SweepDistillOptions)
    nn: SweepNnOptions = field(default_factory=SweepNnOptions)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, values, allowed in (("data_types", self.data_types, DATA_TYPES),
                                      ("evaluators", self.evaluators, EVALUATORS)):
            _check(len(values) > 0, f"{name} is empty; choose from {', '.join(allowed)}")
            bad = [v for v in values if v not in allowed]
            _check(not bad, f"unknown {name[:-1].replace('_', ' ')} {bad}; choose from "
                   f"{', '.join(allowed)}")
            _check(len(set(values)) == len(values), f"{name} has duplicates: {values}")
        _check(len(self.rhos) > 0, "rhos is empty; e.g. rhos=[0,0.5,0.75,0.9]")
        _check(len(self.supports) > 0, "supports is empty; e.g. supports=[100]")
        for rho in self.rhos:
            check_rho(rho, "every rho in rhos")
        _check(self.seeds >= 1, f"seeds must be >= 1, got {self.seeds}")
        _check(self.corruption in CORRUPTIONS,
               f"corruption must be one of {', '.join(CORRUPTIONS)}, got '{self.corruption}'")
        for i, support in enumerate(self.supports):
            check_at_least_classes(support, self.dataset.n_classes, f"supports[{i}]")
        # Building one child of each kind validates the pass-through options.
        self.distill_config(self.supports[0], self.rhos[0], learn_labels=False)
        self.nn_config("natural", self.supports[0], self.rhos[0])

    def distill_config(self, support: int, rho: float, learn_labels: bool) -> "DistillConfig":
        return DistillConfig(kernel=self.kernel, dataset=self.dataset, seed=self.seed,
                             reg=self.reg, solve=self.solve, support=support, rho=float(rho),
                             corruption=self.corruption, learn_labels=learn_labels,
                             **set_fields(self.distill))

    def krr_kernel(self) -> KernelConfig:
        if self.eval_kernel is not None:
            return self.eval_kernel
        return self.kernel.member_configs()[0]

    def krr_config(self, source: str, support: int, rho: float) -> "EvalKrrConfig":
        natural = source == "natural"
        return EvalKrrConfig(kernel=self.krr_kernel(), dataset=self.dataset, seed=self.seed,
                             reg=self.reg, solve=self.solve, x64=True, source=source,
                             support=support,
                             seeds=self.seeds if natural else 1,
                             rho=float(rho) if natural else 0.0, corruption=self.corruption)

    def nn_config(self, data: str, support: int, rho: float) -> "EvalNnConfig":
        natural = data == "natural"
        return EvalNnConfig(net=self.net, dataset=self.dataset, seed=self.seed, data=data,
                            support=support, rho=float(rho) if natural else 0.0,
                            corruption=self.corruption, **set_fields(self.nn))


def register() -> None:
    """Stores every schema in Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    # The group schemas live at the root, not in their groups, so that `--help` lists only
    # usable options; a group's YAML option names its schema as /<group>_schema@_here_.
    cs.store(name="kernel_schema", node=KernelConfig)
    cs.store(name="dataset_schema", node=DatasetConfig)
    cs.store(name="eval_krr_schema", node=EvalKrrConfig)
    cs.store(name="corrupt_sweep_schema", node=CorruptSweepConfig)
    cs.store(name="distill_schema", node=DistillConfig)
    cs.store(name="net_schema", node=NetConfig)
    cs.store(name="eval_nn_schema", node=EvalNnConfig)
    cs.store(name="label_solve_schema", node=LabelSolveConfig)
    from kip_runner.config.audit_schema import register_audit  # noqa: PLC0415 (imports us)
    register_audit(cs)
