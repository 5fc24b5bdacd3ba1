"""Runs one pipeline inside a run directory: the run-dir contract in one place.

Used by the CLI for every Hydra job and by corrupt-sweep for its child runs:
already done with this exact config? -> return its metrics (so re-running a command in the
same run dir recomputes nothing); else fingerprint check -> run.json (running) ->
pipeline.run(cfg, rundir) -> summary.json and status done; on failure status failed with the
reason (and traceback.txt for bugs). dry_run=true runs the pipeline in a scratch directory
only until it can print its cost estimate.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

import jax

from kip_runner.errors import KipctlError, RunFailed
from kip_runner.pipelines.estimate import DryRun, duration
from kip_runner.pipelines.headline import headline
from kip_runner.runs.rundir import RunDir, fingerprint, read_json

log = logging.getLogger(__name__)


def config_dict(typed) -> dict:
    """A JSON-able dict of a typed (dataclass) config."""
    return dataclasses.asdict(typed)


def config_fingerprint(module: str, container: dict) -> str:
    pipeline = importlib.import_module(module)
    return fingerprint(container, getattr(pipeline, "FINGERPRINT_IGNORE", ()))


def _normalised(container: dict) -> dict:
    return json.loads(json.dumps(container, sort_keys=True, default=str))


def is_done(rundir: RunDir, container: dict) -> bool:
    """True when the run directory holds a finished run of exactly this config (all keys,
    including those a resume fingerprint ignores, such as a distill's step count)."""
    if not rundir.run_json.exists():
        return False
    info = read_json(rundir.run_json)
    return info.get("status") == "done" and info.get("config") == _normalised(container)


def _set_jax_flags(typed) -> None:
    jax.config.update("jax_enable_x64", bool(getattr(typed, "x64", False)))
    # float32 matmuls in float32 on every backend: on a GPU JAX's default lets XLA use TF32
    # (10-bit mantissa), which puts ~1e-3 relative error into x_t·x_s^T, the kernels' input;
    # on a CPU this changes nothing
    jax.config.update("jax_default_matmul_precision", "highest")


def estimate(module: str, typed, command: str) -> tuple[float, str]:
    """(seconds, line): the pipeline runs in a scratch directory until it has timed one unit of
    its work and raised estimate.DryRun (typed.dry_run must be true); a job too small to be
    timed simply finishes there, and its run time is the estimate."""
    pipeline = importlib.import_module(module)
    _set_jax_flags(typed)
    scratch = Path(tempfile.mkdtemp(prefix="kipctl-dry-run-"))
    t0 = time.time()
    try:
        pipeline.run(typed, RunDir(scratch, command))
        seconds = time.time() - t0
        return seconds, (f"{command}: the whole job ran in {duration(seconds)} (too short to "
                         "need an estimate)")
    except DryRun as ex:
        return ex.seconds, str(ex.args[0])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def dry_run(module: str, typed, rundir: RunDir) -> dict:
    """dry_run=true: prints the estimate; nothing is left in the run directory (removed when
    Hydra had just made it)."""
    try:
        _, line = estimate(module, typed, rundir.command)
    finally:
        rundir.discard_if_fresh()
    print(f"{line} (dry run: nothing written)", flush=True)
    return {}


def execute(module: str, typed, container: dict, rundir: RunDir) -> dict:
    """Runs `module.run(typed, rundir)` under the run-dir contract and returns its metrics.

    Raises:
      KipctlError: a user error, or a run dir that belongs to another config.
      RunFailed: any other exception (recorded with its traceback in the run dir).
    """
    if getattr(typed, "dry_run", False):
        return dry_run(module, typed, rundir)
    if is_done(rundir, container) and (rundir / "summary.json").exists():
        log.info("%s is already done with this config; nothing to recompute (delete its "
                 "run.json to force a re-run)", rundir.path)
        metrics = read_json(rundir / "summary.json").get("metrics", {})
        print(headline(rundir.command, container, metrics, rundir.path), flush=True)
        return metrics
    pipeline = importlib.import_module(module)
    fp = fingerprint(container, getattr(pipeline, "FINGERPRINT_IGNORE", ()))
    if rundir.run_json.exists():
        old = read_json(rundir.run_json).get("fingerprint")
        if old and old != fp:
            raise KipctlError(f"{rundir.path} holds a run of a different config (fingerprint "
                              f"{old}, this one {fp}); use a new hydra.run.dir or the "
                              "original overrides")
    _set_jax_flags(typed)
    rundir.start(container, fp)
    try:
        metrics = pipeline.run(typed, rundir)
    except KipctlError as ex:
        rundir.fail(str(ex), getattr(ex, "metrics", None))  # partial results keep metrics
        raise
    except KeyboardInterrupt:
        rundir.fail("interrupted")
        raise
    except Exception as ex:  # noqa: BLE001 - record, then report in one line
        raise RunFailed(rundir.record_failure(ex)) from ex
    rundir.finish(metrics)
    log.debug("%s done: %s -> %s", rundir.command, metrics, rundir.path)  # also summary.json
    print(headline(rundir.command, container, metrics, rundir.path), flush=True)
    return metrics
