"""What the tools that drive kipctl end to end share (tools/export_round_trip.py,
tools/dp_kip_results.py): run a kipctl command as a user would, logging it, and read a run's
summary metrics. Imported from those scripts' directory (`python tools/<script>.py` puts it on
sys.path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def kipctl(*args: str, log: list[str]) -> str:
    """Runs `kipctl <args>` (this checkout's package) from a neutral cwd, appends the command
    to `log` and returns the last stdout line; a failure exits with the command and its
    stderr tail."""
    log.append("kipctl " + " ".join(args))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-m", "kip_runner", *args], capture_output=True,
                         text=True, env=env, cwd=tempfile.gettempdir())
    if out.returncode != 0:
        raise SystemExit(f"failed: kipctl {' '.join(args)}\n{out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def metrics(run: Path) -> dict:
    """The metrics of a run directory's summary.json."""
    return json.loads((Path(run) / "summary.json").read_text())["metrics"]
