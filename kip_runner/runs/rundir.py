"""The run-directory contract (STYLE.md "Per-run outputs").

    <run>/.hydra/ and <cmd>.log   written by Hydra
    run.json                      resolved config, fingerprint, versions, devices, git sha,
                                  status running|done|failed (+ reason), timings
    metrics.csv                   one row per evaluation
    summary.json                  {"command", "status", "metrics": {...}}

Every file is written to a temporary sibling and renamed (os.replace), so readers never see a
half-written file. A run is complete only when run.json says "done".
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from kip_runner.runs.lock import LOCK_NAME


def _json_default(o: Any):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def atomic_write(path: Path, writer: Callable[[str], None]) -> None:
    """Calls writer(tmp_path) on a temporary file next to `path`, then renames it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal modes
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    def w(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, default=_json_default, allow_nan=True)
            f.write("\n")
    atomic_write(path, w)


def read_json(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def _without(config: dict, ignore: tuple[str, ...]) -> dict:
    """The config without the `ignore`d keys; "a.b" names key b of the nested dict a."""
    kept = {}
    for k, v in config.items():
        if k in ignore:
            continue
        nested = tuple(i[len(k) + 1:] for i in ignore if i.startswith(f"{k}."))
        kept[k] = _without(v, nested) if nested and isinstance(v, dict) else v
    return kept


def fingerprint(config: dict, ignore: tuple[str, ...] = ()) -> str:
    """sha256 (first 16 hex) of the config with the `ignore`d keys removed (top-level names,
    or dotted paths into nested dicts: "distill.steps")."""
    kept = _without(config, ignore)
    blob = json.dumps(kept, sort_keys=True, default=_json_default)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def git_sha() -> Optional[str]:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    """Versions and devices, for reproducibility."""
    import jax  # noqa: PLC0415
    import jaxlib  # noqa: PLC0415
    import optax  # noqa: PLC0415

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.jax_enable_x64),
        "host": platform.node(),
        "git_sha": git_sha(),
    }


class RunDir:
    """One run's output directory."""

    # what a directory holds before its job starts: Hydra's config dir and kipctl's lock
    PRE_JOB_FILES = (".hydra", LOCK_NAME)

    def __init__(self, path: os.PathLike | str, command: str = ""):
        self.path = Path(path)
        self.command = command
        self._started = time.time()

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    def status(self) -> Optional[str]:
        return read_json(self.run_json).get("status") if self.run_json.exists() else None

    def start(self, config: dict, fp: str) -> None:
        previous = read_json(self.run_json) if self.run_json.exists() else {}
        write_json(self.run_json, {
            "command": self.command, "status": "running",
            "config": json.loads(json.dumps(config, sort_keys=True, default=str)),
            "fingerprint": fp, "env": environment(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "attempts": previous.get("attempts", 0) + 1,
        })

    def annotate(self, **fields: Any) -> None:
        """Adds top-level fields to run.json (e.g. a DP run's spent privacy budget)."""
        self._update(**fields)

    def _update(self, **fields: Any) -> None:
        info = read_json(self.run_json) if self.run_json.exists() else {"command": self.command}
        info.update(fields)
        write_json(self.run_json, info)

    def finish(self, metrics: dict, extra: Optional[dict] = None) -> None:
        seconds = time.time() - self._started
        summary = {"command": self.command, "status": "done", "metrics": metrics,
                   "seconds": round(seconds, 3)}
        summary.update(extra or {})
        write_json(self.path / "summary.json", summary)
        self._update(status="done", finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                     seconds=round(seconds, 3), reason=None)

    def fail(self, reason: str, metrics: Optional[dict] = None) -> None:
        write_json(self.path / "summary.json", {"command": self.command, "status": "failed",
                                                "reason": reason, "metrics": metrics or {}})
        self._update(status="failed", reason=reason,
                     finished=time.strftime("%Y-%m-%dT%H:%M:%S"))

    def record_failure(self, ex: BaseException) -> str:
        """Records an unexpected failure (a bug, not bad input): its traceback in
        traceback.txt and, when run.json says this run is running, status failed with the
        reason. Returns the one-line message for the user, pointing to traceback.txt."""
        tb_path = self.path / "traceback.txt"
        tb_path.parent.mkdir(parents=True, exist_ok=True)
        tb_path.write_text("".join(traceback.format_exception(type(ex), ex, ex.__traceback__)))
        reason = f"{type(ex).__name__}: {ex}"
        if self.status() == "running":
            self.fail(reason)
        return f"{' '.join(reason.split())} (traceback in {tb_path})"

    def discard_if_fresh(self) -> bool:
        """Removes the directory if it holds only what Hydra wrote before the job started
        (used when the config is rejected, so a bad command leaves nothing behind)."""
        if not self.path.is_dir():
            return False
        extra = [p for p in self.path.iterdir()
                 if p.name not in self.PRE_JOB_FILES and p.suffix != ".log"]
        if extra:
            return False
        shutil.rmtree(self.path, ignore_errors=True)
        return True
