"""The dependency direction of STYLE.md: core/ is pure (no Hydra, TF, pandas, I/O, print), and
its kernels and networks are kipctl's own (no neural-tangents)."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "kip_runner" / "core"
FORBIDDEN_IMPORTS = ("hydra", "omegaconf", "tensorflow", "tensorflow_datasets", "pandas",
                     "neural_tangents", "tf2jax",
                     "kip_runner.data", "kip_runner.runs", "kip_runner.config",
                     "kip_runner.pipelines", "kip_runner.cli")
FORBIDDEN_CALLS = ("open", "print")


def test_core_is_pure():
    problems = []
    for path in sorted(CORE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            problems += [f"{path.name}: imports {n}" for n in names
                         if n.split(".")[0] in FORBIDDEN_IMPORTS or n.startswith(
                             FORBIDDEN_IMPORTS)]
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in FORBIDDEN_CALLS:
                problems.append(f"{path.name}:{node.lineno}: calls {node.func.id}()")
    assert problems == [], problems
    assert len(list(CORE.glob("*.py"))) >= 5
