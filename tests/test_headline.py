"""The closing line of each command (pipelines/headline.py)."""

from pathlib import Path

from kip_runner.pipelines.headline import headline


def test_distill_line_rounds_and_names_the_support_file():
    m = {"test_accuracy": 0.8499999642372131, "kernel": "fc1", "support": 10, "steps": 200,
         "seconds_per_step": 0.01283, "eval_dtype": "float64"}
    assert headline("distill", {}, m, Path("outputs/distill/x")) == (
        "distill: 85.00 % KRR test accuracy (fc1, 10 images, 200 steps, 12.8 ms/step, float64 "
        "eval) -> outputs/distill/x/support.npz")


def test_eval_krr_line_names_kernel_source_and_spread():
    cfg = {"kernel": {"name": "myrtle5", "arch": "myrtle", "kind": "nngp"}, "support": 100,
           "source": "outputs/distill/x/support.npz"}
    m = {"accuracy_mean": 0.9123, "accuracy_std": 0.0045, "n_seeds": 1, "dtype": "float32",
         "n_test": 10000}
    assert headline("eval-krr", cfg, m, Path("r")) == (
        "eval-krr: 91.23 ± 0.45 % KRR test accuracy (myrtle5 nngp, 100 images of support.npz, "
        "1 seed(s), float32, 10000 test images) -> r")
    # a support file's own size, not the config's `support` (which only sizes natural draws)
    assert "(myrtle5 nngp, 20 images of support.npz," in headline(
        "eval-krr", cfg, {**m, "n_support": 20}, Path("r"))


def test_partial_or_unknown_metrics_still_give_one_line():
    assert headline("corrupt-sweep", {}, {"wall_seconds": "x"}, Path("r")) == \
        "corrupt-sweep: done (1 metrics in summary.json) -> r"
    assert headline("report", {}, {"rows": 3, "mean": 0.123456}, Path("r")) == \
        "report: rows 3, mean 0.1235 -> r"
