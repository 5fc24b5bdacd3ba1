"""One kipctl process per run directory.

`<run dir>/.kipctl.lock` holds the owner's pid, host and start time while a command runs
there. A second process that finds it stops before writing anything (LockHeld, a one-line
error); a lock whose pid is dead on this host (a killed run) is taken over with a warning.
A lock from another host cannot be checked, so it is never taken over: the message says how to
remove it. Released when the command ends (and at interpreter exit, for a run that exits early).
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import time
from pathlib import Path
from typing import Callable, Optional

from kip_runner.errors import KipctlError

LOCK_NAME = ".kipctl.lock"
STALE_UNREADABLE_S = 10.0  # an unreadable lock older than this was never completed: stale


class LockHeld(KipctlError):
    """The run directory is in use by another live kipctl process."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _owner(path: Path) -> Optional[dict]:
    """The lock's {pid, host, started}, or None when it cannot be read or names no process
    (a pid that is not a positive int: os.kill(0 or -1, 0) would test a process group)."""
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(owner, dict) and isinstance(owner.get("pid"), int) and owner["pid"] > 0
    return owner if ok else None


def acquire(run_dir: Path, warn: Callable[[str], None] = lambda msg: None) -> Path:
    """Takes the lock of run_dir (created if missing) for this process.

    Raises:
      LockHeld: another live process on this host, or any process on another host, holds it.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _owner(path)
            if owner is None:
                try:
                    age = time.time() - path.stat().st_mtime
                except FileNotFoundError:
                    continue  # released meanwhile
                if age < STALE_UNREADABLE_S:
                    raise LockHeld(f"{run_dir} is being claimed by another kipctl process "
                                   "right now; choose another hydra.run.dir") from None
                warn(f"taking over an unreadable lock {path} ({age:.0f} s old)")
            elif owner["pid"] == me["pid"] and owner.get("host") == me["host"]:
                return path  # this process holds it already
            elif owner.get("host") != me["host"]:
                raise LockHeld(f"{run_dir} is in use by kipctl pid {owner['pid']} on host "
                               f"{owner.get('host')} since {owner.get('started')}; if that run "
                               f"is gone, delete {path}") from None
            elif _alive(owner["pid"]):
                raise LockHeld(f"{run_dir} is in use by kipctl pid {owner['pid']} (since "
                               f"{owner.get('started')}); wait for it to finish or choose "
                               "another hydra.run.dir") from None
            else:
                warn(f"taking over the stale lock of pid {owner['pid']} (no longer "
                     f"running) in {run_dir}")
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        atexit.register(release, path)
        return path
    raise LockHeld(f"could not take the lock {path}; choose another hydra.run.dir")


def release(path: Path) -> None:
    """Removes the lock if this process holds it (no-op otherwise, or when it is gone)."""
    owner = _owner(Path(path))
    if owner and owner["pid"] == os.getpid() and owner.get("host") == socket.gethostname():
        Path(path).unlink(missing_ok=True)
