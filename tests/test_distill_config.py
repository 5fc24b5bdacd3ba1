"""Config tier for `kipctl distill`: conf/distill.yaml, the kernel family option, eval_kernel,
per-dataset learning rates and range checks."""

import pytest

from kip_runner.config.schema import KernelConfig
from kip_runner.errors import KipctlError
from tests.test_config import compose_typed

pytestmark = pytest.mark.config


def test_distill_defaults():
    cfg = compose_typed("distill")
    assert type(cfg).__name__ == "DistillConfig"
    assert cfg.x64 is False and cfg.support == 100 and cfg.target_batch == 6000
    assert cfg.eval_kernel is None and cfg.learning_rate() == 0.01
    assert compose_typed("distill", ["dataset=cifar10"]).learning_rate() == 0.04
    assert compose_typed("distill", ["lr=0.5"]).learning_rate() == 0.5


def test_kernel_family_composes_into_members():
    cfg = compose_typed("distill", ["kernel=family_fc_conv", "eval_kernel=rbf"])
    members = cfg.kernel.member_configs()
    assert [(m.arch, m.depth) for m in members] == [
        ("fc", 1), ("fc", 2), ("fc", 3), ("conv", 1), ("conv", 2), ("conv", 3)]
    assert all(isinstance(m, KernelConfig) for m in members)
    assert members[3].width == 128 and members[0].width == 1024
    assert cfg.eval_kernel.name == "rbf" and cfg.eval_kernel.arch == "rbf"


@pytest.mark.parametrize("override,msg", [
    ("target_batch=5", "target_batch=5 is smaller"), ("steps=-1", "steps must be"),
    ("corruption=blur", "corruption must be"), ("aug_shift=1.5", "aug_shift"),
    ("ckpt_every=0", "ckpt_every"), ("kernel.members=[fc1]", "only for arch=family"),
])
def test_distill_range_checks(override, msg):
    with pytest.raises(KipctlError, match=msg):
        compose_typed("distill", [override])


def test_aug_shift_default_depends_on_the_image_kind():
    from kip_runner.pipelines.distill import augment_args  # noqa: PLC0415

    mnist = compose_typed("distill", ["augment=true"])
    assert mnist.aug_shift is None
    gray, colour = augment_args(mnist, channels=1), augment_args(mnist, channels=3)
    # 5 % on grayscale digits (measured: REPRODUCTION.md, Tables 1 and A7), 10 % on colour
    assert (gray.max_shift, gray.flip, gray.channel_shift) == (0.05, False, 0.0)
    assert (colour.max_shift, colour.flip, colour.channel_shift) == (0.1, True, 0.1)
    explicit = compose_typed("distill", ["augment=true", "aug_shift=0.1"])
    assert augment_args(explicit, channels=1).max_shift == 0.1
    assert augment_args(compose_typed("distill", []), channels=1) is None
