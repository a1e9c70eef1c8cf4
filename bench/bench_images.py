"""Image pipeline benchmark: our draft-mode pipeline vs the naive path vs the original.

Run: ``python bench/bench_images.py [--runs 7]``

Two generated inputs: a 12-megapixel photo-like JPEG (4000x3000, smooth
gradients plus sensor-like noise, quality 92) and a 4K PNG screenshot (flat
panels, text, lines). For each: time per image (median of ``--runs``), bytes
sent and the output size for

- ``ours``: ``PillowImageProcessor`` (JPEG draft decoding, which may stop up to
  10% under ``max_side`` to skip the resize; LANCZOS otherwise; auto format), no cache
- ``naive``: decode fully, LANCZOS resize to the same output size, JPEG quality 85
- ``original``: the file as is (base64-encoding it is the only work)
- ``cache hit``: the same image again through a cached processor, from a path
  (file memo: no read, no hash), from bytes (SHA-256 of the bytes) and a bare
  ``cache.get``

All figures come from one run of this script on one machine.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ollama_nb.domain.images import ImageSettings, human_bytes
from ollama_nb.infrastructure.clock import SystemClock
from ollama_nb.infrastructure.image_cache import LruImageCache
from ollama_nb.infrastructure.image_processor import PillowImageProcessor


def photo_jpeg(width: int = 4000, height: int = 3000) -> bytes:
    rng = np.random.default_rng(12)
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    pixels = np.empty((height, width, 3), dtype=np.float32)
    pixels[..., 0] = 60 + 150 * x * (1 - y) + 30 * np.sin(9 * x + 5 * y)
    pixels[..., 1] = 80 + 120 * y + 25 * np.cos(7 * x * y * 6)
    pixels[..., 2] = 140 - 90 * x + 20 * np.sin(13 * y)
    pixels += rng.normal(0, 6, size=pixels.shape).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def screenshot_png(width: int = 3840, height: int = 2160) -> bytes:
    image = Image.new("RGB", (width, height), (246, 246, 246))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 90), fill=(40, 44, 52))
    draw.rectangle((0, 90, 520, height), fill=(230, 232, 236))
    for row in range(60):
        top = 130 + row * 32
        draw.text((40, top), f"file_{row:02d}.py", fill=(30, 30, 30))
        draw.text(
            (580, top),
            f"def function_{row}(x, y):  return x * {row} + y  # line {row}",
            fill=(20, 20, 120),
        )
    for i in range(12):
        draw.rectangle(
            (
                2400 + (i % 4) * 330,
                300 + (i // 4) * 420,
                2700 + (i % 4) * 330,
                660 + (i // 4) * 420,
            ),
            outline=(0, 120, 215),
            width=4,
        )
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def naive(data: bytes, size: tuple[int, int]) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def median_s(work: Callable[[], object], runs: int) -> float:
    work()  # warm up: imports, allocator, page cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:10.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs

    settings = ImageSettings()
    uncached = PillowImageProcessor(settings)
    rows: list[tuple[str, str, str, str, str]] = []
    ratios: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        for label, data, suffix in (
            ("12 MP JPEG", photo_jpeg(), "jpg"),
            ("4K PNG screenshot", screenshot_png(), "png"),
        ):
            path = Path(folder) / f"input.{suffix}"
            path.write_bytes(data)
            ours = uncached.prepare(data)
            size = (ours.width, ours.height)
            naive_bytes = naive(data, size)
            t_ours = median_s(lambda: uncached.prepare(data), runs)  # noqa: B023
            t_naive = median_s(lambda: naive(data, size), runs)  # noqa: B023
            t_original = median_s(lambda: base64.b64encode(data), runs)  # noqa: B023

            cache = LruImageCache(max_bytes=1024**3, ttl_s=3600, clock=SystemClock())
            cached = PillowImageProcessor(settings, cache=cache)
            cached.prepare(path)
            t_hit_path = median_s(lambda: cached.prepare(path), runs)  # noqa: B023
            t_hit_bytes = median_s(lambda: cached.prepare(data), runs)  # noqa: B023
            t_hit_get = median_s(lambda: cache.get(ours.sha256), runs)  # noqa: B023

            dims = f"{size[0]}x{size[1]}"
            rows += [
                (
                    label,
                    "original",
                    ms(t_original),
                    human_bytes(len(data)),
                    f"{Image.open(io.BytesIO(data)).size[0]}x{Image.open(io.BytesIO(data)).size[1]}",
                ),
                (
                    label,
                    "naive (full decode)",
                    ms(t_naive),
                    human_bytes(len(naive_bytes)),
                    f"{dims} JPEG",
                ),
                (
                    label,
                    "ours",
                    ms(t_ours),
                    human_bytes(len(ours.data)),
                    f"{dims} {ours.format}",
                ),
                (
                    label,
                    "cache hit, path",
                    ms(t_hit_path),
                    human_bytes(len(ours.data)),
                    "memo: no read, no hash",
                ),
                (
                    label,
                    "cache hit, bytes",
                    ms(t_hit_bytes),
                    human_bytes(len(ours.data)),
                    "SHA-256 of the bytes",
                ),
                (label, "cache.get only", ms(t_hit_get), human_bytes(len(ours.data)), "lookup"),
            ]
            ratios.append(
                f"{label}: ours is {t_naive / t_ours:.1f}x faster than naive; "
                f"sends {len(data) / len(ours.data):.1f}x fewer bytes than the original"
            )

    header = ("input", "path", "median time", "bytes sent", "output")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    print(f"runs per cell: {runs} (median)")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print()
    for line in ratios:
        print(line)


if __name__ == "__main__":
    main()
