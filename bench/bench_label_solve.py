"""Benchmarks of `kipctl label-solve` (issue #4).

fc1:    wall seconds of `kipctl label-solve kernel=fc1 support=<n>` on MNIST with all 60k
        targets, run as a user runs it (a subprocess), plus the pipeline's own breakdown
        (kernel / solve seconds) and accuracies from its summary.json.
myrtle: seconds per K_ts tile of the Myrtle-5 kernel on MNIST with ZCA (the label-solve
        default dtype, float64 unless --float32), measured on `--tiles` tiles after one
        compile, extrapolated to a 1k x 100 block and to paper-size runs
        (60k targets x support 10..10000, plus the 10k x support test kernel).

Writes results/label_solve/bench.json and bench.md (merging with what is already there, so
the two parts can be run separately). Timings on a shared machine are noisy: `uptime` is
recorded next to every figure.

    .venv/bin/python bench/bench_label_solve.py fc1 --support 100 1000
    .venv/bin/python bench/bench_label_solve.py myrtle --tiles 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "results" / "label_solve"
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def bench_fc1(supports: list[int], extra: list[str]) -> list[dict]:
    rows = []
    for n in supports:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [str(REPO / "kipctl"), "label-solve", "dataset=mnist", "kernel=fc1",
                   f"support={n}", *extra, f"hydra.run.dir={tmp}/run"]
            load_before = uptime()
            t0 = time.time()
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            wall = time.time() - t0
            if out.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.strip()[-500:]}")
            summary = json.loads((Path(tmp) / "run" / "summary.json").read_text())
        m = summary["metrics"]
        rows.append({"kernel": "fc1", "support": n, "n_targets": m["n_targets"],
                     "command": " ".join(["kipctl"] + cmd[1:-1]),
                     "wall_seconds": round(wall, 2), "pipeline_seconds": summary["seconds"],
                     "kernel_seconds": m["kernel_seconds"], "factor_seconds": m["factor_seconds"],
                     "solve_seconds": m["solve_seconds"],
                     "test_accuracy": m["test_accuracy"],
                     "test_accuracy_original_labels": m["test_accuracy_original_labels"],
                     "blas_threads_env": {k: os.environ.get(k) for k in THREAD_VARS},
                     "uptime_before": load_before, "uptime_after": uptime()})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def bench_myrtle(tiles: int, float32: bool) -> dict:
    import jax  # noqa: PLC0415

    jax.config.update("jax_enable_x64", not float32)
    import numpy as np  # noqa: PLC0415
    from hydra import compose, initialize_config_dir  # noqa: PLC0415
    from omegaconf import OmegaConf  # noqa: PLC0415

    from kip_runner.cli import CONF_DIR  # noqa: PLC0415
    from kip_runner.config.schema import register  # noqa: PLC0415
    from kip_runner.pipelines.common import Kernel, dataset_from_config  # noqa: PLC0415

    register()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = OmegaConf.to_object(compose("label_solve", [
            "dataset=mnist", "dataset.preprocessing=zca", "kernel=myrtle5",
            f"x64={str(not float32).lower()}"]))
    dtype = np.float32 if float32 else np.float64
    ds = dataset_from_config(cfg.dataset)
    kernel = Kernel(cfg.kernel, cfg.x64)
    b = cfg.kernel.block_size  # tile edge (conf/kernel/myrtle5.yaml)
    x = np.asarray(ds.x_train[: b * (tiles + 1)], dtype)  # [b(tiles+1),28,28,1]
    load_before = uptime()
    t0 = time.time()
    np.asarray(kernel.jitted(x[:b], x[b:2 * b]))  # compile + first tile
    compile_s = time.time() - t0
    times = []
    for i in range(tiles):
        t = time.time()
        np.asarray(kernel.jitted(x[(i + 1) * b:(i + 2) * b], x[:b]))  # [b, b]
        times.append(time.time() - t)
    per_tile = float(np.median(times))
    per_pair = per_tile / (b * b)
    block_1k_100 = per_pair * 1000 * 100
    paper = []
    for n_s in (10, 100, 1000, 10000):
        pairs = 60000 * n_s + 10000 * n_s + n_s * (n_s + 1) / 2  # K_ts, K_test,s, K_ss
        paper.append({"support": n_s, "kernel_pairs": int(pairs),
                      "kernel_hours_this_machine": round(pairs * per_pair / 3600, 1),
                      "k_ts_disk_gb": round(60000 * n_s * np.dtype(dtype).itemsize / 1e9, 3),
                      "qr_factor_gb": round((n_s + 10) ** 2 * 8 / 1e9, 4)})
    return {"kernel": "myrtle5", "dataset": "mnist", "preprocessing": "zca",
            "dtype": np.dtype(dtype).name, "tile": [b, b], "tiles_timed": tiles,
            "tile_seconds": [round(t, 3) for t in times], "compile_seconds": round(compile_s, 2),
            "seconds_per_pair": per_pair, "seconds_per_1k_x_100_block": round(block_1k_100, 1),
            "paper_size_extrapolation": paper, "devices": [str(d) for d in jax.devices()],
            "blas_threads_env": {k: os.environ.get(k) for k in THREAD_VARS},
            "uptime_before": load_before, "uptime_after": uptime()}


def write(results: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "bench.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(results)
    path.write_text(json.dumps(old, indent=2) + "\n")
    lines = ["# label-solve benchmarks", "",
             "Generated by `bench/bench_label_solve.py` from bench.json (do not edit by hand). "
             "2 shared CPU cores: timings are noisy; the load is given with each figure.", ""]
    if "fc1" in old:
        lines += ["## FC1, MNIST, all 60k targets", "",
                  "| support | wall s | kernel s | factor (QR) s | solve s | test acc (LS) | "
                  "test acc (natural labels) | BLAS threads env | uptime before |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in old["fc1"]:
            env = {k: v for k, v in r.get("blas_threads_env", {}).items() if v} or "default"
            lines.append(f"| {r['support']} | {r['wall_seconds']} | {r['kernel_seconds']} | "
                         f"{r['factor_seconds']} | "
                         f"{r['solve_seconds']} | {r['test_accuracy']:.4f} | "
                         f"{r['test_accuracy_original_labels']:.4f} | {env} | "
                         f"{r['uptime_before']} |")
        lines += [""]
    for key in sorted(k for k in old if k.startswith("myrtle")):
        r = old[key]
        lines += [f"## Myrtle-5 NTK, MNIST + ZCA, {r['dtype']} ({', '.join(r['devices'])})", "",
                  f"- tile {r['tile'][0]}x{r['tile'][1]}: {r['tile_seconds']} s "
                  f"(compile + first tile {r['compile_seconds']} s); load: "
                  f"{r['uptime_before']}",
                  f"- **{r['seconds_per_1k_x_100_block']} s per 1k x 100 K_ts block** "
                  f"(extrapolated from {r['tiles_timed']} tiles: {r['seconds_per_pair']:.4g} "
                  "s per kernel entry)", "",
                  "| support | kernel entries (60k K_ts + 10k test + K_ss) | hours, this "
                  "machine | K_ts blocks on disk GB | QR factor GB |", "|---|---|---|---|---|"]
        for p in r["paper_size_extrapolation"]:
            lines.append(f"| {p['support']} | {p['kernel_pairs']:.3g} | "
                         f"{p['kernel_hours_this_machine']} | {p['k_ts_disk_gb']} | "
                         f"{p['qr_factor_gb']} |")
        lines += [""]
    (OUT / "bench.md").write_text("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=("fc1", "myrtle"))
    p.add_argument("--support", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--tiles", type=int, default=3, help="Myrtle tiles to time after compile")
    p.add_argument("--float32", action="store_true", help="Myrtle in float32 (x64=false)")
    p.add_argument("overrides", nargs="*", help="extra kipctl overrides for the fc1 part")
    a = p.parse_args()
    os.environ.setdefault("KIP_DATA_DIR", str(REPO.parent / "shared" / "data"))
    sys.path.insert(0, str(REPO))
    if a.part == "fc1":
        write({"fc1": bench_fc1(a.support, a.overrides)})
    else:
        r = bench_myrtle(a.tiles, a.float32)
        print(json.dumps(r, indent=2))
        write({f"myrtle5_{r['dtype']}": r})


if __name__ == "__main__":
    main()
