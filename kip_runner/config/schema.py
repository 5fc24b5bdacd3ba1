"""Typed config schemas (Hydra structured configs) and their validation.

Each YAML option names its schema as its first default, so typos and wrong types fail at
composition; range checks live in `__post_init__` and run in `OmegaConf.to_object`.
Schemas are not frozen (Hydra cannot merge into read-only nodes); treat them as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore

from kip_runner.core.corrupt import CORRUPTIONS
from kip_runner.core.kernels import validate_kernel_args
from kip_runner.data.datasets import PREPROCESSINGS
from kip_runner.errors import KipctlError

SAMPLINGS = ("balanced", "random")


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise KipctlError(msg)


def check_rho(rho: float, name: str = "rho") -> None:
    _check(0.0 <= rho < 1.0, f"{name} must lie in [0, 1), got {rho}")


@dataclass
class KernelConfig:
    """One kernel of the zoo (conf/kernel/*.yaml)."""

    name: str = "fc1"
    arch: str = "fc"  # fc | conv | myrtle | rbf | linear
    depth: int = 1
    kind: str = "ntk"  # ntk | nngp
    parameterization: str = "ntk"  # ntk | standard
    width: int = 1024  # matters for the standard parameterisation only
    w_var: float = 2.0  # sigma_w^2
    b_var: float = 1e-4  # sigma_b^2
    gamma: float = 1.0  # RBF bandwidth
    block_size: int = 4000  # tile edge for blocked kernel matrices (memory bound)

    def __post_init__(self) -> None:
        try:
            validate_kernel_args(self.arch, self.depth, self.kind, self.parameterization,
                                 self.width)
        except ValueError as e:
            raise KipctlError(f"kernel '{self.name}': {e}") from None
        _check(self.block_size >= 1, f"kernel.block_size must be >= 1, got {self.block_size}")
        _check(self.gamma > 0, f"kernel.gamma must be > 0, got {self.gamma}")

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
    x64: bool = True  # float64 JAX (evaluation is one solve; PAPER.md §8)

    def __post_init__(self) -> None:
        _check(self.reg >= 0, f"reg must be >= 0, got {self.reg}")


@dataclass
class EvalKrrConfig(CommonConfig):
    """kipctl eval-krr: KRR test accuracy of natural subsets or of a learned support.npz."""

    source: str = "natural"  # natural | <path to support.npz>
    support: int = 100
    seeds: int = 1  # resamplings of the natural subset (Table A1 protocol: 20)
    rho: float = 0.0  # natural-image corruption fraction
    corruption: str = "noise"  # noise | zero
    sampling: str = "balanced"  # balanced | random

    def __post_init__(self) -> None:
        super().__post_init__()
        check_rho(self.rho)
        _check(self.seeds >= 1, f"seeds must be >= 1, got {self.seeds}")
        _check(self.corruption in CORRUPTIONS,
               f"corruption must be one of {', '.join(CORRUPTIONS)}, got '{self.corruption}'")
        _check(self.sampling in SAMPLINGS,
               f"sampling must be one of {', '.join(SAMPLINGS)}, got '{self.sampling}'")
        if self.source == "natural":
            _check(self.support >= self.dataset.n_classes,
                   f"support={self.support} is smaller than the number of classes "
                   f"({self.dataset.n_classes}); use support >= {self.dataset.n_classes}")


def register() -> None:
    """Stores every schema in Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(group="kernel", name="kernel_schema", node=KernelConfig)
    cs.store(group="dataset", name="dataset_schema", node=DatasetConfig)
    cs.store(name="eval_krr_schema", node=EvalKrrConfig)
