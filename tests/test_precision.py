"""x64 means float64 end to end (kernel matrices included), and a solve that needs a larger
ridge is recorded per row, in summary.json, once at the end of the run and in report tables."""

import json

import numpy as np
import pandas as pd
import pytest

from kip_runner.config.schema import KernelConfig
from kip_runner.core import krr
from kip_runner.pipelines.common import Kernel, krr_evaluate
from tests.conftest import requires_data
from tests.test_krr import linear_near_threshold


@pytest.mark.parametrize("name", ["linear", "rbf", "fc1"])
def test_kernel_matrix_dtype_follows_x64_not_the_inputs(name):
    arch = {"fc1": "fc"}.get(name, name)
    cfg = KernelConfig(name=name, arch=arch, depth=1)
    x = np.random.default_rng(0).normal(size=(6, 4, 4, 1)).astype(np.float32)  # float32 data
    assert Kernel(cfg, x64=True).matrix(x).dtype == np.float64
    assert Kernel(cfg, x64=True).matrix(x, x[:3]).dtype == np.float64
    assert Kernel(cfg, x64=False).matrix(x).dtype == np.float32


def test_x64_evaluation_factors_where_float32_needs_a_larger_ridge():
    x = linear_near_threshold().reshape(96, 8, 8, 1)  # float32 inputs
    y = np.eye(4, dtype=np.float32)[np.arange(96) % 4] - 0.25  # [96, 4]
    cfg = KernelConfig(name="linear", arch="linear")
    k32 = Kernel(cfg, x64=False)
    with pytest.raises(krr.SolveError):
        krr.factorize(k32.matrix(x), 1e-6, "strict")
    res64 = krr_evaluate(Kernel(cfg, x64=True), x, y, x, y, 1e-6)
    assert (res64["solve"], res64["reg_effective"], res64["dtype"]) == ("cholesky", 1e-6,
                                                                         "float64")
    res32 = krr_evaluate(k32, x, y, x, y, 1e-6)
    assert res32["solve"] == "cholesky+jitter" and res32["reg_effective"] > 1e-6
    assert res32["dtype"] == "float32"


@pytest.mark.slow
@requires_data
def test_mnist_linear_640_is_cholesky_in_float64_and_marked_in_float32(kipctl, tmp_path):
    """The issue's case (Table A1 linear column at 640 images, PAPER.md §8)."""
    common = ("eval-krr", "dataset=mnist", "kernel=linear", "support=640", "seeds=2",
              "dataset.n_test=500")
    out = kipctl(*common, f"hydra.run.dir={tmp_path / 'x64'}")  # x64 defaults to true
    assert out.returncode == 0, out.stderr
    df = pd.read_csv(tmp_path / "x64" / "metrics.csv")
    assert set(df.solve) == {"cholesky"} and set(df.dtype) == {"float64"}
    assert (df.reg_effective == 1e-6).all()
    m = json.loads((tmp_path / "x64" / "summary.json").read_text())["metrics"]
    assert m["solve_fallbacks"] == 0 and m["dtype"] == "float64"

    out = kipctl(*common, "x64=false", f"hydra.run.dir={tmp_path / 'f32'}")
    assert out.returncode == 0, out.stderr
    df = pd.read_csv(tmp_path / "f32" / "metrics.csv")
    assert set(df.solve) == {"cholesky+jitter"} and (df.reg_effective > 1e-6).all()
    m = json.loads((tmp_path / "f32" / "summary.json").read_text())["metrics"]
    assert m["solve_fallbacks"] == 2
    said = [line for line in (out.stdout + out.stderr).splitlines()
            if "did not factor at the requested ridge" in line]
    assert len(said) == 1 and "2 of 2" in said[0]  # once, at the end of the run

    strict = kipctl(*common, "x64=false", "solve=strict", f"hydra.run.dir={tmp_path / 's'}")
    assert strict.returncode == 2 and "use x64=true or a larger reg" in strict.stderr

    rep = kipctl("report", str(tmp_path / "x64"), str(tmp_path / "f32"), "by=dtype",
                 "values=accuracy_mean", f"out={tmp_path / 'rep'}")
    assert rep.returncode == 0, rep.stderr
    md = (tmp_path / "rep" / "report.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in md.splitlines()
            if line.startswith("| float")}
    assert "†" in rows["float32"] and "†" not in rows["float64"]
    assert "† includes KRR solves" in md
    tex = (tmp_path / "rep" / "report.tex").read_text()
    assert "$^\\dagger$ includes KRR solves" in tex
    csv = pd.read_csv(tmp_path / "rep" / "report.csv")
    assert dict(zip(csv.dtype, csv.solve_fallbacks)) == {"float32": 2, "float64": 0}
