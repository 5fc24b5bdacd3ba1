"""Export round trips on real MNIST (issue #25 item 1): distill a set, export it in every
format and pixel mode, read each back with `eval-krr source=`, and tabulate the KRR test
accuracy against the original set's.

  python tools/export_round_trip.py --out results/export   # KIP_DATA_DIR must point at MNIST

Writes round_trip.csv / round_trip.md and the kipctl commands it ran (commands.txt).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from kipctl_driver import REPO, kipctl, metrics
CASES = [("npz", "auto"), ("imagefolder", "auto"), ("imagefolder", "clip"), ("pt", "auto"),
         ("pt", "clip")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "results" / "export")
    ap.add_argument("--support", type=int, default=100)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--rho", type=float, default=0.0)
    args = ap.parse_args()
    try:
        import torch  # noqa: F401, PLC0415
        cases = CASES
    except ImportError:
        cases = [c for c in CASES if c[0] != "pt"]
    work = Path(tempfile.mkdtemp(prefix="kipctl-round-trip-"))
    log: list[str] = []
    run = work / "distill"
    kipctl("distill", "dataset=mnist", "kernel=fc1", f"support={args.support}",
           f"steps={args.steps}", "target_batch=2000", "eval_every=0", f"rho={args.rho}",
           f"hydra.run.dir={run}", log=log)
    kipctl("eval-krr", "kernel=fc1", f"source={run}", f"hydra.run.dir={work}/krr-original",
           log=log)
    base = metrics(work / "krr-original")
    rows = [{"format": "original support.npz", "pixels": "", "accuracy_%": 100 *
             base["accuracy_mean"], "delta_points": 0.0, "mse": base["mse_mean"],
             "export": ""}]
    for fmt, pixels in cases:
        name = f"{fmt}-{pixels}"
        line = kipctl("export", str(run), f"format={fmt}", f"pixels={pixels}",
                      f"out={work}/{name}", log=log)
        kipctl("eval-krr", "kernel=fc1", f"source={work}/{name}",
               f"hydra.run.dir={work}/krr-{name}", log=log)
        m = metrics(work / f"krr-{name}")
        rows.append({"format": fmt, "pixels": pixels, "accuracy_%": 100 * m["accuracy_mean"],
                     "delta_points": 100 * (m["accuracy_mean"] - base["accuracy_mean"]),
                     "mse": m["mse_mean"], "export": line.split(" -> ")[0]})
    df = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "round_trip.csv", index=False)
    caption = (f"Export round trips: FC1 KIP on MNIST, {args.support} images, {args.steps} "
               f"steps x 2000 targets, rho {args.rho}; KRR test accuracy (FC1 NTK, float64, "
               "full test set) of the set read back by eval-krr source=")
    (args.out / "round_trip.md").write_text(
        caption + "\n\n" + df.to_markdown(index=False, floatfmt=".4g") + "\n")
    (args.out / "commands.txt").write_text("\n".join(log) + "\n")
    print(df.to_markdown(index=False, floatfmt=".4g"))
    print(f"written: {args.out / 'round_trip.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
