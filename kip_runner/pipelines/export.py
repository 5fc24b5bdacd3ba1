"""kipctl export <run dir | support.npz> format=imagefolder|npz|pt [out=<dir>]

Writes a learned support set in a format other tools read (runs/interop.py has the layouts).
The output directory is written under a temporary name and renamed when complete, so an
error leaves nothing behind; an existing non-empty `out` is refused.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from kip_runner.errors import KipctlError
from kip_runner.runs import interop
from kip_runner.runs.rundir import write_json
from kip_runner.runs.support import load_support

KEYS = ("format", "out", "pixels")
USAGE = ("usage: kipctl export <run dir | support.npz> format=imagefolder|npz|pt [out=<dir>] "
         "[pixels=auto|clip|fit]")


def parse_args(argv: list[str]) -> tuple[Path, str, Path, str]:
    paths, opts = [], {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key in KEYS:
            opts[key] = value
        elif sep and not Path(arg).exists():
            raise KipctlError(f"unknown export option '{key}'; options: format=, out=, "
                              "pixels=")
        else:
            paths.append(Path(arg))
    if len(paths) != 1:
        raise KipctlError(f"give one run directory or support.npz ({USAGE})")
    fmt = opts.get("format")
    if fmt not in interop.FORMATS:
        raise KipctlError(f"format= must be one of {', '.join(interop.FORMATS)}"
                          + (f", got '{fmt}'" if fmt else f" ({USAGE})"))
    source = interop.find_support(paths[0])
    out = Path(opts["out"]) if "out" in opts else source.parent / f"export-{fmt}"
    pixels = opts.get("pixels", "auto")
    if pixels not in interop.PIXEL_MODES:
        raise KipctlError(f"pixels= must be one of {', '.join(interop.PIXEL_MODES)}, got "
                          f"'{pixels}'")
    return source, fmt, out, pixels


def export(source: Path, fmt: str, out: Path, pixels: str = "auto") -> dict:
    """Writes `source` in format `fmt` into the directory `out` (created whole, or not at all).

    Raises:
      KipctlError: unreadable source, a set with no pixel form for this format, an occupied
        `out`, or a missing optional dependency.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise KipctlError(f"{out} already exists and is not empty; give another out= or delete "
                          "it")
    sup = load_support(source)  # its own class count
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        info = interop.WRITERS[fmt](sup, source, tmp, pixels)
        meta = interop.export_meta(sup, source, fmt, info)
        write_json(tmp / "export.json", meta)
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def headline(meta: dict, out: Path) -> str:
    clipped, span = meta.get("clipped_fraction", 0.0), meta.get("pixel_range")
    note = f", {100 * clipped:.2f} % of pixel values clipped to [0, 1]" if clipped else ""
    if span:
        note = (f", pixels [{span[0]:.3f}, {span[1]:.3f}] fitted onto [0, 1] (export.json "
                "pixel_range; pixels=clip writes clipped true pixels)")
    mask = ", with KIP_rho masks" if meta["has_mask"] else ""
    return (f"export: {meta['n_images']} images of {meta['n_classes']} classes as "
            f"{meta['format']}{mask}{note} -> {out}")


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE + "\n\n" + (__doc__ or "").strip())
        return 0
    try:
        source, fmt, out, pixels = parse_args(argv)
        meta = export(source, fmt, out, pixels)
    except KipctlError as e:
        print(f"kipctl: error: {e}", file=sys.stderr)
        return 2
    print(headline(meta, out))
    return 0
