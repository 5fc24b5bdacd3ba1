"""kipctl audit: config validation, the design and data the runs see, attack tables, and one
smoke run of the CLI (synthetic data, 2 runs, 3 KIP steps)."""

import json

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from kip_runner.cli import CONF_DIR
from kip_runner.config.audit_schema import AUDIT_ATTACKS, AuditConfig
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
    assert cfg.cells == ["natural", "kip", "kip_noise", "kip_rho", "null", "leak"]
    assert cfg.rhos == [0.0, 0.5, 0.75, 0.9] and list(cfg.attacks) == list(AUDIT_ATTACKS)
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
    cfg = compose_audit("dataset=synthetic", "universe=100", "support=10", "shadows=3",
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
    other = compose_audit("dataset=synthetic", "universe=100", "support=10", "shadows=3",
                          "distill.target_batch=50", "seed=1")
    with pytest.raises(KipctlError, match="another membership design"):
        pipeline.save_or_check_design(tmp_path / "design.npz",
                                      pipeline.make_design(other, raw.y_train))


def test_attack_rows_split_init_images_and_mark_the_strongest():
    cfg = compose_audit("dataset=synthetic", "universe=100", "support=10", "shadows=4",
                        "distill.target_batch=50")
    rng = np.random.default_rng(0)
    member = np.zeros((4, 20), bool)
    member[:, :10] = True
    member[2:] = ~member[2:]  # runs 2, 3 have the other half
    per_run = []
    for r in range(4):
        init = np.flatnonzero(member[r])[:2]  # two init images per run
        scores = {s: rng.normal(size=20) for s in ("loss", "margin", "nn_l2", "nn_trim",
                                                   "kernel_sim")}
        scores["nn_l2"][init] = 10.0  # nearest-image attack finds the init images only
        per_run.append({**scores, "init_pos": init, "test_accuracy": 0.5 + 0.1 * r,
                        "drift": 0.2})
    rows, attacks, roc = pipeline.attack_rows(cfg, "kip", 0.0, per_run, member)
    df = pd.DataFrame(rows)
    assert set(df.members) == {"all", "init", "other"}
    assert len(df) == 3 * len(AUDIT_ATTACKS) and set(attacks) == set(AUDIT_ATTACKS)
    init = df[(df.members == "init") & (df.attack == "nn_l2")].iloc[0]
    assert init.auc == 1.0 and init.tpr_at_1pct_fpr == 1.0 and init.n_members == 8
    assert init.n_nonmembers == 40 and init.strongest and init.eps_lower_bound > 0
    assert df.groupby("members").strongest.sum().tolist() == [1, 1, 1]
    assert df.test_accuracy.iloc[0] == pytest.approx(0.65)
    assert roc["attack"] == df[(df.members == "all") & df.strongest].attack.iloc[0]


def test_sanity_checks():
    rows = [{"cell": "null", "members": "all", "attack": a, "auc": auc,
             "tpr_at_1pct_fpr_lo": 0.005, "tpr_at_1pct_fpr_hi": 0.02, "fpr_1pct": 0.01,
             "tpr_at_0p1pct_fpr_lo": 0.0, "tpr_at_0p1pct_fpr_hi": 0.002, "fpr_0p1pct": 0.001}
            for a, auc in (("loss", 0.52), ("nn_l2", 0.58))]
    rows.append({"cell": "leak", "members": "all", "attack": "nn_l2", "auc": 1.0})
    s = pipeline.sanity(rows)
    assert s["sanity/null_ok"] and s["sanity/leak_ok"] and s["sanity/null_max_auc"] == 0.58
    assert s["sanity/null_tpr_outside_interval"] == ""
    rows[0]["auc"] = 0.7
    rows[1]["fpr_0p1pct"] = 0.0005
    rows[1]["tpr_at_0p1pct_fpr_lo"] = 0.0008
    s = pipeline.sanity(rows)
    assert not s["sanity/null_ok"] and s["sanity/null_tpr_outside_interval"] == "nn_l2@0p1pct"


# ------------------------------------------------------------------- smoke run of the CLI

SMOKE = ["audit", "dataset=synthetic", "universe=100", "support=10", "shadows=2",
         "rhos=[0.9]", "distill.steps=3", "distill.target_batch=50", "neighbours=5"]


@pytest.mark.integration
def test_smoke_audit_outputs_sanity_and_resume(kipctl, tmp_path):
    run = tmp_path / "audit"
    out = kipctl(*SMOKE, f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("audit.csv", "table.md", "scores.npz", "summary.json", "roc.png", "roc.pdf",
                 "neighbours.png", "design.npz", "runs/r01/members.npz"):
        assert (run / name).exists(), name
    df = pipeline.read_audit_csv(run / "audit.csv")
    assert list(df.columns) == pipeline.CSV_COLUMNS
    cells = {("natural", 0.0), ("kip", 0.0), ("kip_noise", 0.0), ("kip_rho", 0.9),
             ("null", 0.0), ("leak", 0.0)}
    assert set(zip(df.cell, df.rho)) == cells
    # 2 runs x 50 members / non-members each, pooled over runs
    assert set(df[df.members == "all"].n_members) == {100}
    assert set(df.n_nonmembers) == {100}
    assert set(df[df.members == "init"].n_members) == {20}  # 10 init images x 2 runs
    assert set(df[df.cell == "kip_noise"].members) == {"all"}  # noise init: no init images
    assert df.auc.between(0, 1).all() and df.test_accuracy.between(0, 1).all()
    assert (df.tpr_at_1pct_fpr_lo <= df.tpr_at_1pct_fpr).all()
    assert (df.tpr_at_1pct_fpr <= df.tpr_at_1pct_fpr_hi).all()
    leak = df[(df.cell == "leak") & (df.attack == "nn_l2")].iloc[0]
    assert leak.auc >= 0.99
    # the natural support is the members it was drawn from: nn_l2 finds each init image
    nat = df[(df.cell == "natural") & (df.members == "init") & (df.attack == "nn_l2")]
    assert nat.auc.iloc[0] == 1.0
    metrics = json.loads((run / "summary.json").read_text())["metrics"]
    assert metrics["sanity/leak_ok"] and metrics["n_units"] == 12
    # null: 200 pooled samples, AUC sd ~0.04 under H0 (correlated pairs: looser than 0.6)
    assert metrics["sanity/null_max_auc"] < 0.7
    scores = np.load(run / "scores.npz")
    assert scores["member"].shape == (2, 100) and scores["kip-rho0__lira_online"].shape == \
        (2, 100)
    children = sorted(p.parent.name for p in (run / "runs" / "r00").glob("*/support.npz"))
    assert [c.rsplit("-", 1)[0] for c in children] == ["kip-rho0", "kip_noise-rho0",
                                                        "kip_rho-rho0.9", "null-rho0"]
    report = kipctl("report", str(run), "audit=strongest", f"out={tmp_path / 'rep'}",
                    "name=audit", "format=md,csv")
    assert report.returncode == 0, report.stderr[-2000:]
    table = pd.read_csv(tmp_path / "rep" / "audit.csv", keep_default_na=False)
    assert {"null", "leak", "kip_rho"} <= set(table.cell) and "TPR@1%FPR [95% CI]" in table
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
