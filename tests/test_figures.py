"""kipctl report figure=figure-a1|a3|a4|a5 and images=: the plotted numbers, the panels, the
files, and the one-line errors. Run trees are built by hand in tmp_path (as test_report.py
does), except one tiny real `kipctl distill` on the synthetic dataset for the image panels."""

import numpy as np
import pandas as pd
import pytest

from kip_runner.paper import figures
from kip_runner.pipelines.report import distill_panels, main
from kip_runner.runs import tables
from kip_runner.runs.rundir import write_json
from kip_runner.runs.support import load_support, save_support
from tests.conftest import run_kipctl

pytestmark = pytest.mark.integration
DATASET = {"name": "synthetic", "n_classes": 10, "preprocessing": "standardize"}


def fake_run(root, name, command, config, metrics=None, status="done"):
    d = root / name
    write_json(d / "run.json", {"command": command, "status": status, "config": config})
    write_json(d / "summary.json", {"command": command, "status": status,
                                    "metrics": metrics or {}})
    return d


def fake_distill(root, name, kernel, support, rho=0.0):
    d = fake_run(root, name, "distill", {"dataset": DATASET, "kernel": {"name": kernel},
                                          "support": support, "rho": rho, "seed": 0},
                 metrics={"test_accuracy": 0.5})
    labels = np.eye(10, dtype=np.float32)[np.arange(support) % 10] - 0.1  # [n, 10]
    save_support(d / "support.npz", np.zeros((support, 8, 8, 1)), labels,
                 meta={"command": "distill", "kernel": {"name": kernel}, "rho": rho})
    return d / "support.npz"


def eval_krr(root, name, source, kernel, kind, acc, support=100, rho=0.0):
    return fake_run(root, name, "eval-krr",
                    {"dataset": DATASET, "kernel": {"name": kernel, "kind": kind},
                     "source": str(source), "support": support, "rho": rho, "seed": 0},
                    metrics={"accuracy_mean": acc, "accuracy_std": 0.0, "n_test": 200})


def one_line_errors(capsys, n):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == n and all(line.startswith("kipctl: error:") for line in err), err
    return err


def test_source_columns_from_the_distill_run_or_the_npz_meta(tmp_path):
    npz = fake_distill(tmp_path, "d", "conv2", 20, rho=0.5)
    eval_krr(tmp_path, "e", npz, "fc1", "ntk", 0.7)
    # A support file with no run dir next to it: kernel and rho from its meta, n from images.
    bare = tmp_path / "loose" / "kip.npz"
    save_support(bare, np.zeros((30, 8, 8, 1)), np.zeros((30, 10)),
                 meta={"kernel": {"name": "fc3"}, "rho": 0.9})
    eval_krr(tmp_path, "e2", bare, "fc1", "nngp", 0.6)
    eval_krr(tmp_path, "nat", "natural", "fc1", "ntk", 0.5)
    done, _ = tables.collect_runs([tmp_path])
    rows = done[done.command == "eval-krr"].set_index("run_dir")
    e, e2 = rows.loc[str(tmp_path / "e")], rows.loc[str(tmp_path / "e2")]
    assert (e.source_kernel, e.source_support, e.source_rho) == ("conv2", 20, 0.5)
    assert e.source_command == "distill"
    assert (e2.source_kernel, e2.source_support, e2.source_rho) == ("fc3", 30, 0.9)
    assert pd.isna(rows.loc[str(tmp_path / "nat")].source_kernel)
    assert not set(tables.SOURCE_COLUMNS) & set(tables.metric_columns(done))


def test_figure_a1_averages_over_evaluation_kernels(tmp_path, capsys):
    evals = [("fc1", "ntk"), ("fc1", "nngp"), ("conv1", "ntk")]
    accs = {("family_fc_conv", 10): [0.80, 0.82, 0.84], ("fc1", 10): [0.90, 0.70, 0.50],
            ("conv1", 10): [0.6, 0.6, 0.6], ("fc1", 20): [0.95, 0.93, 0.91]}
    for (train, n), acc in accs.items():
        npz = fake_distill(tmp_path, f"d-{train}-{n}", train, n)
        for (k, kind), a in zip(evals, acc):
            eval_krr(tmp_path, f"e-{train}-{n}-{k}-{kind}", npz, k, kind, a)
    eval_krr(tmp_path, "seed1", tmp_path / "d-fc1-10" / "support.npz", "fc1", "ntk", 0.8)
    for (k, kind), a in zip(evals[:2], [0.4, 0.5]):  # natural baseline of the n=10 series
        eval_krr(tmp_path, f"nat-{k}-{kind}", "natural", k, kind, a, support=10)
    eval_krr(tmp_path, "nat500", "natural", "fc1", "ntk", 0.99, support=500)  # no series
    ls = fake_run(tmp_path, "ls", "label-solve", {"kernel": {"name": "rbf"}, "support": 10})
    save_support(ls / "support.npz", np.zeros((10, 8, 8, 1)), np.zeros((10, 10)))
    eval_krr(tmp_path, "e-ls", ls / "support.npz", "fc1", "ntk", 0.3)  # not KIP: left out

    done, _ = tables.collect_runs([tmp_path])
    frame = figures.a1_frame(done)
    n10 = frame[frame.support == 10].set_index("train_kernel")
    assert list(n10.index) == ["fc1", "conv1", "family_fc_conv", "natural"]
    # fc1 ntk is averaged over its two seeds (0.9, 0.8) before the mean over eval kernels
    assert n10.loc["fc1", "mean"] == pytest.approx(np.mean([0.85, 0.70, 0.50]))
    assert n10.loc["fc1", "std"] == pytest.approx(np.std([0.85, 0.70, 0.50]))
    assert n10.loc["fc1", "n_eval"] == 3 and n10.loc["fc1", "n_runs"] == 4
    assert n10.loc["family_fc_conv", "mean"] == pytest.approx(0.82)
    assert n10.loc["natural", "mean"] == pytest.approx(0.45) and n10.loc["natural", "n_eval"] == 2
    assert set(frame.support) == {10, 20}  # the support-500 natural run has no KIP series

    fig = figures.draw_a1(frame, "caption")
    (ax,) = fig.axes
    assert len(ax.containers) == 2  # one errorbar series per support size
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fc1", "conv1", "family_fc_conv"]
    baselines = [ln for ln in ax.get_lines() if ln.get_label().startswith("natural")]
    assert len(baselines) == 1 and baselines[0].get_ydata()[0] == pytest.approx(45.0)
    figures._pyplot().close(fig)

    assert main([str(tmp_path), "figure=figure-a1", "format=csv", f"out={tmp_path / 'rep'}",
                 "name=a1"]) == 0
    for ext in ("png", "pdf"):
        assert (tmp_path / "rep" / f"a1.{ext}").stat().st_size > 1000


def sweep_results(root):
    rows = []
    for evaluator, loss in (("krr", "mse"), ("nn", "xent")):
        for data, base in (("natural", 0.8), ("kip", 0.9)):
            for rho in (0.0, 0.5, 0.9):
                for seed in (0, 1):
                    rows.append(dict(data=data, support=100, rho=rho, evaluator=evaluator,
                                     loss=loss, seed=seed, status="done", dataset="mnist",
                                     test_accuracy=base - rho / 10 + 0.02 * seed,
                                     test_mse=0.1, run_dir="x"))
    rows.append(dict(rows[0], status="failed", test_accuracy=0.0))  # never plotted
    (root / "sweep").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "sweep" / "results.csv", index=False)
    fake_run(root, "sweep", "corrupt-sweep", {"dataset": {"name": "mnist"}},
             metrics={"n_cells": 24})
    return pd.DataFrame(rows)


def test_figure_a3_accuracy_vs_rho(tmp_path):
    frame = figures.a3_frame(sweep_results(tmp_path))
    assert len(frame) == 2 * 2 * 3 and set(frame.n) == {2}
    cell = frame[(frame.evaluator == "krr") & (frame.data == "natural") & (frame.rho == 0.9)]
    assert cell["mean"].item() == pytest.approx(0.72) and cell["std"].item() == pytest.approx(
        0.01)
    fig = figures.draw_a3(frame, "caption")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["mnist: KRR", "mnist: NN (xent)"]
    assert all(len(ax.containers) == 2 for ax in visible)  # natural and KIP lines
    kip = visible[0].containers[0 if visible[0].containers[0].get_label().startswith("KIP")
                                else 1]
    assert kip[0].get_ydata() == pytest.approx([91.0, 86.0, 82.0])
    figures._pyplot().close(fig)
    assert main([str(tmp_path / "sweep"), "figure=figure-a3", "format=csv"]) == 0
    assert (tmp_path / "sweep" / "report" / "report.pdf").stat().st_size > 1000


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    """A real 2-step KIP_rho run on the synthetic dataset (rho=0.5)."""
    run = tmp_path_factory.mktemp("distill") / "run"
    out = run_kipctl("distill", "dataset=synthetic", "support=20", "target_batch=100",
                     "steps=2", "rho=0.5", "eval_every=0", f"hydra.run.dir={run}",
                     env={"JAX_DISABLE_MOST_OPTIMIZATIONS": "1"})
    assert out.returncode == 0, out.stderr
    return run


def test_image_panels_pair_learned_and_natural_init(distilled, tmp_path):
    done, _ = tables.collect_runs([distilled])
    learned, natural = distill_panels(done)
    assert "KIP$_\\rho$" in learned.title and "ρ=0.5" in learned.title
    assert "n=20" in learned.title and natural.title.startswith("synthetic Natural")
    assert learned.images.shape == natural.images.shape == (10, 8, 8, 1)
    assert learned.labels == natural.labels == tuple(range(10))  # one image per class
    assert 0.0 <= learned.images.min() and learned.images.max() <= 1.0
    # The natural row is the distill init: identical on the frozen (corrupted) pixels, and
    # within two Adam steps (lr 0.01) of the learned images elsewhere (before display).
    sup = load_support(distilled / "support.npz", 10)
    pos = figures.panel_positions(sup.labels)
    frozen = sup.mask[pos]
    assert frozen.mean() == pytest.approx(0.5)
    np.testing.assert_array_equal(learned.images[frozen], natural.images[frozen])
    std = np.asarray(sup.meta["std"])
    assert np.abs(learned.images - natural.images).max() <= 0.03 * std.max()

    assert main([str(distilled), "figure=figure-a5", "format=csv",
                 f"out={tmp_path / 'rep'}", "name=a5"]) == 0
    assert (tmp_path / "rep" / "a5.png").stat().st_size > 1000
    assert main([f"images={distilled / 'support.npz'}", f"out={tmp_path / 'img'}"]) == 0
    for ext in ("png", "pdf"):
        assert (tmp_path / "img" / f"images.{ext}").stat().st_size > 1000


def test_display_and_positions():
    x = np.full((2, 2, 2, 1), 1.0)  # standardised value 1 -> mean + std
    shown = figures.display_images(x, {"preprocessing": "standardize", "mean": [0.25],
                                       "std": [0.5]})
    assert shown == pytest.approx(np.full((2, 2, 2, 1), 0.75))
    assert figures.display_images(10 * x, {"mean": [0.25], "std": [0.5]}).max() == 1.0
    labels = np.eye(3)[[2, 0, 0, 1, 2]]  # classes 2,0,0,1,2
    assert figures.panel_positions(labels, k=10).tolist() == [1, 2, 3, 0, 4]
    assert figures.panel_positions(labels, k=2).tolist() == [1, 3]
    assert figures.grid_positions(labels) == [[1, 2], [3], [0, 4]]


def test_figure_errors_are_one_line(tmp_path, capsys):
    fake_run(tmp_path, "r", "eval-krr", {"source": "natural", "support": 10},
             metrics={"accuracy_mean": 0.5})
    for fig in ("figure-a1", "figure-a3", "figure-a4", "figure-a9"):
        assert main([str(tmp_path), f"figure={fig}", "format=csv"]) == 2
    assert main([f"images={tmp_path / 'missing.npz'}"]) == 2
    (tmp_path / "junk.npz").write_bytes(b"not an npz")
    assert main([f"images={tmp_path / 'junk.npz'}"]) == 2
    err = one_line_errors(capsys, 6)
    assert "figure-a1 needs eval-krr runs" in err[0] and "results.csv" in err[1]
    assert "figure-a4 needs distill run" in err[2] and "figure= takes one of" in err[3]
    assert "does not exist" in err[4] and "corrupt support file" in err[5]
