"""kipctl command line: subcommand dispatch over Hydra, typed configs, errors -> exit codes.

`kipctl <subcommand> [hydra overrides]`: the subcommand is removed from sys.argv and the
rest is handed to `hydra.main`, so overrides, `-m/--multirun`, `--cfg job`, `--help` and
`hydra.run.dir=...` keep working. This module is the only Hydra user and the only place that
changes `jax.config` (x64).

Errors: user mistakes (bad override, value out of range, missing data, foreign checkpoint)
print one line `kipctl: error: ...` and exit 2; an unexpected exception (a bug: ImportError,
KeyError, ...) prints one line that points to the traceback saved in the run directory
(traceback.txt; HYDRA_FULL_ERROR=1 when the job had not started) and exits 1.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Callable, NamedTuple, Optional

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
log = logging.getLogger("kipctl")


class Command(NamedTuple):
    config_name: Optional[str]  # Hydra primary config; None for plain (non-Hydra) commands
    module: str  # pipelines module with run(cfg, rundir) -> metrics, or a main(argv) module
    help: str


COMMANDS: dict[str, Command] = {
    "distill": Command("distill", "kip_runner.pipelines.distill",
                       "KIP / KIP_rho: learn a support set by kernel-ridge meta-learning"),
    "eval-krr": Command("eval_krr", "kip_runner.pipelines.eval_krr",
                        "KRR test accuracy of natural subsets or of a support.npz"),
    "corrupt-sweep": Command("corrupt_sweep", "kip_runner.pipelines.corrupt_sweep",
                             "natural vs KIP_rho data over corruption levels, KRR and NN"),
    "report": Command(None, "kip_runner.pipelines.report",
                      "collect run directories into grouped csv/markdown/LaTeX tables"),
    "eval-nn": Command("eval_nn", "kip_runner.pipelines.eval_nn",
                       "finite-width networks trained on natural subsets or a support.npz"),
    "label-solve": Command("label_solve", "kip_runner.pipelines.label_solve",
                           "closed-form Label Solve of a support set's labels (any kernel)"),
    "export": Command(None, "kip_runner.pipelines.export",
                      "write a learned set as imagefolder PNGs, npz or a PyTorch .pt"),
    "audit": Command("audit", "kip_runner.pipelines.audit",
                     "privacy audit of KIP / KIP_rho supports: membership inference, nearest "
                     "images"),
}


def usage() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = ["usage: kipctl <subcommand> [key=value ...] [-m] [--cfg job] [--help]", "",
             "subcommands:"]
    lines += [f"  {name:<{width}}  {c.help}" for name, c in COMMANDS.items()]
    lines += ["", "Each subcommand takes Hydra overrides, e.g. "
              "`kipctl eval-krr kernel=rbf support=100 seeds=5`;",
              "`kipctl <subcommand> --help` shows its options, `--cfg job` its resolved config."]
    return "\n".join(lines)


class JobError(Exception):
    """A job failed; the message is already one line. `user` selects exit code 2 vs 1."""

    def __init__(self, message: str, user: bool = True):
        super().__init__(message)
        self.user = user


_NOISE = ("full_key:", "object_type=", "reference_type=", "Set the environment variable",
          "See https://hydra.cc", "Config search path", "provider=")


def one_line(ex: BaseException) -> str:
    """Condenses an exception (and its cause) into one informative line."""
    parts: list[str] = []
    seen = ex
    while seen is not None and len(parts) < 4:
        listing = False  # inside "Available options in 'kernel':" followed by one name a line
        for line in str(seen).splitlines():
            line = " ".join(line.split())
            if not line or line.startswith(_NOISE) or line in parts:
                continue
            if listing and " " not in line:
                parts[-1] += (" " if parts[-1].endswith(":") else ", ") + line
                continue
            parts.append(line)
            listing = line.endswith(":")
        seen = seen.__cause__
    text = "; ".join(parts) or type(ex).__name__
    return text.replace(".;", ";")


def is_user_error(ex: BaseException) -> bool:
    """Bad input (exit 2): a JobError that says so, kipctl's KipctlError, and Hydra's and
    OmegaConf's own errors (unknown key or config group option, wrong type, bad override).
    Anything else is a bug (exit 1)."""
    if isinstance(ex, JobError):
        return ex.user
    from kip_runner.errors import KipctlError  # noqa: PLC0415

    user: tuple[type, ...] = (KipctlError,)
    try:
        from hydra.errors import HydraException  # noqa: PLC0415
        from omegaconf.errors import OmegaConfBaseException  # noqa: PLC0415
        user += (HydraException, OmegaConfBaseException)
    except ImportError:  # a broken install is not the user's input
        pass
    return isinstance(ex, user)


def _run_and_report(func: Callable):
    """Replaces hydra._internal.utils.run_and_report: one line per error instead of a
    stack trace (HYDRA_FULL_ERROR=1 still re-raises for debugging). Errors inside a job
    arrive as JobError (the task reports them); others come from outside any job."""
    try:
        return func()
    except Exception as ex:  # noqa: BLE001 - this is the top-level reporter
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if is_user_error(ex):
            print(f"kipctl: error: {one_line(ex)}", file=sys.stderr)
            sys.exit(2)
        message = one_line(ex) if isinstance(ex, JobError) else \
            f"{type(ex).__name__}: {one_line(ex)} (HYDRA_FULL_ERROR=1 shows the traceback)"
        print(f"kipctl: error: {message}", file=sys.stderr)
        sys.exit(1)


def _make_task(name: str, command: Command) -> Callable:
    def task(cfg) -> dict:
        # Imported here, not at module level, so `kipctl --help` stays instant.
        from hydra.core.hydra_config import HydraConfig  # noqa: PLC0415
        from hydra.types import RunMode  # noqa: PLC0415
        from omegaconf import OmegaConf  # noqa: PLC0415

        from kip_runner.errors import KipctlError, RunFailed  # noqa: PLC0415
        from kip_runner.runs.rundir import RunDir  # noqa: PLC0415

        rundir = RunDir(HydraConfig.get().runtime.output_dir, name)
        multirun = HydraConfig.get().mode == RunMode.MULTIRUN

        def fail(message: str, user: bool = True):
            # Single run: report and exit here, so Hydra adds no "Error executing job" line.
            # Multirun: raise, so Hydra records the job as failed and runs the others.
            if not multirun and os.environ.get("HYDRA_FULL_ERROR") != "1":
                print(f"kipctl: error: {message}", file=sys.stderr)
                sys.exit(2 if user else 1)
            return JobError(message, user)
        try:
            typed = OmegaConf.to_object(cfg)
            container = OmegaConf.to_container(cfg, resolve=True)
        except Exception as ex:  # noqa: BLE001 - validation errors of any kind
            rundir.discard_if_fresh()
            raise fail(one_line(ex)) from None
        try:
            # Imported here so that a broken import (jax, a pipeline) is recorded like a bug.
            from kip_runner.pipelines.runner import execute  # noqa: PLC0415

            return execute(command.module, typed, container, rundir)
        except KipctlError as ex:
            raise fail(one_line(ex)) from None
        except RunFailed as ex:  # recorded by execute (traceback.txt, status failed)
            raise fail(str(ex), user=False) from None
        except Exception as ex:  # noqa: BLE001 - a bug outside pipeline.run: record it too
            message = rundir.record_failure(ex)
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            raise fail(message, user=False) from None
    return task


class RunDirLock:
    """Hydra callback (conf/base.yaml): one kipctl process per run directory, and per sweep
    directory for -m (runs/lock.py). It runs before Hydra writes anything into the directory.
    Hydra turns a callback's exceptions into warnings, so a held lock prints the one-line error
    and exits 2 here."""

    def __init__(self) -> None:
        self.path: Optional[Path] = None

    def _take(self, directory: str) -> None:
        from kip_runner.runs.lock import LockHeld, acquire  # noqa: PLC0415

        try:
            self.path = acquire(Path(directory), warn=lambda msg: print(
                f"kipctl: warning: {msg}", file=sys.stderr))
        except LockHeld as ex:
            print(f"kipctl: error: {one_line(ex)}", file=sys.stderr)
            sys.exit(2)

    def _drop(self) -> None:
        from kip_runner.runs.lock import release  # noqa: PLC0415

        if self.path is not None:
            release(self.path)
            self.path = None

    def on_run_start(self, config, **kwargs) -> None:
        self._take(config.hydra.run.dir)

    def on_run_end(self, config, **kwargs) -> None:
        self._drop()

    def on_multirun_start(self, config, **kwargs) -> None:
        self._take(config.hydra.sweep.dir)

    def on_multirun_end(self, config, **kwargs) -> None:
        self._drop()

    def on_job_start(self, config, **kwargs) -> None:
        pass

    def on_job_end(self, config, **kwargs) -> None:
        pass


def register_resolvers() -> None:
    """`${kipctl_id:<text>}`: a short stable id of a text (e.g. the overrides), so that a
    command's run dir can be a function of its overrides and re-running it resumes."""
    import hashlib  # noqa: PLC0415

    from omegaconf import OmegaConf  # noqa: PLC0415

    if not OmegaConf.has_resolver("kipctl_id"):
        OmegaConf.register_new_resolver(
            "kipctl_id", lambda text: ("run-" + hashlib.sha256(str(text).encode()).hexdigest()
                                       [:10]) if text else "defaults")


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name = argv[0]
    command = COMMANDS.get(name)
    if command is None:
        print(f"kipctl: unknown subcommand '{name}'\n\n{usage()}", file=sys.stderr)
        return 2
    if command.config_name is None:
        return importlib.import_module(command.module).main(argv[1:])
    _run_and_report(lambda: _run_hydra_command(name, command, argv[1:]))
    return 0


def _run_hydra_command(name: str, command: Command, overrides: list[str]) -> None:
    import hydra  # noqa: PLC0415
    import hydra._internal.utils as hydra_utils  # noqa: PLC0415

    from kip_runner.config.schema import register  # noqa: PLC0415

    register()
    register_resolvers()
    # jax logs each missing accelerator backend at INFO; Hydra's INFO console would show it.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    # Pinned hydra-core 1.3: _run_hydra looks run_and_report up in this module at call time.
    hydra_utils.run_and_report = _run_and_report
    sys.argv = [f"kipctl {name}"] + overrides
    hydra.main(config_path=CONF_DIR, config_name=command.config_name,
               version_base="1.3")(_make_task(name, command))()
