"""Config tier for label-solve: conf/label_solve.yaml and the eval_kernel group options."""

from pathlib import Path

import pytest

from kip_runner.cli import CONF_DIR
from kip_runner.config.schema import KernelConfig, LabelSolveConfig
from kip_runner.errors import KipctlError
from tests.test_config import compose_typed

pytestmark = pytest.mark.config
# Single kernels only: a family (arch: family, kipctl distill only) cannot be an eval kernel.
KERNELS = sorted(p.stem for p in (Path(CONF_DIR) / "kernel").glob("*.yaml")
                 if "arch: family" not in p.read_text())


def test_defaults():
    cfg = compose_typed("label_solve")
    assert isinstance(cfg, LabelSolveConfig)
    assert cfg.x64 and cfg.eval_kernel is None and cfg.n_targets is None
    assert cfg.kernel.name == "fc1" and cfg.source == "natural" and cfg.support == 100


def test_every_kernel_option_is_an_eval_kernel_option():
    mirrors = sorted(p.stem for p in (Path(CONF_DIR) / "eval_kernel").glob("*.yaml"))
    assert mirrors == KERNELS


@pytest.mark.parametrize("name", KERNELS)
def test_eval_kernel_option_equals_the_kernel_option(name):
    cfg = compose_typed("label_solve", [f"eval_kernel={name}", f"kernel={name}"])
    assert isinstance(cfg.eval_kernel, KernelConfig) and cfg.eval_kernel == cfg.kernel


def test_eval_kernel_fields_can_be_overridden():
    cfg = compose_typed("label_solve", ["eval_kernel=myrtle10", "eval_kernel.kind=nngp",
                                        "dataset.preprocessing=zca", "n_targets=5000"])
    assert cfg.eval_kernel.depth == 10 and cfg.eval_kernel.kind == "nngp"
    assert cfg.kernel.name == "fc1" and cfg.n_targets == 5000


@pytest.mark.parametrize("override,msg", [
    ("n_targets=3", "n_targets=3 is smaller"), ("block_rows=0", "block_rows must be"),
    ("support=5", "smaller than the number of classes"), ("reg=-1", "reg must be"),
    ("eval_kernel.kind=gp", "ntk or nngp"),
    ("eval_kernel.arch=family", "eval_kernel must be a single kernel"),
])
def test_range_checks(override, msg):
    overrides = ["eval_kernel=fc2", override] if override.startswith("eval_") else [override]
    if override.endswith("family"):
        overrides.append("eval_kernel.members=[fc1]")
    with pytest.raises(KipctlError, match=msg):
        compose_typed("label_solve", overrides)
