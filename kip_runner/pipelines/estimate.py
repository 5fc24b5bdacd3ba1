"""Cost before long work: time one unit (a kernel tile, a KIP step, a training step), print the
estimated total when it exceeds THRESHOLD_S, and stop there under `dry_run=true`.

The line has one shape for every command, e.g.
  label-solve: 63 kernel tiles of 1000 x 100 (K_ts and the test evaluation), ~4.6 s each -> ~4 min 50 s
It goes to stderr (stdout's last line is the command's result); with dry_run the runner prints
it on stdout and exits 0 without a run directory (pipelines/runner.py).
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)

THRESHOLD_S = 30.0  # announce jobs estimated to take longer than this


class DryRun(Exception):
    """Raised by a pipeline under dry_run=true once its estimate is known: args[0] is the line,
    `seconds` the estimated total."""

    def __init__(self, line: str, seconds: float):
        super().__init__(line)
        self.seconds = seconds


def duration(seconds: float) -> str:
    """4.6 s, 52 s, 4 min 36 s, 1 h 17 min."""
    if seconds < 10:
        return f"{seconds:.1f} s" if seconds >= 0.1 else f"{1000 * seconds:.0f} ms"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(round(seconds)) // 60
    if minutes < 60:
        return f"{minutes} min {int(round(seconds)) % 60:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def announce(command: str, units: int, what: str, seconds_each: float,
             extra_seconds: float = 0.0, extra_what: str = "", dry_run: bool = False) -> float:
    """Prints `<command>: <units> <what>, ~<each> each [+ <extra>] -> ~<total>` when the total
    exceeds THRESHOLD_S (always under dry_run, where it raises DryRun). Returns the total."""
    total = units * seconds_each + extra_seconds
    extra = f" + ~{duration(extra_seconds)} {extra_what}" if extra_seconds >= 0.05 else ""
    line = f"{command}: {units} {what}, ~{duration(seconds_each)} each{extra} -> " \
           f"~{duration(total)}"
    if dry_run:
        raise DryRun(line, total)
    if total > THRESHOLD_S:
        print(line, file=sys.stderr, flush=True)
    log.info("estimate: %s", line)
    return total
