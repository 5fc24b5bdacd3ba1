"""A tiny deterministic dataset for tests and `dataset=synthetic`: C classes of 8x8x1 uint8
images, each a fixed class prototype plus pixel noise. Linearly separable enough that KRR on a
few dozen points is far above chance, small enough that every kernel runs in milliseconds.
"""

from __future__ import annotations

import numpy as np

from kip_runner.data.sources import RawSplits


def make_synthetic(n_train: int = 400, n_test: int = 200, n_classes: int = 10, side: int = 8,
                   channels: int = 1, seed: int = 0) -> RawSplits:
    """Deterministic given `seed`. Returns uint8 images [N, side, side, channels]."""
    rng = np.random.default_rng(seed)
    protos = rng.uniform(40, 215, size=(n_classes, side, side, channels))  # [C, s, s, ch]

    def draw(n: int):
        y = np.arange(n) % n_classes  # balanced, [n]
        rng.shuffle(y)
        x = protos[y] + rng.normal(0, 110, size=(n, side, side, channels))  # [n, s, s, ch]
        return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)

    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test)
    return RawSplits(x_tr, y_tr, x_te, y_te, source="synthetic", note="synthetic data")
