"""One markdown table from bench/profile_step.py JSONs of an A/B run (old = the committed step,
new = the changed one, alternating in one idle window), for the record of a step change.

    .venv/bin/python bench/ab_table.py results/distill/ab-augment-call "title line"

Reads DIR/<variant>-<case>-<round>.json, writes DIR/README.md: one column per file, one row
per timed part (ms, median over the profile's reps), and each file's load before/after.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> int:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    d = Path(sys.argv[1])
    title = sys.argv[2] if len(sys.argv) > 2 else d.name
    files = sorted(d.glob("*.json"))
    if not files:
        raise SystemExit(f"ab_table: no profile_step JSON in {d}")
    runs = {f.stem: json.loads(f.read_text()) for f in files}
    parts: dict[str, dict[str, float]] = {}
    for name, run in runs.items():
        for row in run["rows"]:
            label = row["part"] if row["kernel"] == "-" else f"{row['part']} ({row['kernel']})"
            parts.setdefault(label, {})[name] = row["ms"]
    lines = [f"# {title}", "", "ms per call (median over the profile's reps); columns in file "
             "order; every run on the otherwise idle machine.", "",
             "| part | " + " | ".join(runs) + " |", "|---" * (len(runs) + 1) + "|"]
    for label, cols in parts.items():
        lines.append(f"| {label} | " + " | ".join(str(cols.get(n, "")) for n in runs) + " |")
    lines.append("| load (1/5/15 min) before -> after | " + " | ".join(
        f"{r.get('load_start', '?')} -> {r['load']}" for r in runs.values()) + " |")
    (d / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
