"""Pure JAX core: kernels, KRR, KIP, Label Solve, sampling, corruption.

No I/O, no Hydra, no printing. Imports jax, numpy, neural_tangents and optax only.
"""
