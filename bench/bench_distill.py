"""Benchmark of the KIP step (kipctl distill's inner loop) on real MNIST, against the
independent reference and the matmul floor measured in the same run.

Speed claims are ratios measured in one run on an otherwise idle machine (absolute times swing
2x with load on the shared 2-core machines):
  * vs reference: ../shared/bench/refkip.py (colab-style KIP: nt.stax kernel, one jitted
    value_and_grad, host-side sampling, Adam) at the same support / target batch / rho;
    `speedup_vs_ref` = ref ms/step / kipctl ms/step (FC1 rows; the reference is FC1, and on
    the linear rows, a kernel with no elementwise work, it is the bound on what FC1 could gain).
  * vs floor: ../shared/bench/matmul_floor.py, the matmuls any exact step of a dot-product
    kernel must do: x_t x_s^T and g^T x_t (`floor_ms`), plus x_s x_s^T and h x_s with
    --with-kss (`floor_kss_ms`). `x_floor` = kipctl / floor_ms, `x_floor_kss` = kipctl /
    floor_kss_ms.
Each kipctl case runs in its own subprocess (one OpenBLAS thread, as kipctl sets it), so peak
RSS does not mix; `rss_growth_mb` is the resident set at the last timed step minus the one after
the first 5 (nothing may grow with the number of steps). The load average is recorded before
and after every case.

    .venv/bin/python bench/bench_distill.py                       # all -> results/distill/bench.*
    .venv/bin/python bench/bench_distill.py --cases fc1-100-t6000,rbf-100-t6000 --steps 20
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_BENCH = Path(os.environ.get("KIP_SHARED_BENCH", REPO.parent / "shared" / "bench"))
# name -> (kernel option, support, target batch, rho, augment, timed steps)
CASES = {
    "fc1-10-t6000": ("fc1", 10, 6000, 0.0, False, 40),
    "fc1-100-t6000": ("fc1", 100, 6000, 0.0, False, 40),
    "fc1-1000-t6000": ("fc1", 1000, 6000, 0.0, False, 15),
    "fc1-10-t2000": ("fc1", 10, 2000, 0.0, False, 40),
    "fc1-100-t2000": ("fc1", 100, 2000, 0.0, False, 40),
    "fc1-1000-t2000": ("fc1", 1000, 2000, 0.0, False, 15),
    "rbf-10-t6000": ("rbf", 10, 6000, 0.0, False, 40),
    "rbf-100-t6000": ("rbf", 100, 6000, 0.0, False, 40),
    "rbf-1000-t6000": ("rbf", 1000, 6000, 0.0, False, 15),
    "rbf-10-t2000": ("rbf", 10, 2000, 0.0, False, 40),
    "rbf-100-t2000": ("rbf", 100, 2000, 0.0, False, 40),
    "rbf-1000-t2000": ("rbf", 1000, 2000, 0.0, False, 15),
    "fc1-rho0.9-1000-t2000": ("fc1", 1000, 2000, 0.9, False, 15),
    "fc1-rho0.9-aug-1000-t2000": ("fc1", 1000, 2000, 0.9, True, 15),
    "conv1-100-t1000": ("conv1", 100, 1000, 0.0, False, 3),
    "myrtle5-10-t20": ("myrtle5", 10, 20, 0.0, False, 3),
    "fc1-100-t50000": ("fc1", 100, 50000, 0.0, False, 20),
    # the linear kernel x.y: the same step with no elementwise kernel work, so what is left
    # over its floor is the step's own cost (sampling, gather, solve, Adam); against FC1's
    # reference it is the most an FC1 step could gain if its arc-cosine work were free
    "linear-100-t6000": ("linear", 100, 6000, 0.0, False, 40),
    "linear-1000-t2000": ("linear", 1000, 2000, 0.0, False, 15),
}
BLAS = {"OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def one(name: str, steps_override: int | None, kernel_fn_path: bool = False) -> dict:
    """Runs one kipctl case in this process and returns its figures."""
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    sys.path.insert(0, str(REPO))
    from kip_runner.config.schema import KernelConfig  # noqa: PLC0415
    from kip_runner.core import kip  # noqa: PLC0415
    from kip_runner.core.augment import AugmentArgs  # noqa: PLC0415
    from kip_runner.core.corrupt import corrupt  # noqa: PLC0415
    from kip_runner.core.kernels import make_kernel_fn  # noqa: PLC0415
    from kip_runner.core.sampling import sample_indices  # noqa: PLC0415
    from kip_runner.data import load_dataset  # noqa: PLC0415
    from kip_runner.pipelines.distill import gram_fn_of  # noqa: PLC0415

    kernel, n_s, n_t, rho, aug, steps = CASES[name]
    steps = steps_override or steps
    jax.config.update("jax_default_matmul_precision", "highest")  # as kipctl runs (runner.py)
    from profile_step import KERNELS  # noqa: PLC0415  (bench/: fc1, rbf, linear)

    kcfg = {**KERNELS, "conv1": KernelConfig(name="conv1", arch="conv", width=128),
            "myrtle5": KernelConfig(name="myrtle5", arch="myrtle", depth=5, width=128)}[kernel]
    ds = load_dataset("mnist", os.environ.get("KIP_DATA_DIR", str(REPO.parent / "shared/data")))
    data = kip.target_data(ds.x_train, ds.targets(), ds.y_train, jnp.float32)
    idx = np.asarray(sample_indices(jax.random.PRNGKey(0), ds.y_train, n_s, 10))  # [n_s]
    x0 = ds.x_train[idx]  # [n_s,28,28,1]
    mask = np.zeros(x0.shape, bool)
    if rho > 0:
        x0, mask = (np.asarray(a) for a in corrupt(jax.random.PRNGKey(2), x0, rho, "noise"))
    tx = kip.make_optimizer(0.01, kip.frozen_mask(mask, 10, False))
    state = kip.init_state(jnp.asarray(x0), jnp.asarray(ds.targets()[idx]), tx)
    gram_fn = None if kernel_fn_path else gram_fn_of(kcfg, int(np.prod(ds.x_train.shape[1:])))
    step = kip.make_kip_step(make_kernel_fn(**kcfg.kernel_args()), tx, reg=1e-6,
                             target_batch=n_t, n_classes=10,
                             augment_args=AugmentArgs() if aug else None, gram_fn=gram_fn)
    key = jax.random.PRNGKey(1)
    t0 = time.perf_counter()
    state, m = step(state, key, data)
    float(m["loss"])
    compile_s = time.perf_counter() - t0
    times, rss_early = [], None
    for i in range(steps):
        t0 = time.perf_counter()
        state, m = step(state, key, data)
        float(m["loss"])  # waits for the step, as the distill loop does
        times.append(time.perf_counter() - t0)
        if i == min(4, steps - 1):
            rss_early = rss_mb()
    rss_growth = rss_mb() - rss_early  # at the last timed step, as the module doc says
    final_loss = float(m["loss"])
    # as kip_probe.py times its step: the steps dispatched back to back, waited for once (on a
    # GPU the per-step wait above adds a host round trip that kip_probe does not pay)
    t0 = time.perf_counter()
    for _ in range(steps):
        state, _ = step(state, key, data)
    jax.block_until_ready(state)
    pipelined_ms = 1e3 * (time.perf_counter() - t0) / steps
    return {"case": name, "kernel": kernel, "support": n_s, "target_batch": n_t, "rho": rho,
            "augment": aug, "timed_steps": steps, "compile_s": round(compile_s, 3),
            "ms_per_step": round(1e3 * float(np.median(times)), 2),
            "ms_per_step_min": round(1e3 * float(np.min(times)), 2),
            "ms_per_step_pipelined": round(pipelined_ms, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_growth_mb": round(rss_growth, 1),
            "final_loss": final_loss if np.isfinite(final_loss) else None,  # JSON has no NaN
            "path": ("kernel_fn" if gram_fn is None else
                     "gram" if hasattr(step, "first") else "gram, one call")}


def run_json(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                             [str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
                             **BLAS))
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def reference(n_s: int, n_t: int, rho: float, steps: int) -> dict:
    """refkip.py at the same support / targets / rho (it discards its first 5 steps)."""
    return run_json([sys.executable, str(SHARED_BENCH / "refkip.py"), "--support", str(n_s),
                     "--target", str(n_t), "--rho", str(rho), "--steps", str(steps + 5)])


def floor(n_s: int, n_t: int, with_kss: bool) -> float:
    cmd = [sys.executable, str(SHARED_BENCH / "matmul_floor.py"), "--support", str(n_s),
           "--target", str(n_t)] + (["--with-kss"] if with_kss else [])
    return float(run_json(cmd)["ms"])


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--steps", type=int, default=None, help="timed steps per case")
    p.add_argument("--no-reference", action="store_true", help="skip refkip.py")
    p.add_argument("--out", default=str(REPO / "results" / "distill" / "bench"))
    p.add_argument("--kernel-fn", action="store_true",
                   help="differentiate make_kernel_fn's kernel instead of the dot-product path")
    p.add_argument("--note", default="", help="a line on the conditions, for the md header "
                   "(e.g. other jobs paused with SIGSTOP during the run)")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.steps, args.kernel_fn)))
        return 0
    rows, floors, refs = [], {}, {}
    start_load = load()
    for name in args.cases.split(","):
        kernel, n_s, n_t, rho, aug, steps = CASES[name]
        before = load()
        row = run_json([sys.executable, __file__, "--one", name]
                       + (["--steps", str(args.steps)] if args.steps else [])
                       + (["--kernel-fn"] if args.kernel_fn else []))
        if (n_s, n_t) not in floors:
            floors[(n_s, n_t)] = (floor(n_s, n_t, False), floor(n_s, n_t, True))
        row["floor_ms"], row["floor_kss_ms"] = (round(v, 2) for v in floors[(n_s, n_t)])
        if kernel in ("fc1", "linear") and not args.no_reference:
            if (n_s, n_t, rho) not in refs:
                refs[(n_s, n_t, rho)] = reference(n_s, n_t, rho, args.steps or steps)
            row["ref_ms"] = round(refs[(n_s, n_t, rho)]["ms_per_step"], 2)
        row.update(speedup_vs_ref=ratio(row.get("ref_ms"), row["ms_per_step"]),
                   x_floor=ratio(row["ms_per_step"], row["floor_ms"]),
                   x_floor_kss=ratio(row["ms_per_step"], row["floor_kss_ms"]),
                   load_before=before, load_after=load(), openblas_threads=BLAS[
                       "OPENBLAS_NUM_THREADS"])
        rows.append(row)
        print(json.dumps(row), flush=True)
    aug = {r["augment"]: r["ms_per_step"] for r in rows if r["rho"] == 0.9}
    meta = {"command": " ".join([Path(sys.executable).name] + sys.argv),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(),
            "load_start": start_load, "load_end": load(),
            "augmentation_overhead": (ratio(aug[True], aug[False]) if len(aug) == 2 else None),
            "note": "2-core machine, nothing else running (idle) unless the loads say otherwise; "
                    "ratios are from this one run" + (f"; {args.note}" if args.note else "")}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "cases": rows}, indent=2)
                                        + "\n")
    cols = ["case", "path", "ms_per_step", "ms_per_step_pipelined", "ref_ms", "speedup_vs_ref",
            "floor_ms", "x_floor", "floor_kss_ms", "x_floor_kss", "compile_s", "peak_rss_mb",
            "rss_growth_mb", "load_before", "load_after"]
    md = [f"# distill step benchmark ({meta['date']})", "", f"`{meta['command']}`", "",
          f"{meta['note']}. Load (1/5/15 min) at start {meta['load_start']}, end "
          f"{meta['load_end']}. ms_per_step waits for every step (as the distill loop "
          "does); ms_per_step_pipelined dispatches them back to back and waits once (as "
          "kip_probe.py times its step). speedup_vs_ref = reference ms (FC1) / kipctl ms "
          "(FC1 rows; linear rows: the bound with no kernel work); x_floor = kipctl ms / "
          "two-matmul floor; x_floor_kss = kipctl ms / floor with the K_ss matmuls. "
          "Augmentation overhead (KIP_rho 1000/2000): "
          + (f"{meta['augmentation_overhead']}x." if meta["augmentation_overhead"] else
             "not measured (no KIP_rho pair in --cases)."), "",
          "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join("–" if r.get(c) is None else str(r.get(c)) for c in cols) + " |"
           for r in rows]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
