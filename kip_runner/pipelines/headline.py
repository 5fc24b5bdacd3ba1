"""The one readable line every command ends with (the raw metrics stay in summary.json):

    distill: 85.00 % KRR test accuracy (fc1, 10 images, 200 steps, 12.8 ms/step, float64 eval)
      -> outputs/distill/.../support.npz
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable


def _pct(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f} %"


def _pm(mean: Any, std: Any) -> str:
    if std is None or mean is None:
        return _pct(mean)
    return f"{100 * mean:.2f} ± {100 * std:.2f} %"


def _kernel(cfg: dict) -> str:
    k = cfg.get("kernel") or {}
    kind = k.get("kind")
    name = k.get("name", "?")
    return name if k.get("arch") in ("rbf", "linear") or not kind else f"{name} {kind}"


def _distill(cfg: dict, m: dict) -> str:
    ms = m.get("seconds_per_step")
    speed = "" if ms is None or math.isnan(ms) else f", {1e3 * ms:.1f} ms/step"
    return (f"{_pct(m.get('test_accuracy'))} KRR test accuracy ({m.get('kernel')}, "
            f"{m.get('support')} images, {m.get('steps')} steps{speed}, "
            f"{m.get('eval_dtype', 'float64')} eval)")


def _eval_krr(cfg: dict, m: dict) -> str:
    source = cfg.get("source", "natural")
    what = "natural images" if source == "natural" else f"images of {Path(str(source)).name}"
    return (f"{_pm(m.get('accuracy_mean'), m.get('accuracy_std'))} KRR test accuracy "
            f"({_kernel(cfg)}, {m.get('n_support', cfg.get('support'))} {what}, "
            f"{m.get('n_seeds')} seed(s), "
            f"{m.get('dtype', 'float64')}, {m.get('n_test')} test images)")


def _eval_nn(cfg: dict, m: dict) -> str:
    net = (cfg.get("net") or {}).get("name", "?")
    return (f"{_pm(m.get('test_accuracy_mean'), m.get('test_accuracy_std'))} test accuracy "
            f"({net}, {m.get('n_support')} images, {m.get('steps')} steps, "
            f"{m.get('n_seeds')} init(s), {m.get('n_test')} test images)")


def _label_solve(cfg: dict, m: dict) -> str:
    return (f"{_pct(m.get('test_accuracy'))} KRR test accuracy with solved labels, "
            f"{_pct(m.get('test_accuracy_original_labels'))} with the original ones "
            f"({_kernel(cfg)}, {m.get('n_support')} images, {m.get('n_targets')} targets)")


def _corrupt_sweep(cfg: dict, m: dict) -> str:
    return (f"{m.get('n_done')} of {m.get('n_cells')} cells done, {m.get('n_failed', 0)} "
            f"failed, in {m.get('wall_seconds', float('nan')):.0f} s (results.csv)")


def _audit(cfg: dict, m: dict) -> str:
    ok = all(m.get(k, True) for k in ("sanity/null_ok", "sanity/leak_ok"))
    return (f"{m.get('n_cells')} cells, {m.get('n_runs')} runs each, sanity checks "
            f"{'passed' if ok else 'FAILED'} (findings in audit.csv)")


HEADLINES: dict[str, Callable[[dict, dict], str]] = {
    "distill": _distill, "eval-krr": _eval_krr, "eval-nn": _eval_nn,
    "label-solve": _label_solve, "corrupt-sweep": _corrupt_sweep, "audit": _audit}
OUTPUT = {"distill": "support.npz", "label-solve": "support.npz"}


def headline(command: str, cfg: dict, metrics: dict, path: Path) -> str:
    """`<command>: <sentence> -> <main output>`; a generic sentence for an unknown command."""
    f = HEADLINES.get(command)
    try:
        text = f(cfg, metrics) if f else ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in metrics.items() if not isinstance(v, (dict, list)))
    except (TypeError, ValueError):  # a partial metrics dict: say what there is
        text = f"done ({len(metrics)} metrics in summary.json)"
    out = Path(path) / OUTPUT[command] if command in OUTPUT else Path(path)
    return f"{command}: {text} -> {out}"
