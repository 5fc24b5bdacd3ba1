"""Config tier: every primary config and every group option composes and validates."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from kip_runner.cli import CONF_DIR, COMMANDS
from kip_runner.config.schema import register
from kip_runner.errors import KipctlError

pytestmark = pytest.mark.config
register()
PRIMARY = sorted(c.config_name for c in COMMANDS.values() if c.config_name)
GROUP_OPTIONS = [(g.name, p.stem) for g in Path(CONF_DIR).iterdir() if g.is_dir()
                 and g.name in ("kernel", "dataset", "net")
                 for p in sorted(g.glob("*.yaml"))]


def compose_typed(config_name, overrides=()):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides))
    return OmegaConf.to_object(cfg)


@pytest.mark.parametrize("config_name", PRIMARY)
def test_primary_configs_compose(config_name):
    typed = compose_typed(config_name)
    assert type(typed).__name__.endswith("Config")


FAMILY_USERS = {"distill", "corrupt_sweep"}  # commands that accept a kernel family


@pytest.mark.parametrize("group,option", GROUP_OPTIONS)
def test_every_group_option_composes(group, option):
    for config_name in PRIMARY:
        typed = compose_typed(config_name)
        if not hasattr(typed, group):
            continue
        if option.startswith("family") and config_name not in FAMILY_USERS:
            with pytest.raises(KipctlError, match="kernel family"):
                compose_typed(config_name, [f"{group}={option}"])
            continue
        typed = compose_typed(config_name, [f"{group}={option}"])
        assert getattr(typed, group).name == option


def test_kernel_options_cover_the_paper_zoo():
    names = {o for g, o in GROUP_OPTIONS if g == "kernel"}
    assert {"linear", "rbf", "fc1", "fc2", "fc3", "conv1", "conv2", "conv3", "myrtle5",
            "myrtle7", "myrtle10"} <= names


def test_data_dir_defaults_to_the_environment(monkeypatch):
    monkeypatch.setenv("KIP_DATA_DIR", "/some/where")
    assert compose_typed("eval_krr").dataset.data_dir == "/some/where"


@pytest.mark.parametrize("override,msg", [
    ("rho=1.0", "rho must lie in"), ("rho=-0.1", "rho must lie in"),
    ("support=5", "smaller than the number of classes"), ("seeds=0", "seeds must be"),
    ("kernel.kind=gp", "ntk or nngp"), ("dataset.preprocessing=pca", "preprocessing"),
    ("sampling=stratified", "sampling must be"), ("corruption=blur", "corruption must be"),
])
def test_range_checks(override, msg):
    with pytest.raises(KipctlError, match=msg):
        compose_typed("eval_krr", [override])


def test_unknown_key_and_wrong_type_fail_at_composition():
    with pytest.raises(Exception, match="typo_key"):
        compose_typed("eval_krr", ["typo_key=1"])
    with pytest.raises(Exception) as info:
        compose_typed("eval_krr", ["support=notanint"])
    assert "could not be converted to Integer" in str(info.value.__cause__)
