"""Data layer: native readers (IDX, npz arrays, CIFAR pickles), errors, preprocessing."""

import gzip
import pickle
import struct

import numpy as np
import pytest

from kip_runner.data import load_dataset, preprocess
from kip_runner.data.sources import read_from_dir, read_idx
from kip_runner.errors import KipctlError
from tests.conftest import requires_data, DATA_DIR


def write_idx(path, arr, gz=True):
    header = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    blob = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(blob)
    else:
        path.write_bytes(blob)


def make_idx_dataset(root, name="mnist", n=20, gz=True):
    folder = root / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for split, m in (("train", n), ("t10k", n // 2)):
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}",
                  rng.integers(0, 256, (m, 28, 28)), gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", np.arange(m) % 10, gz)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_idx_roundtrip(tmp_path, gz):
    make_idx_dataset(tmp_path, gz=gz)
    raw = read_from_dir("mnist", str(tmp_path))
    assert raw.x_train.shape == (20, 28, 28, 1) and raw.x_test.shape == (10, 28, 28, 1)
    assert raw.y_train.tolist() == [i % 10 for i in range(20)]


def test_truncated_idx_is_reported(tmp_path):
    folder = make_idx_dataset(tmp_path, gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(KipctlError, match="corrupt data file .*train-images"):
        read_from_dir("mnist", str(tmp_path))


def test_bad_gzip_is_reported(tmp_path):
    folder = make_idx_dataset(tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(KipctlError, match="corrupt data file"):
        read_from_dir("mnist", str(tmp_path))


def test_missing_idx_file_is_named(tmp_path):
    folder = make_idx_dataset(tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(KipctlError, match="missing t10k-labels-idx1-ubyte.gz"):
        read_from_dir("mnist", str(tmp_path))


def test_missing_directory_names_expected_files(tmp_path):
    with pytest.raises(KipctlError, match="fashion_mnist/train-images-idx3-ubyte.gz"):
        read_from_dir("fashion_mnist", str(tmp_path))
    with pytest.raises(KipctlError, match="does not exist"):
        read_from_dir("mnist", str(tmp_path / "nope"))


def test_npz_layout(tmp_path):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    x = np.zeros((10, 32, 32, 3), np.uint8)
    np.savez(folder / "train.npz", x=x, y=np.arange(10))
    np.savez(folder / "test.npz", x=x[:4], y=np.arange(4))
    raw = read_from_dir("cifar10", str(tmp_path))
    assert raw.x_train.shape == (10, 32, 32, 3) and raw.y_test.tolist() == [0, 1, 2, 3]
    np.savez(folder / "test.npz", images=x[:4])
    with pytest.raises(KipctlError, match="expected arrays 'x' and 'y'"):
        read_from_dir("cifar10", str(tmp_path))


def test_cifar_pickle_layout(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (3, 3072)).astype(np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [1, 2, 3]}, f)
    raw = read_from_dir("cifar10", str(tmp_path))
    assert raw.x_train.shape == (15, 32, 32, 3) and raw.x_test.shape == (3, 32, 32, 3)
    # channel-last conversion: the first red row comes from the first 32 bytes
    with open(folder / "data_batch_1", "rb") as f:
        first = pickle.load(f)[b"data"][0]
    np.testing.assert_array_equal(raw.x_train[0, 0, :, 0], first[:32])


def test_standardize_and_labels():
    x = np.random.default_rng(0).integers(0, 256, (50, 4, 4, 3)).astype(np.uint8)
    mean, std = preprocess.channel_stats(x)
    xs = preprocess.standardize(x, mean, std)
    np.testing.assert_allclose(xs.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(xs.std(axis=(0, 1, 2)), 1, atol=1e-4)
    y = preprocess.centered_one_hot(np.array([0, 2]), 3)
    np.testing.assert_allclose(y, [[2 / 3, -1 / 3, -1 / 3], [-1 / 3, -1 / 3, 2 / 3]], rtol=1e-6)


def test_zca_whitens():
    x = np.random.default_rng(0).normal(size=(500, 2, 2, 1)) @ np.ones((1, 1))
    x[..., 0] += x[:, :1, :1, 0]  # correlate the features
    w = preprocess.zca_matrix(x, 1e-8)
    flat = preprocess.apply_zca(x, w).reshape(500, -1)
    cov = np.cov(flat - flat.mean(0), rowvar=False, bias=True)
    np.testing.assert_allclose(cov, np.eye(4), atol=1e-3)


def test_synthetic_is_deterministic():
    a = load_dataset("synthetic", None)
    b = load_dataset("synthetic", None)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.x_train.shape == (400, 8, 8, 1) and a.n_classes == 10


def test_labels_outside_n_classes_are_rejected(tmp_path):
    folder = tmp_path / "toy"
    folder.mkdir()
    x = np.zeros((10, 4, 4, 1), np.uint8)
    np.savez(folder / "train.npz", x=x, y=np.arange(10))
    np.savez(folder / "test.npz", x=x, y=np.arange(10))
    assert load_dataset("toy", str(tmp_path), n_classes=10).n_classes == 10
    with pytest.raises(KipctlError, match="n_classes=5"):
        load_dataset("toy", str(tmp_path), n_classes=5)


@pytest.mark.slow
@requires_data
def test_real_mnist_matches_the_published_checks():
    raw = read_from_dir("mnist", DATA_DIR)
    assert raw.x_train.shape == (60000, 28, 28, 1) and raw.x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(raw.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918,
                                                 6265, 5851, 5949]
    assert raw.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert abs(raw.x_train.mean() - 33.3184) < 1e-3


@pytest.mark.slow
@requires_data
def test_real_cifar_has_the_partial_test_split_noted():
    ds = load_dataset("cifar10", DATA_DIR, n_train=100)
    assert ds.x_test.shape == (1000, 32, 32, 3)
    assert "1000 images" in ds.note


def test_garbage_npz_files_are_named_not_pickles(tmp_path):
    """A file that is no numpy archive gets one line saying so, not numpy's advice to load it
    with allow_pickle (kipctl's files never hold pickles): support sets and checkpoints."""
    from kip_runner.runs.checkpoint import load_checkpoint
    from kip_runner.runs.support import load_support
    bad = tmp_path / "support.npz"
    bad.write_bytes(b"\x00garbage that is not a zip archive" * 4)
    for load in (load_support, lambda p: load_checkpoint(p, None)):
        with pytest.raises(KipctlError) as err:
            load(bad)
        message = str(err.value)
        assert "not an .npz/.npy file" in message and "allow_pickle" not in message
