"""kipctl audit: config validation, the design and data the runs see, attack tables, and one
smoke run of the CLI (synthetic data, 2 runs, 3 KIP steps)."""

import json

import jax

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from kip_runner.cli import CONF_DIR
from kip_runner.config.audit_schema import AUDIT_ATTACKS, AUDIT_SCORES, AuditConfig
from kip_runner.config.schema import DatasetConfig, register
from kip_runner.errors import KipctlError
from kip_runner.pipelines import audit as pipeline
from kip_runner.pipelines.common import dataset_from_config
from tests.conftest import assert_one_line_error, requires_data

register()


def compose_audit(*overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="audit", overrides=list(overrides))
    return OmegaConf.to_object(cfg)


# ------------------------------------------------------------------- config tier

@pytest.mark.config
def test_defaults_are_the_cpu_scale_and_bare_null_is_the_null_cell():
    cfg = compose_audit()
    assert isinstance(cfg, AuditConfig)
    assert (cfg.support, cfg.universe, cfg.shadows) == (100, 4000, 16)
    assert cfg.cells == ["natural", "kip", "kip_noise", "kip_rho", "null", "leak", "dp_kip"]
    assert cfg.rhos == [0.0, 0.5, 0.75, 0.9] and list(cfg.attacks) == list(AUDIT_ATTACKS)
    assert cfg.dp_epsilons == [1.0, 8.0] and cfg.dp_target_batch == 100
    assert len(AUDIT_ATTACKS) == 27 and "lira_online:nn_mask" in AUDIT_ATTACKS
    assert compose_audit("cells=[dp_kip]", "dp_epsilons=[2]").cell_rhos() == [("dp_kip", 2.0)]
    assert compose_audit("cells=[kip,null]").cells == ["kip", "null"]  # unquoted on the CLI
    pairs = compose_audit("cells=[natural,kip_rho]", "rhos=[0,0.9]").cell_rhos()
    assert pairs == [("natural", 0.0), ("kip_rho", 0.0), ("kip_rho", 0.9)]


@pytest.mark.config
def test_cells_map_to_the_distill_configs_of_the_issue():
    cfg = compose_audit("distill.steps=7", "distill.lr=0.02")
    ds = DatasetConfig(name="mnist", data_dir="/x")
    kip, noise, rho, null = (cfg.distill_config(c, r, ds, 11) for c, r in
                             (("kip", 0.0), ("kip_noise", 0.0), ("kip_rho", 0.9), ("null", 0.0)))
    assert (kip.init, kip.augment, kip.rho, kip.steps, kip.lr, kip.seed) == \
        ("image", False, 0.0, 7, 0.02, 11)
    assert noise.init == "noise" and not noise.augment
    assert (rho.init, rho.augment, rho.rho, rho.corruption) == ("image", True, 0.9, "noise")
    assert null.init == "image" and not null.learn_labels and null.eval_every == 0
    dp = cfg.distill_config("dp_kip", 8.0, ds, 11)
    assert (dp.init, dp.dp.epsilon, dp.dp.delta, dp.dp.clip, dp.target_batch, dp.rho) == \
        ("noise", 8.0, 1e-5, 0.1, 100, 0.0)
    assert not kip.dp.enabled and not rho.dp.enabled


@pytest.mark.config
@pytest.mark.parametrize("override,msg", [
    ("shadows=1", "shadows must be >= 2"),
    ("universe=4010", "not class-balanced"),
    ("universe=100", "too small for support=100"),
    ("cells=[kip,bogus]", "unknown cell ['bogus']"),
    ("attacks=[lira]", "unknown attack ['lira']"),
    ("cells=[]", "cells is empty"),
    ("rhos=[0,1.0]", "rho"),
    ("distill.target_batch=3000", "needs 300 members per class"),
    ("distill.steps=-1", "steps must be >= 0"),
    ("kernel=family_fc_conv", "kernel family"),
    ("confidence=1.5", "confidence"),
])
def test_bad_input_is_rejected_at_composition(override, msg):
    with pytest.raises(KipctlError, match=None) as info:
        compose_audit(override)
    assert msg in str(info.value)


@pytest.mark.integration
@pytest.mark.parametrize("override,msg", [  # every message: test_bad_input_is_rejected_...
    ("shadows=1", "shadows must be >= 2"),
    ("cells=[natural,bogus]", "unknown cell"),
])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(kipctl, tmp_path, override, msg):
    run = tmp_path / "audit"
    out = kipctl("audit", "dataset=synthetic", "support=10", "universe=100", override,
                 f"hydra.run.dir={run}")
    assert_one_line_error(out, msg)
    assert not run.exists()


# ------------------------------------------------------------------- design and run data

def test_each_run_sees_exactly_its_members_and_the_design_is_saved(tmp_path):
    cfg = compose_audit("dataset=synthetic", "universe=100", "dp_target_batch=20", "support=10", "shadows=3",
                        "distill.target_batch=50")
    raw = pipeline.raw_splits(cfg.dataset)
    design = pipeline.make_design(cfg, raw.y_train)
    assert design.member.shape == (3, 100) and np.all(design.member.sum(1) == 50)
    assert not set(design.universe) & set(design.population)
    pipeline.save_or_check_design(tmp_path / "design.npz", design)
    pipeline.save_or_check_design(tmp_path / "design.npz", design)  # same design: fine
    data = pipeline.prepare_runs(cfg, tmp_path, raw, design)
    for r, run in enumerate(data):
        ds = dataset_from_config(run.members)
        idx = design.universe[design.member[r]]
        assert np.array_equal(ds.y_train, raw.y_train[idx])
        assert len(ds.y_test) == len(raw.y_test)
        # U in this run's space reproduces the member images of its dataset exactly
        x_u = pipeline.standardised(raw.x_train[design.universe], ds.stats)
        assert np.array_equal(x_u[design.member[r]], ds.x_train)
        saved = np.load(tmp_path / "runs" / f"r{r:02d}" / "members.npz")
        assert np.array_equal(saved["member"], design.member[r])
        assert int(saved["seed"]) == design.seeds[r]
        pop = dataset_from_config(run.population)
        assert np.array_equal(pop.y_train,
                              raw.y_train[design.population[design.population_member[r]]])
    other = compose_audit("dataset=synthetic", "universe=100", "dp_target_batch=20", "support=10", "shadows=3",
                          "distill.target_batch=50", "seed=1")
    with pytest.raises(KipctlError, match="another membership design"):
        pipeline.save_or_check_design(tmp_path / "design.npz",
                                      pipeline.make_design(other, raw.y_train))


def test_attack_rows_split_init_images_and_mark_the_strongest():
    cfg = compose_audit("dataset=synthetic", "universe=100", "dp_target_batch=20", "support=10", "shadows=4",
                        "distill.target_batch=50")
    rng = np.random.default_rng(0)
    from kip_runner.core import audit as core  # noqa: PLC0415

    member, partner = core.paired_membership(jax.random.PRNGKey(0), np.arange(40) % 2, 4)
    design = pipeline.Design(np.arange(40), np.arange(40, 80), np.arange(40) % 2, member,
                             member, np.arange(4), partner)
    select = np.array([True, False, True, False])
    per_run = []
    for r in range(4):
        init = np.flatnonzero(member[r])[:4]  # four init images per run
        scores = {sc: rng.normal(size=40) for sc in AUDIT_SCORES}
        scores["margin_aug"] = rng.normal(size=(40, 9))
        scores["nn_l2"][init] = 10.0  # nearest-image attack finds the init images only
        per_run.append({**scores, "init_pos": init, "test_accuracy": 0.5 + 0.1 * r,
                        "drift": 0.2})
    rows, attacks, roc = pipeline.attack_rows(cfg, "kip", 0.0, per_run, design, select)
    df = pd.DataFrame(rows)
    assert set(df.members) == {"all", "init", "other"}
    assert len(df) == 3 * len(AUDIT_ATTACKS) and set(attacks) == set(AUDIT_ATTACKS)
    init = df[(df.members == "init") & (df.attack == "nn_l2")].iloc[0]
    # measured on the 2 evaluation runs only: 4 init images and 20 non-members each
    assert init.auc == 1.0 and init.tpr_at_1pct_fpr == 1.0 and init.n_members == 8
    assert init.n_nonmembers == 40 and init.strongest and init.eps_empirical > 2
    assert init.auc_lo <= init.auc <= init.auc_hi
    assert df.groupby("members").strongest.sum().tolist() == [1, 1, 1]
    assert df.test_accuracy.iloc[0] == pytest.approx(0.65)
    assert roc["attack"] == df[(df.members == "all") & df.strongest].attack.iloc[0]
    # one certified bound per cell (the one-run audit's attack and k chosen on the selection
    # runs), on every all-members row
    certified = df[np.isfinite(df.eps_lower_bound)]
    assert set(certified.members) == {"all"} and len(certified) == len(AUDIT_ATTACKS)
    assert set(certified.eps_lower_bound_attack) == {roc["one_run"]["attack"]}


def test_sanity_gates():
    rows = [{"cell": "null", "members": "all", "attack": a, "auc": auc, "gate_ok": ok}
            for a, auc, ok in (("loss", 0.52, True), ("nn_l2", 0.48, True))]
    rows.append({"cell": "leak", "members": "all", "attack": "nn_l2", "auc": 1.0})
    dp = {"cell": "dp_kip", "members": "all", "attack": "margin", "dp_epsilon": 1.0,
          "eps_empirical": 0.4, "eps_empirical_lo": 0.1, "eps_empirical_hi": 0.9,
          "eps_lower_bound": 0.2, "eps_guarantee": 1.9}
    rows.append(dp)
    s = pipeline.sanity(rows)
    assert s["sanity/null_ok"] and s["sanity/leak_ok"] and s["sanity/dp_ok"]
    assert s["sanity/null_max_auc"] == 0.52 and s["sanity/dp_eps1_max_empirical"] == 0.4
    rows[1]["gate_ok"] = False
    rows[-1] = {**dp, "eps_empirical_lo": 2.5, "eps_empirical": 3.0}
    s = pipeline.sanity(rows)
    assert not s["sanity/null_ok"] and s["sanity/null_failed_attacks"] == "nn_l2"
    assert not s["sanity/dp_ok"] and "margin" in s["sanity/dp_over_guarantee"]


# ------------------------------------------------------------------- smoke run of the CLI

SMOKE = ["audit", "dataset=synthetic", "universe=100", "support=10", "shadows=2",
         "rhos=[0.9]", "distill.steps=3", "distill.target_batch=50", "neighbours=5",
         "dp_target_batch=20", "dp_epsilons=[8]"]


@pytest.mark.integration
def test_smoke_audit_outputs_sanity_and_resume(kipctl, tmp_path):
    run = tmp_path / "audit"
    out = kipctl(*SMOKE, f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("audit.csv", "table.md", "scores.npz", "summary.json", "roc.png", "roc.pdf",
                 "neighbours.png", "design.npz", "runs/r01/members.npz", "privacy_utility.png",
                 "vulnerable.csv", "vulnerable.png"):
        assert (run / name).exists(), name
    df = pipeline.read_audit_csv(run / "audit.csv")
    assert list(df.columns) == pipeline.CSV_COLUMNS
    cells = {("natural", 0.0), ("kip", 0.0), ("kip_noise", 0.0), ("kip_rho", 0.9),
             ("null", 0.0), ("leak", 0.0), ("dp_kip", 0.0)}
    assert set(zip(df.cell, df.rho)) == cells
    # 2 runs: one selects, the other (50 members / non-members) is measured
    assert set(df[df.members == "all"].n_members) == {50}
    assert set(df.n_nonmembers) == {50}
    assert set(df[df.members == "init"].n_members) == {10}  # 10 init images x 1 run
    dp = df[df.cell == "dp_kip"]
    assert set(dp.dp_epsilon) == {8.0} and (dp.eps_guarantee > 8).all()  # replace-one
    assert set(df[df.cell == "kip_noise"].members) == {"all"}  # noise init: no init images
    assert df.auc.between(0, 1).all() and df.test_accuracy.between(0, 1).all()
    assert (df.auc_lo <= df.auc_hi).all() and (df.eps_empirical >= 0).all()
    leak = df[(df.cell == "leak") & (df.attack == "nn_l2")].iloc[0]
    assert leak.auc >= 0.99
    # the natural support is the members it was drawn from: nn_l2 finds each init image
    nat = df[(df.cell == "natural") & (df.members == "init") & (df.attack == "nn_l2")]
    assert nat.auc.iloc[0] == 1.0
    metrics = json.loads((run / "summary.json").read_text())["metrics"]
    assert metrics["sanity/leak_ok"] and metrics["n_units"] == 14
    assert metrics["sanity/null_ok"] and metrics["sanity/dp_ok"]
    assert set(metrics["certified"]) == {"natural-rho0", "kip-rho0", "kip_noise-rho0",
                                         "kip_rho-rho0.9", "null-rho0", "leak-rho0",
                                         "dp_kip-eps8"}
    assert metrics["certified"]["leak-rho0"]["epsilon"] > 1  # every member is released
    scores = np.load(run / "scores.npz")
    assert scores["member"].shape == (2, 100)
    assert scores["kip-rho0__lira_online:margin_aug"].shape == (2, 100)
    children = sorted(p.parent.name for p in (run / "runs" / "r00").glob("*/support.npz"))
    assert [c.rsplit("-", 1)[0] for c in children] == ["dp_kip-eps8", "kip-rho0",
                                                        "kip_noise-rho0", "kip_rho-rho0.9",
                                                        "null-rho0"]
    report = kipctl("report", str(run), "audit=strongest", f"out={tmp_path / 'rep'}",
                    "name=audit", "format=md,csv")
    assert report.returncode == 0, report.stderr[-2000:]
    table = pd.read_csv(tmp_path / "rep" / "audit.csv", keep_default_na=False)
    assert {"null", "leak", "kip_rho"} <= set(table.cell) and "TPR [95% CI] at FPR (1% target)" in table
    assert len(table) == len(df[df.strongest])
    # a finished audit recomputes nothing; an interrupted one reuses children and scores
    again = kipctl(*SMOKE, f"hydra.run.dir={run}")
    assert again.returncode == 0 and "nothing to recompute" in again.stdout + again.stderr
    info = json.loads((run / "run.json").read_text())
    info["status"] = "failed"
    (run / "run.json").write_text(json.dumps(info))
    before = {p: p.stat().st_mtime_ns for p in run.glob("runs/*/*/support.npz")}
    resumed = kipctl(*SMOKE, f"hydra.run.dir={run}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in before} == before  # no child re-trained
    pd.testing.assert_frame_equal(pipeline.read_audit_csv(run / "audit.csv"), df)


@pytest.mark.slow
@requires_data
def test_mnist_subset_audit_runs_and_the_leak_cell_leaks(kipctl, tmp_path):
    run = tmp_path / "audit"
    out = kipctl("audit", "dataset=mnist", "dataset.n_test=500", "universe=200",
                 "support=10", "shadows=2", "cells=[kip,null,leak]", "distill.steps=5",
                 "distill.target_batch=100", "neighbours=0", f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr[-3000:]
    df = pipeline.read_audit_csv(run / "audit.csv")
    leak = df[(df.cell == "leak") & (df.attack == "nn_l2")].iloc[0]
    assert leak.auc >= 0.99 and leak.test_accuracy > 0.6  # 100 natural MNIST images
    kip = df[(df.cell == "kip") & (df.members == "all")]
    assert kip.test_accuracy.iloc[0] > 0.3  # 10 KIP images after 5 steps (chance: 0.1)
    assert not (run / "neighbours.png").exists()  # neighbours=0: no figure


def test_report_of_an_older_audit_table_is_one_line(kipctl, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    pd.DataFrame([{"cell": "kip", "rho": 0.0, "members": "all", "attack": "margin",
                   "auc": 0.7, "strongest": True, "eps_lower_bound": 1.0}]).to_csv(
        old / "audit.csv", index=False)
    (old / "run.json").write_text(json.dumps({"command": "audit", "status": "done"}))
    out = kipctl("report", str(old), "audit=strongest", f"out={tmp_path / 'rep'}")
    assert_one_line_error(out, "older kipctl audit")


@pytest.mark.integration
def test_audit_dry_run_prints_one_estimate_and_writes_nothing(kipctl, tmp_path):
    run = tmp_path / "audit"
    out = kipctl(*SMOKE, "cells=[natural,kip,leak]", "dry_run=true", f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr[-2000:]
    line = out.stdout.strip().splitlines()[-1]
    assert line.startswith("audit: 6 cell units (3 cells x 2 runs"), line
    assert line.endswith("(dry run: nothing written)") and "each" in line
    assert not run.exists()
