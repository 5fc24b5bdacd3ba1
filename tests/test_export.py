"""kipctl export and the imports of source= / data=: formats, round trips, bad inputs
(issue #25 item 1). Unit tier on small arrays; a CLI round trip on real MNIST."""

import csv
import json
import importlib.util

import numpy as np
import pytest

from kip_runner.data import preprocess
from kip_runner.errors import KipctlError
from kip_runner.pipelines.export import export
from kip_runner.runs import interop
from kip_runner.runs.support import Support, save_support
from tests.conftest import assert_one_line_error, requires_data

HAS_TORCH = importlib.util.find_spec("torch") is not None
N, H, W, C, K = 12, 6, 5, 1, 4
MEAN, STD = np.array([0.13]), np.array([0.31])
STATS = preprocess.Stats(MEAN, STD, None)


def _support(path, channels=C, rho_mask=True, out_of_gamut=True, prep="standardize",
             mean=MEAN, std=STD):
    """A KIP-like set in the standardised space of (mean, std), written as a support.npz."""
    rng = np.random.default_rng(0)
    pixels = rng.uniform(-0.1 if out_of_gamut else 0.0, 1.1 if out_of_gamut else 1.0,
                         (N, H, W, channels))
    images = ((pixels - mean) / std).astype(np.float32)  # [N,H,W,C]
    labels = (np.eye(K)[np.arange(N) % K] - 1 / K + rng.normal(0, 0.01, (N, K)))
    mask = rng.uniform(size=images.shape) < 0.5 if rho_mask else np.zeros(images.shape, bool)
    meta = {"command": "distill", "preprocessing": prep, "mean": list(mean), "std": list(std)}
    save_support(path, images, labels.astype(np.float32), mask, meta)
    return Support(images, labels.astype(np.float32), mask, meta)


def _read(path, stats=STATS, prep="standardize", space="auto", shape=(H, W, C)):
    return interop.read_support(path, shape, K, stats, prep, space)


def test_npz_round_trip_is_bit_exact(tmp_path):
    sup = _support(tmp_path / "support.npz")
    meta = export(tmp_path / "support.npz", "npz", tmp_path / "out")
    with np.load(tmp_path / "out/support.npz") as f:  # the KIP-ConvNet keys plus the stats
        assert {"images", "labels", "mean", "std", "preprocessing"} <= set(f.files)
        assert f["images"].shape == (N, H, W, C) and f["labels"].shape == (N, K)
    back = _read(tmp_path / "out")  # the export directory itself is a source
    assert np.array_equal(back.images, sup.images) and np.array_equal(back.labels, sup.labels)
    assert np.array_equal(back.mask, sup.mask) and meta["has_mask"]
    assert json.loads((tmp_path / "out/export.json").read_text())["format"] == "npz"


@pytest.mark.parametrize("channels", [1, 3])
def test_imagefolder_round_trip_within_half_a_uint8_step(tmp_path, channels):
    mean, std = np.full(channels, 0.13), np.full(channels, 0.31)
    sup = _support(tmp_path / "support.npz", channels, mean=mean, std=std)
    meta = export(tmp_path / "support.npz", "imagefolder", tmp_path / "out")
    lo, hi = meta["pixel_range"]  # out of gamut: auto fits the range instead of clipping
    assert meta["pixels"] == "fit" and lo < 0 and hi > 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir()) == \
        ["0", "1", "2", "3"]
    with open(tmp_path / "out/labels.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == N and float(rows[5]["label_1"]) == float(sup.labels[5, 1])
    stats = preprocess.Stats(mean, std, None)
    back = _read(tmp_path / "out", stats=stats, shape=(H, W, channels))
    step = (hi - lo) / 255 / std.min()  # one uint8 step in standardised units
    # read back in the set's order (labels.csv's), with its soft labels and masks
    assert np.max(np.abs(back.images - sup.images)) <= step / 2 + 1e-5
    assert np.array_equal(back.labels, sup.labels)
    frozen = np.any(sup.mask, axis=-1)  # one mask PNG per image, 255 = frozen
    assert np.array_equal(back.mask[..., 0], frozen)


def test_clip_writes_true_pixels_and_counts_what_it_clipped(tmp_path):
    sup = _support(tmp_path / "support.npz", rho_mask=False)
    meta = export(tmp_path / "support.npz", "imagefolder", tmp_path / "out", pixels="clip")
    unit = sup.images * STD + MEAN
    expected = np.mean((unit < -0.5 / 255) | (unit > 1 + 0.5 / 255))
    assert meta["pixels"] == "clip" and meta["clipped_fraction"] == pytest.approx(expected)
    assert not meta["has_mask"] and not list((tmp_path / "out").glob("*/*_mask.png"))
    back = _read(tmp_path / "out")
    assert back.images.min() >= (0 - MEAN[0]) / STD[0] - 1e-6  # black is the floor now
    # an in-gamut set is written as its true pixels by default (nothing to clip)
    _support(tmp_path / "in.npz", out_of_gamut=False)
    assert export(tmp_path / "in.npz", "imagefolder", tmp_path / "in")["pixels"] == "clip"


@pytest.mark.skipif(not HAS_TORCH, reason="torch is an optional extra (pip install -e '.[torch]')")
def test_pt_round_trip(tmp_path):
    import torch

    sup = _support(tmp_path / "support.npz", 3, mean=np.full(3, 0.4), std=np.full(3, 0.2))
    meta = export(tmp_path / "support.npz", "pt", tmp_path / "out")
    obj = torch.load(tmp_path / "out/support.pt", weights_only=True)
    assert obj["images"].shape == (N, 3, H, W) and obj["labels"].shape == (N, K)
    assert 0.0 <= float(obj["images"].min()) and float(obj["images"].max()) <= 1.0
    stats = preprocess.Stats(np.full(3, 0.4), np.full(3, 0.2), None)
    back = _read(tmp_path / "out/support.pt", stats=stats, shape=(H, W, 3))
    assert meta["pixels"] == "fit"
    np.testing.assert_allclose(back.images, sup.images, atol=1e-5)  # float32 pixels, no uint8
    # a DD-Ranking-style tensor file of raw [0,1] images with integer labels
    raw = np.random.default_rng(1).uniform(0, 1, (N, 3, H, W)).astype(np.float32)
    torch.save({"images": torch.from_numpy(raw), "labels": torch.arange(N) % K},
               tmp_path / "other.pt")
    got = _read(tmp_path / "other.pt", stats=stats, shape=(H, W, 3))
    want = preprocess.standardize(raw.transpose(0, 2, 3, 1).astype(np.float64) * 255,
                                  stats.mean, stats.std)
    np.testing.assert_allclose(got.images, want, atol=1e-6)


def test_another_methods_raw_npz_is_standardised_with_the_datasets_stats(tmp_path):
    rng = np.random.default_rng(2)
    u8 = rng.integers(0, 256, (N, H, W), dtype=np.uint8)  # grayscale uint8, class labels
    np.savez(tmp_path / "u8.npz", images=u8, labels=np.arange(N) % K)
    got = _read(tmp_path / "u8.npz")
    assert np.array_equal(got.images, preprocess.standardize(u8[..., None], MEAN, STD))
    assert np.array_equal(got.labels, preprocess.centered_one_hot(np.arange(N) % K, K))
    # RFAD's best.npz keys (images/labels), channels first, pixels in [0, 1]
    unit = rng.uniform(0, 1, (N, 3, H, W)).astype(np.float32)
    np.savez(tmp_path / "best.npz", images=unit, labels=np.eye(K)[np.arange(N) % K])
    stats = preprocess.Stats(np.full(3, 0.5), np.full(3, 0.25), None)
    got = _read(tmp_path / "best.npz", stats=stats, shape=(H, W, 3))
    want = preprocess.standardize(unit.transpose(0, 2, 3, 1).astype(np.float64) * 255,
                                  stats.mean, stats.std)
    np.testing.assert_allclose(got.images, want, atol=1e-6)


def test_a_set_with_other_statistics_is_mapped_through_pixel_space(tmp_path):
    sup = _support(tmp_path / "support.npz", mean=np.array([0.2]), std=np.array([0.5]))
    got = _read(tmp_path / "support.npz")  # the dataset's stats are MEAN, STD
    want = ((sup.images.astype(np.float64) * 0.5 + 0.2) - MEAN) / STD
    np.testing.assert_allclose(got.images, want, atol=1e-5)


@pytest.mark.parametrize("case,msg", [
    ("raw_range", "raw images must be floats in [0, 1] or uint8"),
    ("shape", "do not match the dataset's 6x5x1"),
    ("classes", "do not match 12 images of 4 classes"),
    ("folders", "5 class folders, but the dataset has 4 classes"),
    ("zca", "a ZCA space cannot be mapped"),
    ("missing", "does not exist"),
])
def test_bad_imports_are_one_line_errors(tmp_path, case, msg):
    rng = np.random.default_rng(3)
    path = tmp_path / "x.npz"
    space = "auto"
    if case == "raw_range":
        np.savez(path, images=rng.normal(0, 2, (N, H, W, C)), labels=np.arange(N) % K)
        space = "raw"
    elif case == "shape":
        np.savez(path, images=rng.uniform(0, 1, (N, 7, 7, 1)), labels=np.arange(N) % K)
    elif case == "classes":
        np.savez(path, images=rng.uniform(0, 1, (N, H, W, C)), labels=np.eye(K + 1)[np.arange(N) % (K + 1)])
    elif case == "folders":
        path = tmp_path / "folder"
        for c in range(K + 1):
            (path / str(c)).mkdir(parents=True)
    elif case == "zca":
        _support(path, prep="zca")
    elif case == "missing":
        path = tmp_path / "nothing.npz"
    with pytest.raises(KipctlError, match=None) as err:
        _read(path, space=space)
    assert msg in str(err.value) and "\n" not in str(err.value)


def test_export_refuses_zca_pixels_and_an_occupied_out_leaving_nothing(tmp_path):
    _support(tmp_path / "support.npz", prep="zca")
    with pytest.raises(KipctlError, match="ZCA-whitened"):
        export(tmp_path / "support.npz", "imagefolder", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy/file").write_text("x")
    with pytest.raises(KipctlError, match="already exists and is not empty"):
        export(tmp_path / "support.npz", "npz", tmp_path / "busy")
    assert export(tmp_path / "support.npz", "npz", tmp_path / "zca")["preprocessing"] == "zca"


@pytest.mark.integration
def test_cli_bad_export_options(kipctl, tmp_path):
    _support(tmp_path / "support.npz")
    assert_one_line_error(kipctl("export", str(tmp_path), "format=tiff"),
                          "format= must be one of imagefolder, npz, pt")
    assert_one_line_error(kipctl("export", str(tmp_path / "nope"), "format=npz"),
                          "does not exist")
    assert_one_line_error(kipctl("export", str(tmp_path), "format=npz", "pixels=stretch"),
                          "pixels= must be one of auto, clip, fit")


@pytest.mark.integration
@requires_data
def test_mnist_round_trips_through_eval_krr(kipctl, tmp_path):
    """distill -> export (npz / imagefolder / pt) -> eval-krr source=: the same accuracy
    (npz bit-exact; the 8-bit PNGs within 0.1 point)."""
    run = tmp_path / "run"
    out = kipctl("distill", "dataset=mnist", "kernel=fc1", "support=20", "steps=20",
                 "target_batch=500", "eval_every=0", "rho=0.5", f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr

    def accuracy(source, name):
        res = kipctl("eval-krr", "kernel=fc1", f"source={source}", f"hydra.run.dir={tmp_path}/{name}")
        assert res.returncode == 0, res.stderr
        return json.loads((tmp_path / name / "summary.json").read_text())["metrics"]
    base = accuracy(run / "support.npz", "krr-base")
    formats = ["npz", "imagefolder"] + (["pt"] if HAS_TORCH else [])
    for fmt in formats:
        res = kipctl("export", str(run), f"format={fmt}", f"out={tmp_path}/{fmt}")
        assert res.returncode == 0 and res.stdout.startswith(f"export: 20 images"), res.stderr
        got = accuracy(tmp_path / fmt, f"krr-{fmt}")
        if fmt == "npz":
            assert got["accuracy_mean"] == base["accuracy_mean"]
            assert got["mse_mean"] == base["mse_mean"]
        else:
            assert abs(got["accuracy_mean"] - base["accuracy_mean"]) <= 0.001, (fmt, got, base)
    # the imagefolder also trains a network (eval-nn data=), masks and soft labels included
    res = kipctl("eval-nn", "net=fc1", "net.width=64", "steps=5", "seeds=1",
                 f"data={tmp_path}/imagefolder", f"hydra.run.dir={tmp_path}/nn")
    assert res.returncode == 0, res.stderr
    with open(tmp_path / "nn/metrics.csv") as f:
        rho = {float(r["rho"]) for r in csv.DictReader(f)}
    assert len(rho) == 1 and rho.pop() == pytest.approx(0.5, abs=0.05)  # from the mask PNGs
