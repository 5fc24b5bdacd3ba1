"""Pure JAX core: kernels, KRR, KIP, Label Solve, sampling, corruption.

No I/O, no Hydra, no printing. Imports jax, numpy and optax only (the kernels and networks are kipctl's own).
"""
