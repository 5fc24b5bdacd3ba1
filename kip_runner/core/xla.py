"""jax.jit with the compiler options kipctl's kernels need.

On CPU, XLA (jaxlib 0.10.2) hands some fused reductions to its YNNPACK fusion. For the shapes
of the conv kernels that path is slow (the per-pixel ReLU map and mean of a Conv1 k_ts block,
[1000, 100, 28, 28] float32: 632 ms with it, 302 ms without) and, once, wrong: the patch Gram
sum(p1[:, None] * p2[None], 2) / 9 of [1000, 9, 28, 28] and [100, 9, 28, 28] came out with an
absolute error of 3.79 (of values up to 24) with it and 4.8e-7 without (docs/kernels.md). So
every kernel-heavy jit here turns it off; on other backends the options are left alone.
"""

from __future__ import annotations

from typing import Any, Callable

import jax

CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


def jit(fun: Callable, **kwargs: Any) -> Callable:
    """jax.jit(fun, **kwargs) with CPU_COMPILER_OPTIONS added on the CPU backend (the backend is
    looked up when the jitted function is made)."""
    if jax.default_backend() == "cpu":
        kwargs["compiler_options"] = {**CPU_COMPILER_OPTIONS,
                                      **kwargs.get("compiler_options", {})}
    return jax.jit(fun, **kwargs)
