"""Metric files: CSV tables (pandas) and JSON lines, written atomically; a NaN guard."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from kip_runner.runs.rundir import atomic_write


def write_csv(path: Path, rows: Iterable[Mapping] | pd.DataFrame) -> pd.DataFrame:
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))
    return df


class JsonLines:
    """Appends one JSON object per line (flushed), e.g. one per logged training step."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def append(self, row: Mapping) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(dict(row), default=float) + "\n")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def truncate_after(self, step: int) -> None:
        """Drops rows with step > `step` (after resuming from an earlier checkpoint)."""
        rows = [r for r in self.read() if r.get("step", -1) <= step]
        atomic_write(self.path, lambda tmp: open(tmp, "w").write(
            "".join(json.dumps(r) + "\n" for r in rows)))


def check_finite(value: float, what: str, step: int) -> None:
    """Raises FloatingPointError naming the step when a metric is NaN or infinite."""
    if not math.isfinite(value):
        raise FloatingPointError(f"non-finite {what} ({value}) at step {step}")
