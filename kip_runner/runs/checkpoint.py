"""Checkpoints (STYLE.md "Per-run outputs"): npz files of flat pytrees plus the config
fingerprint, and a `LATEST` pointer.

    <run>/checkpoints/step_000500.npz   leaf_00000 ... leaf_NNNNN, step, fingerprint, meta
    <run>/checkpoints/LATEST            the file name of the newest complete checkpoint

Both are written atomically (temporary file + os.replace), and LATEST is updated only after
its checkpoint is complete, so a run killed at any moment leaves a loadable LATEST. The tree
structure is not pickled: loading takes a template pytree (the freshly initialised state) and
checks that the number, shapes and dtypes of the leaves agree.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, NamedTuple, Optional

import jax
import numpy as np

from kip_runner.errors import KipctlError
from kip_runner.runs.rundir import atomic_write

LATEST = "LATEST"


class Checkpoint(NamedTuple):
    tree: Any  # the restored pytree (numpy leaves)
    step: int
    fingerprint: str
    meta: dict
    path: Path


def checkpoint_name(step: int) -> str:
    return f"step_{step:06d}.npz"


def save_checkpoint(directory: Path, step: int, tree: Any, fingerprint: str,
                    meta: Optional[dict] = None) -> Path:
    """Writes <directory>/step_XXXXXX.npz from the leaves of `tree`, then points LATEST at it."""
    directory = Path(directory)
    leaves = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]
    arrays = {f"leaf_{i:05d}": leaf for i, leaf in enumerate(leaves)}
    arrays["step"] = np.asarray(step, np.int64)
    arrays["fingerprint"] = np.asarray(fingerprint)
    arrays["meta"] = np.asarray(json.dumps(meta or {}, default=str))
    path = directory / checkpoint_name(step)

    def w(tmp: str) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        with open(tmp, "wb") as f:
            f.write(buf.getvalue())
    atomic_write(path, w)
    atomic_write(directory / LATEST, lambda tmp: Path(tmp).write_text(path.name + "\n"))
    return path


def latest_checkpoint(directory: Path) -> Optional[Path]:
    """The checkpoint LATEST points to, or None when there is none."""
    pointer = Path(directory) / LATEST
    if not pointer.is_file():
        return None
    path = Path(directory) / pointer.read_text().strip()
    if not path.is_file():
        raise KipctlError(f"{pointer} points to {path.name}, which does not exist; remove "
                          f"{pointer} to start over")
    return path


def load_checkpoint(path: Path, template: Any, fingerprint: Optional[str] = None) -> Checkpoint:
    """Reads a checkpoint into the structure of `template`.

    Args:
      path: a step_XXXXXX.npz.
      template: a pytree with the expected structure, leaf shapes and dtypes.
      fingerprint: when given, the checkpoint must have been written by this config.

    Raises:
      KipctlError: corrupt file, a different config's fingerprint, or mismatched leaves.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            stored_fp = str(f["fingerprint"])
            step = int(f["step"])
            meta = json.loads(str(f["meta"]))
            names = sorted(k for k in f.files if k.startswith("leaf_"))
            leaves = [np.asarray(f[k]) for k in names]
    except Exception as e:  # noqa: BLE001 - any read error is a corrupt file to the user
        raise KipctlError(f"corrupt checkpoint {path}: {e}") from None
    if fingerprint is not None and stored_fp != fingerprint:
        raise KipctlError(f"checkpoint {path} was written by a different config (fingerprint "
                          f"{stored_fp}, this one {fingerprint}); use a new hydra.run.dir or "
                          "the original overrides")
    ref, treedef = jax.tree_util.tree_flatten(template)
    if len(ref) != len(leaves):
        raise KipctlError(f"checkpoint {path} has {len(leaves)} arrays, expected {len(ref)}")
    for i, (a, b) in enumerate(zip(leaves, ref)):
        if a.shape != np.shape(b) or a.dtype != np.asarray(b).dtype:
            raise KipctlError(f"checkpoint {path}: array {i} is {a.dtype}{list(a.shape)}, "
                              f"expected {np.asarray(b).dtype}{list(np.shape(b))}")
    return Checkpoint(jax.tree_util.tree_unflatten(treedef, leaves), step, stored_fp, meta, path)
