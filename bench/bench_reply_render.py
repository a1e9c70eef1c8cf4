"""What drawing a reply inert costs the kernel while it streams (presentation/replies.py).

A streamed ``%%chat`` re-renders the whole answer at most every
``STREAM_INTERVAL_S`` (0.125 s): Markdown (markdown-it-py), code highlighting
(Pygments, cached per finished block) and the allow-list pass (nh3). For answers of
several sizes, half prose and half Python, the table gives the median render time
while the answer grows (50 steps), the final render, and the share of one core the
renders take at 8 updates per second. Median of 3 runs; each run starts with an empty
highlight cache.
"""

from __future__ import annotations

import statistics
import time

from ollama_nb.presentation import replies
from ollama_nb.presentation.display import STREAM_INTERVAL_S

PROSE = "Some **bold** text, `code`, a [link](https://example.org) and $a^2 + b^2$.\n\n"
CODE = "```python\n" + "def double(x):\n    return x * 2  # twice\n" * 12 + "```\n\n"
ANSWER = (PROSE * 4 + CODE) * 400
SIZES = (2_000, 8_000, 20_000, 50_000)
STEPS = 50


def run(size: int) -> tuple[float, float]:
    replies._highlighted.cache_clear()
    timings = []
    for end in range(size // STEPS, size + 1, size // STEPS):
        start = time.perf_counter()
        replies.markdown_html(ANSWER[:end])
        timings.append(time.perf_counter() - start)
    start = time.perf_counter()
    replies.markdown_html(ANSWER[:size])
    return statistics.median(timings), time.perf_counter() - start


def main() -> None:
    print(f"{'answer chars':>12}  {'streaming ms':>12}  {'final ms':>8}  {'core at 8/s':>11}")
    for size in SIZES:
        results = [run(size) for _ in range(3)]
        streaming = statistics.median(r[0] for r in results)
        final = statistics.median(r[1] for r in results)
        share = streaming / STREAM_INTERVAL_S
        print(f"{size:>12,}  {streaming * 1000:>12.1f}  {final * 1000:>8.1f}  {share:>10.0%}")


if __name__ == "__main__":
    main()
