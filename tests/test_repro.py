"""The paper-reproduction Makefile targets at SCALE=smoke (issue #8 acceptance): each target
runs its kipctl chain on real MNIST, writes its table/figure with a caption, and a second
`make` of the same target recomputes nothing (every run dir untouched)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import DATA_DIR, REPO, requires_data

pytestmark = [pytest.mark.slow, requires_data,
              pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")]


def make(target: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """`make <target> SCALE=smoke` with outputs under `out`, using this interpreter."""
    venv = Path(sys.prefix)
    env = {**os.environ, "KIP_DATA_DIR": DATA_DIR,
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = ["make", "--no-print-directory", "-o", f"{venv}/.installed", f"VENV={venv}",
           target, "SCALE=smoke", f"OUT={out}", f"KIPCTL={sys.executable} -m kip_runner",
           *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)


def run_files(root: Path) -> dict[str, int]:
    """mtime_ns of every run.json / summary.json / support.npz under root."""
    return {str(p): p.stat().st_mtime_ns for pattern in ("run.json", "summary.json",
                                                       "support.npz")
            for p in root.rglob(pattern)}


def make_twice(target: str, out: Path) -> tuple[subprocess.CompletedProcess, dict, dict]:
    first = make(target, out)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    wall1 = json.loads((out / "tables" / f"{target}-smoke.wall.json").read_text())
    # the whole scale's tree: corrupt-sweep targets keep their cells in a shared cells dir
    before = run_files(out / "repro" / "smoke")
    assert any(f"/{target}/" in p for p in before), f"{target} wrote no run directories"
    second = make(target, out)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    wall2 = json.loads((out / "tables" / f"{target}-smoke.wall.json").read_text())
    # Nothing recomputed: no run.json/summary.json/support.npz was rewritten, and every
    # kipctl run of the second pass said so.
    assert run_files(out / "repro" / "smoke") == before
    assert "nothing to recompute" in second.stdout + second.stderr
    return second, wall1, wall2


def caption_of(md: Path) -> str:
    return md.read_text().splitlines()[0]


def test_table_a1_smoke_twice(tmp_path):
    _, wall1, wall2 = make_twice("table-a1", tmp_path)
    csv = pd.read_csv(tmp_path / "tables" / "table-a1-smoke.csv")
    assert sorted(csv.kernel.unique()) == ["fc1", "linear", "rbf"]
    assert sorted(csv.support.unique()) == [10, 20]
    acc = csv["accuracy_mean"]
    assert ((acc > 0.2) & (acc < 0.9)).all(), csv  # 10-20 natural MNIST images: 30-70 %
    caption = caption_of(tmp_path / "tables" / "table-a1-smoke.md")
    assert "SCALE=smoke" in caption and "first 1000 test images" in caption
    assert re.search(r"\d{4}-\d{2}-\d{2}", caption)
    assert wall2["seconds"] <= wall1["seconds"]


def test_table_a7_smoke_twice(tmp_path):
    _, wall1, wall2 = make_twice("table-a7", tmp_path)
    csv = pd.read_csv(tmp_path / "tables" / "table-a7-smoke.csv")
    ours = csv[csv.n.fillna(0) > 0]
    # natural and KIP (a), support 20, rho 0 and 0.9, 2 inits each
    assert set(zip(ours.method, ours.support, ours.rho)) == {
        (m, 20, r) for m in ("Natural", "KIP (a)") for r in (0.0, 0.9)}
    assert (ours.n == 2).all()
    published = csv[csv.paper.fillna("").astype(str).str.len() > 0]
    assert len(published) >= 8  # the A7 rows PAPER.md gives stay in the table
    assert "SCALE=smoke" in caption_of(tmp_path / "tables" / "table-a7-smoke.md")
    assert wall2["seconds"] <= wall1["seconds"]


def test_figure_2_smoke_twice(tmp_path):
    _, wall1, wall2 = make_twice("figure-2", tmp_path)
    png = tmp_path / "figures" / "figure-2-smoke.png"
    assert png.stat().st_size > 10_000 and (tmp_path / "figures" / "figure-2-smoke.pdf").exists()
    csv = pd.read_csv(tmp_path / "figures" / "figure-2-smoke.csv")
    assert len(csv) == 4  # supports 10, 20 x targets 500, 1000
    assert ((csv.test_accuracy > 0.2) & (csv.test_accuracy < 1)).all()  # one run per cell
    assert wall2["seconds"] <= wall1["seconds"]


def test_unknown_scale_is_one_line(tmp_path):
    out = make("table-a1", tmp_path, "SCALE=huge")
    assert out.returncode != 0
    assert "SCALE must be smoke, cpu or paper, got 'huge'" in out.stderr
    assert not (tmp_path / "repro").exists()
