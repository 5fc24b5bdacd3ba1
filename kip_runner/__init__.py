"""kipctl: Kernel Inducing Points (KIP), KIP_rho and Label Solve (Nguyen, Chen, Lee, ICLR 2021)."""

import os

# JAX's CPU linear algebra (Cholesky, triangular solves) calls LAPACK through scipy's
# OpenBLAS, whose own thread pool then competes with XLA's for the same cores: on 2 cores the
# Cholesky gradient's solves took 8 ms each threaded vs 0.1 ms single-threaded, and a
# 1000 x 1000 factor+solve 820 ms vs 10 ms (bench/, results/distill/bench.md). OpenBLAS
# reads this once, when scipy/numpy load it, so it is set here, before any of them is
# imported by kipctl; set OPENBLAS_NUM_THREADS yourself to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
