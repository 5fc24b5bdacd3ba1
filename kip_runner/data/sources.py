"""Readers for the datasets' native formats, from a directory, with tfds as a fallback.

Layouts read from `data_dir` (KIP_DATA_DIR or the `dataset.data_dir` config key):
  <dir>/<name>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]   MNIST, Fashion-MNIST (IDX)
  <dir>/<name>/train.npz, test.npz with x [N,H,W,C] uint8 and y [N]  any dataset (arrays)
  <dir>/<name>/cifar-10-batches-py/ or <dir>/cifar-10-batches-py/     CIFAR-10 python pickles
Without a data_dir, tensorflow_datasets.load is used (needs the internet or a tfds cache).
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from kip_runner.errors import KipctlError, read_error

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_DATASETS = ("mnist", "fashion_mnist")
CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


class RawSplits(NamedTuple):
    x_train: np.ndarray  # [N, H, W, C] uint8
    y_train: np.ndarray  # [N] int64
    x_test: np.ndarray  # [M, H, W, C] uint8
    y_test: np.ndarray  # [M] int64
    source: str  # where the arrays came from, for run.json
    note: str  # caveats to print in outputs (e.g. a partial test split)


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: Path) -> np.ndarray:
    """Reads one IDX file (gzipped or not). Raises KipctlError if it is malformed."""
    try:
        with _open(path) as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise KipctlError(f"corrupt data file {path}: {read_error(e)}") from None
    if len(data) < 8 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise KipctlError(f"corrupt data file {path}: not an unsigned-byte IDX file "
                          "(bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    count = int(np.prod(shape))
    if len(data) - header != count:
        raise KipctlError(f"corrupt data file {path}: header says {shape} = {count} bytes, "
                          f"file has {len(data) - header}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def _find(folder: Path, stem: str) -> Optional[Path]:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_idx_splits(folder: Path) -> Optional[RawSplits]:
    paths = {s: [_find(folder, stem) for stem in stems] for s, stems in IDX_FILES.items()}
    if all(p is None for ps in paths.values() for p in ps):
        return None
    missing = [stem for s, stems in IDX_FILES.items() for stem, p in zip(stems, paths[s])
               if p is None]
    if missing:
        raise KipctlError(f"incomplete IDX dataset in {folder}: missing "
                          f"{', '.join(m + '.gz' for m in missing)}")
    arrays = {}
    for split, (img_path, lbl_path) in paths.items():
        x, y = read_idx(img_path), read_idx(lbl_path)
        if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise KipctlError(f"corrupt data files in {folder}: {img_path.name} has shape "
                              f"{x.shape} but {lbl_path.name} has {y.shape}")
        arrays[split] = (x[..., None], y.astype(np.int64))
    return RawSplits(*arrays["train"], *arrays["test"], source=str(folder), note="")


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f or "y" not in f:
                raise KipctlError(f"corrupt data file {path}: expected arrays 'x' and 'y', "
                                  f"found {sorted(f.files)}")
            x, y = f["x"], f["y"]
    except KipctlError:
        raise
    except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, EOFError
        raise KipctlError(f"corrupt data file {path}: {e}") from None
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise KipctlError(f"corrupt data file {path}: x {x.shape} and y {y.shape} do not "
                          "form [N,H,W,C] images with [N] labels")
    return x, y.astype(np.int64)


def _read_npz_splits(folder: Path) -> Optional[RawSplits]:
    train, test = folder / "train.npz", folder / "test.npz"
    if not train.is_file() and not test.is_file():
        return None
    if not (train.is_file() and test.is_file()):
        raise KipctlError(f"incomplete dataset in {folder}: need both train.npz and test.npz")
    x_tr, y_tr = _load_npz(train)
    x_te, y_te = _load_npz(test)
    return RawSplits(x_tr, y_tr, x_te, y_te, source=str(folder), note="")


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except Exception as e:
        raise KipctlError(f"corrupt data file {path}: {e}") from None


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(path)
    data, labels = d.get(b"data"), d.get(b"labels")
    if data is None or labels is None:
        raise KipctlError(f"corrupt data file {path}: no b'data'/b'labels' entries")
    x = np.asarray(data, np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # [N,32,32,3]
    return x, np.asarray(labels, np.int64)


def _read_cifar_pickles(folder: Path) -> Optional[RawSplits]:
    if not folder.is_dir():
        return None
    missing = [b for b in CIFAR_BATCHES + ["test_batch"] if not (folder / b).is_file()]
    if missing:
        raise KipctlError(f"incomplete CIFAR-10 batches in {folder}: missing {', '.join(missing)}")
    parts = [_cifar_batch(folder / b) for b in CIFAR_BATCHES]
    x_te, y_te = _cifar_batch(folder / "test_batch")
    return RawSplits(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                     x_te, y_te, source=str(folder), note="")


def expected_layout(name: str) -> str:
    """Human-readable list of the files a dataset directory must hold."""
    npz = f"{name}/train.npz + {name}/test.npz (arrays x, y)"
    if name in IDX_DATASETS:
        idx = ", ".join(f"{name}/{s}.gz" for stems in IDX_FILES.values() for s in stems)
        return f"{idx} or {npz}"
    if name == "cifar10":
        return f"{npz} or cifar10/cifar-10-batches-py/ (data_batch_1..5, test_batch)"
    return npz


def read_from_dir(name: str, data_dir: str) -> RawSplits:
    """Reads dataset `name` from `data_dir` in whichever supported layout is present.

    Raises:
      KipctlError: the directory or the expected files are missing or corrupt.
    """
    root = Path(os.path.expanduser(data_dir))
    if not root.is_dir():
        raise KipctlError(f"data directory {root} does not exist (set KIP_DATA_DIR or "
                          f"dataset.data_dir); expected {expected_layout(name)}")
    folder = root / name
    readers = []
    if folder.is_dir():
        if name in IDX_DATASETS:
            readers.append(lambda: _read_idx_splits(folder))
        readers.append(lambda: _read_npz_splits(folder))
    if name == "cifar10":
        readers += [lambda: _read_cifar_pickles(folder / "cifar-10-batches-py"),
                    lambda: _read_cifar_pickles(root / "cifar-10-batches-py")]
    for reader in readers:
        got = reader()
        if got is not None:
            return got
    raise KipctlError(f"dataset '{name}' not found in {root}: expected {expected_layout(name)}")


def read_from_tfds(name: str) -> RawSplits:
    """tensorflow_datasets fallback for users online (or with a populated tfds cache).
    TensorFlow is not a dependency of kipctl: it comes with the extra `kip_runner[tfds]`."""
    try:
        import tensorflow as tf  # noqa: PLC0415  (lazy: 5 s import, only on this path)
    except ImportError:
        raise KipctlError(f"no data_dir given (KIP_DATA_DIR unset) and loading '{name}' "
                          "through tensorflow_datasets needs TensorFlow: set KIP_DATA_DIR, or "
                          "pip install 'kip_runner[tfds]'") from None
    try:
        tf.config.set_visible_devices([], "GPU")  # keep TF off the accelerators JAX uses
        import tensorflow_datasets as tfds  # noqa: PLC0415
        splits = tfds.as_numpy(tfds.load(name, split=["train", "test"], batch_size=-1,
                                         as_supervised=True))
    except Exception as e:  # DatasetNotFoundError, download/connection errors
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise KipctlError(f"no data_dir given (KIP_DATA_DIR unset) and tfds could not load "
                          f"'{name}': {first}") from None
    (x_tr, y_tr), (x_te, y_te) = splits
    return RawSplits(np.asarray(x_tr), np.asarray(y_tr, np.int64), np.asarray(x_te),
                     np.asarray(y_te, np.int64), source=f"tfds:{name}", note="")
