"""Test tiers (markers in pyproject.toml): unit (default), config, integration, slow."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# One XLA compilation cache for the whole test session, shared with every kipctl subprocess
# (they inherit the environment): the CLI tests compile the same kernels and steps again in
# each process, and a cache hit skips XLA's compile (a 5-step Conv1 distill: 8.5 s -> 4.0 s).
# Set before jax is imported; a cache the caller chose is kept, a session one is removed.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="kipctl-tests-xla-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_enable_x64", True)

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = os.environ.get("KIP_DATA_DIR", str(REPO.parent / "shared" / "data"))


def data_available(name: str = "mnist") -> bool:
    return (Path(DATA_DIR) / name).is_dir()


requires_data = pytest.mark.skipif(
    not data_available(), reason=f"real data not found in {DATA_DIR} (set KIP_DATA_DIR)")


@pytest.fixture
def data_dir() -> str:
    if not data_available():
        pytest.skip(f"real data not found in {DATA_DIR} (set KIP_DATA_DIR)")
    return DATA_DIR


def run_kipctl(*args: str, cwd=None, env=None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Runs `python -m kip_runner <args>` as a user would run ./kipctl."""
    full_env = dict(os.environ)
    full_env.setdefault("KIP_DATA_DIR", DATA_DIR)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "kip_runner", *args], cwd=cwd or REPO,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(out: subprocess.CompletedProcess, msg: str) -> None:
    """The CLI's error contract: exit 2, exactly one stderr line, no traceback."""
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and lines[0].startswith("kipctl: error:") and msg in lines[0], \
        out.stderr
    assert "Traceback" not in out.stdout + out.stderr


@pytest.fixture
def kipctl():
    return run_kipctl
