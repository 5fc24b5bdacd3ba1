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
from typing import Any, Callable, NamedTuple, Optional

import jax
import numpy as np

from kip_runner.errors import KipctlError, read_error
from kip_runner.runs.rundir import atomic_write

LATEST = "LATEST"


class CorruptCheckpoint(KipctlError):
    """A checkpoint file that cannot be read back (truncated, not a zip, wrong arrays)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"corrupt checkpoint {path}: {reason}")
        self.path, self.reason = Path(path), reason


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


def checkpoint_files(directory: Path) -> list[Path]:
    """Every step_XXXXXX.npz in directory, newest (highest step) first."""
    files = [p for p in Path(directory).glob("step_*.npz") if p.stem[5:].isdigit()]
    return sorted(files, key=lambda p: int(p.stem[5:]), reverse=True)


def resume_checkpoint(directory: Path, template: Any, fingerprint: str,
                      warn: Callable[[str], None]) -> Optional[Checkpoint]:
    """The newest readable checkpoint in directory (LATEST's first, then by step), or None
    when there is none at all.

    A damaged file (truncated, not a zip, wrong arrays) is skipped with one `warn` line naming
    it; a checkpoint written by another config is never skipped (that is a user error).

    Raises:
      KipctlError: checkpoints exist but none is readable, or one is another config's.
    """
    directory = Path(directory)
    pointer = directory / LATEST
    candidates = checkpoint_files(directory)
    if pointer.is_file():  # normally the newest; a stale pointer only reorders the search
        named = directory / pointer.read_text().strip()
        if named in candidates:
            candidates.remove(named)
            candidates.insert(0, named)
    skipped = []
    for path in candidates:
        try:
            return load_checkpoint(path, template, fingerprint)
        except CorruptCheckpoint as e:
            warn(f"skipping unreadable checkpoint {path.name} ({e.reason}); trying an older one")
            skipped.append(path.name)
    if skipped:
        raise KipctlError(f"no readable checkpoint in {directory} ({', '.join(skipped)} are "
                          "damaged); delete the directory to start over")
    return None


def prune_checkpoints(directory: Path, keep: int) -> list[Path]:
    """Deletes all but the `keep` newest checkpoints (the run's final state is the newest).
    Returns the deleted paths."""
    old = checkpoint_files(directory)[max(keep, 1):]
    for path in old:
        path.unlink(missing_ok=True)
    return old


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
      CorruptCheckpoint: an unreadable file or mismatched leaves.
      KipctlError: a different config's fingerprint.
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
        raise CorruptCheckpoint(path, read_error(e)) from None
    if fingerprint is not None and stored_fp != fingerprint:
        raise KipctlError(f"checkpoint {path} was written by a different config (fingerprint "
                          f"{stored_fp}, this one {fingerprint}); use a new hydra.run.dir or "
                          "the original overrides")
    ref, treedef = jax.tree_util.tree_flatten(template)
    if len(ref) != len(leaves):
        raise CorruptCheckpoint(path, f"{len(leaves)} arrays, expected {len(ref)}")
    for i, (a, b) in enumerate(zip(leaves, ref)):
        if a.shape != np.shape(b) or a.dtype != np.asarray(b).dtype:
            raise CorruptCheckpoint(path, f"array {i} is {a.dtype}{list(a.shape)}, expected "
                                    f"{np.asarray(b).dtype}{list(np.shape(b))}")
    return Checkpoint(jax.tree_util.tree_unflatten(treedef, leaves), step, stored_fp, meta, path)
