"""Refusing oversized images: time and extra memory before the limit says no.

Run: ``python bench/bench_image_limits.py [--runs 7]``

A 12000x12000 PNG (144 megapixels, over the default 89.5 MP ``max_pixels``)
and equally oversized arrays and figures, each given to the pipeline the way a
user would (``prepare_images`` of the process-wide pipeline): a path, the bytes,
a lazily opened ``PIL.Image``, a NumPy array, a matplotlib figure. Each case
runs in a fresh interpreter so its memory is its own; it reports

- ``ms``: the median time to the refusal over ``--runs`` calls, and the first
  call alone (after a warm-up that imports Pillow and builds the pipeline, as
  in a notebook that has already sent an image),
- ``traced MB``: tracemalloc's peak during one refusal (Python and NumPy buffers),
- ``RSS MB``: the process's peak resident memory during the first refusal minus
  its resident memory just before it: everything the refusal touched, Pillow's
  C buffers included (Linux: the peak is reset through ``/proc/self/clear_refs``
  and read from ``VmHWM``; elsewhere ``ru_maxrss`` can only show growth past
  the earlier peak).

For scale, the last row decodes the same PNG fully with Pillow, which is what
hashing a lazily opened image used to do before the size check.
Target: refused in under 50 ms with under 50 MB extra.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

SIDE = 12_000
CASES = ("path", "bytes", "lazy PIL image", "numpy uint8 array", "numpy float64 array", "figure")


def make_png(folder: Path) -> Path:
    from PIL import Image

    path = folder / "huge.png"
    Image.new("L", (SIDE, SIDE), 200).save(path)
    return path


def _rss_now() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss() -> bool:
    """Linux: make VmHWM (the peak) equal to the current RSS, so the next peak is ours."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _peak_rss() -> int:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _source(case: str, png: Path) -> Any:
    import numpy as np

    if case == "path":
        return png
    if case == "bytes":
        return png.read_bytes()
    if case == "lazy PIL image":
        from PIL import Image

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Image.open(png)
    if case == "numpy uint8 array":
        return np.zeros((SIDE, SIDE, 3), dtype=np.uint8)  # pages mapped only when read
    if case == "numpy float64 array":
        return np.zeros((SIDE, SIDE, 3), dtype=np.float64)
    if case == "figure":
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        return Figure(figsize=(240, 240))  # 240 in at the 50 dpi floor: 12000x12000
    raise ValueError(case)


def _warm_up(vision: Any) -> None:
    """Imports and the pipeline built once, as in a notebook that has sent an image before."""
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "white").save(buffer, "PNG")
    vision.prepare_images([buffer.getvalue(), np.zeros((8, 8), dtype=np.uint8)])
    if "figure" in sys.argv:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        vision.prepare_images([Figure(figsize=(1, 1))])


def run_case(case: str, png: Path, runs: int) -> dict[str, Any]:
    """In the child: refuse ``runs`` times, measure the first refusal's memory."""
    from ollama_nb import vision
    from ollama_nb.domain import ImageError

    warnings.simplefilter("ignore")  # Pillow's own bomb warning is not what we measure
    _warm_up(vision)
    times, message, traced, rss_extra = [], "", 0, 0
    source = None if case == "full decode (for scale)" else _source(case, png)
    _reset_peak_rss()
    rss_before = _rss_now()
    peak_before = _peak_rss()  # equals rss_before after a reset; else the lifetime peak
    tracemalloc.start()
    for index in range(runs):
        if case == "bytes":
            source = _source(case, png)
        started = time.perf_counter()
        if case == "full decode (for scale)":
            from PIL import Image

            with Image.open(png) as opened:
                opened.load()
                opened.tobytes()
            message = "decoded"
        else:
            try:
                vision.prepare_images([source])
                message = "ACCEPTED"
            except ImageError as exc:
                message = str(exc)
        times.append(time.perf_counter() - started)
        if index == 0:
            traced = tracemalloc.get_traced_memory()[1]
            rss_extra = max(0, _peak_rss() - max(rss_before, peak_before))
            tracemalloc.stop()
    return {
        "case": case,
        "ms": statistics.median(times) * 1000,
        "first_ms": times[0] * 1000,
        "traced_mb": traced / 1e6,
        "rss_mb": rss_extra / 1e6,
        "message": message,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--png", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, Path(args.png), args.runs)))
        return
    with tempfile.TemporaryDirectory() as folder:
        png = make_png(Path(folder))
        print(f"{SIDE}x{SIDE} PNG: {png.stat().st_size / 1e3:.0f} kB on disk; runs={args.runs}")
        rows = []
        for case in (*CASES, "full decode (for scale)"):
            child = subprocess.run(
                [sys.executable, __file__, "--child", case, "--png", str(png), "--runs",
                 str(args.runs if case != "full decode (for scale)" else 3)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print()
    print(
        f"{'source':<26}{'ms (median)':>12}{'first ms':>10}{'traced MB':>11}{'RSS MB':>9}  result"
    )
    for row in rows:
        verdict = "refused" if "too large" in row["message"] else row["message"][:30]
        print(
            f"{row['case']:<26}{row['ms']:>12.2f}{row['first_ms']:>10.2f}"
            f"{row['traced_mb']:>11.2f}{row['rss_mb']:>9.1f}  {verdict}"
        )
    refusals = [r for r in rows if r["case"] in CASES]
    worst_ms = max(r["ms"] for r in refusals)
    worst_mb = max(max(r["rss_mb"], r["traced_mb"]) for r in refusals)
    within = worst_ms < 50 and worst_mb < 50 and all("too large" in r["message"] for r in refusals)
    print(
        f"\nworst refusal: {worst_ms:.2f} ms, {worst_mb:.1f} MB extra "
        f"(target < 50 ms, < 50 MB): {'within' if within else 'NOT within'} target"
    )


if __name__ == "__main__":
    main()
