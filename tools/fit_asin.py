"""Fits the arcsine polynomials of core/kernels.py (`ASIN_Q`): arcsin(z) = z + z^3 Q(z^2) on
|z| <= 1/sqrt(2), Q of degree 7 (float32) and 17 (float64), by least squares at 4000 Chebyshev
nodes against mpmath's arcsin at 40 digits, and prints the coefficients (constant term first)
with the largest relative error of the polynomial evaluated in each dtype.

    .venv/bin/python tools/fit_asin.py      # needs mpmath (a sympy dependency)
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

mp.mp.dps = 40
U_MAX = 0.5  # z^2 <= 1/2


def fit(degree: int, n: int = 4000) -> np.ndarray:
    k = np.arange(n)
    u = (np.cos(np.pi * (k + 0.5) / n) + 1) / 2 * U_MAX  # Chebyshev nodes in (0, U_MAX)
    g = np.array([float((mp.asin(mp.sqrt(mp.mpf(x))) - mp.sqrt(mp.mpf(x)))
                        / (mp.mpf(x) * mp.sqrt(mp.mpf(x)))) for x in u])  # Q(u)
    basis = np.vander(u / U_MAX, degree + 1, increasing=True)
    coef, *_ = np.linalg.lstsq(basis, g, rcond=None)
    return coef / U_MAX ** np.arange(degree + 1)


def max_rel_error(coef: np.ndarray, dtype) -> float:
    z = np.linspace(0, np.sqrt(U_MAX), 20001).astype(dtype)[1:]
    zz = z * z
    q = np.zeros_like(z) + dtype(coef[-1])
    for c in coef[-2::-1]:
        q = q * zz + dtype(c)
    approx = (z + z * zz * q).astype(np.float64)
    exact = np.array([float(mp.asin(mp.mpf(float(x)))) for x in z])
    return float(np.max(np.abs(approx - exact) / exact))


if __name__ == "__main__":
    for degree, dtype in ((7, np.float32), (17, np.float64)):
        coef = fit(degree)
        print(f"{np.dtype(dtype).name}: degree {degree}, max relative error "
              f"{max_rel_error(coef, dtype):.2e}")
        print("  (" + ", ".join(repr(float(c)) for c in coef) + ")")
