"""Cost before long work (issue #25 item 3): the estimate line, its threshold, dry_run, and
the tile counts it multiplies (unit); dry runs of every timed command (integration)."""

import re

import numpy as np
import pytest

from kip_runner.config.schema import KernelConfig
from kip_runner.core.kernels import kernel_matrix
from kip_runner.pipelines import estimate
from kip_runner.pipelines.common import Kernel
from tests.conftest import REPO


@pytest.mark.parametrize("seconds,text", [
    (0.004, "4 ms"), (4.6, "4.6 s"), (52.4, "52 s"), (276, "4 min 36 s"),
    (4620, "1 h 17 min"), (90000, "25 h 00 min")])
def test_duration(seconds, text):
    assert estimate.duration(seconds) == text


def test_announce_prints_only_long_jobs_and_dry_run_raises(capsys):
    total = estimate.announce("label-solve", 1000, "kernel tiles of 1000 x 100", 4.6)
    assert total == pytest.approx(4600)
    err = capsys.readouterr().err.strip()
    assert err == "label-solve: 1000 kernel tiles of 1000 x 100, ~4.6 s each -> ~1 h 16 min"
    estimate.announce("eval-krr", 10, "kernel tiles of 10 x 10", 0.5)  # 5 s: silent
    assert capsys.readouterr().err == ""
    with pytest.raises(estimate.DryRun, match=r"^eval-krr: 10 kernel tiles .* -> ~5.0 s$"):
        estimate.announce("eval-krr", 10, "kernel tiles of 10 x 10", 0.5, dry_run=True)
    line = estimate.announce("distill", 100, "KIP steps", 1.0, extra_seconds=20.0,
                             extra_what="for 2 KRR evaluation(s)")
    assert "each + ~20 s for 2 KRR evaluation(s) -> ~2 min 00 s" in capsys.readouterr().err
    assert line == 120.0


@pytest.mark.parametrize("n1,n2,block", [(10, 7, 4), (9, None, 4), (5, 3, 8), (12, None, 5)])
def test_tile_counts_are_those_kernel_matrix_computes(n1, n2, block):
    kernel = Kernel(KernelConfig(name="rbf", arch="rbf", block_size=block), x64=True)
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(n1, 2, 2, 1))
    x2 = None if n2 is None else rng.normal(size=(n2, 2, 2, 1))
    calls = []
    kernel_matrix(kernel.fn, x1, x2, block, lambda done, total: calls.append(total))
    assert kernel.n_tiles(n1, n2) == calls[-1] == len(calls)
    seconds, tile = kernel.time_tile(x1, x1 if x2 is None else x2)
    assert seconds > 0 and tile.shape == kernel.tile_shape(n1, n1 if n2 is None else n2)


LINE = re.compile(r"^(\S+): (\d+) (.+), ~(.+) each(?: \+ ~.+)? -> ~(.+) \(dry run: nothing "
                  r"written\)$")


@pytest.mark.integration
@pytest.mark.parametrize("args", [
    ("distill", "dataset=synthetic", "support=20", "target_batch=100", "steps=500"),
    ("eval-krr", "dataset=synthetic", "support=20", "seeds=50"),
    ("label-solve", "dataset=synthetic", "support=20", "n_targets=300", "block_rows=100"),
    ("eval-nn", "dataset=synthetic", "support=20", "steps=400", "net.width=64", "seeds=1"),
    ("corrupt-sweep", "dataset=synthetic", "supports=[20]", "rhos=[0,0.9]",
     "evaluators=[krr]", "distill.steps=50", "distill.target_batch=100"),
])
def test_dry_run_prints_the_estimate_and_leaves_no_run_dir(kipctl, tmp_path, args):
    run = tmp_path / "run"
    out = kipctl(*args, "dry_run=true", f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr
    found = LINE.match(out.stdout.strip().splitlines()[-1])
    assert found and found[1] == args[0], out.stdout
    units = int(found[2])
    # steps after the timed ones; the sweep's cells: 2 distill + 4 evaluations
    expected = {"distill": 498, "eval-nn": 396, "corrupt-sweep": 6}.get(args[0])
    assert units == expected if expected else units > 0
    assert not run.exists(), sorted(p.name for p in run.iterdir())
    assert not list(REPO.glob("kipctl-dry-run-*"))
