"""Import neural-tangents without its TensorFlow-backed `experimental` subpackage.

`neural_tangents/__init__.py` imports `experimental.empirical_tf`, which imports jax2tf and
TensorFlow: ~6 s of start-up for code kipctl never calls (measured: `import neural_tangents`
7.2 s vs 1.3 s with the stub). The stub is installed only if nothing imported the real
subpackage first, so a user who needs `nt.experimental` can import it before kip_runner.
"""

import sys
import types

sys.modules.setdefault(
    "neural_tangents.experimental", types.ModuleType("neural_tangents.experimental")
)

import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

__all__ = ["nt", "stax"]
