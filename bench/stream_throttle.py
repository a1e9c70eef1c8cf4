# mypy: disable-error-code="no-untyped-call"
"""How many in-place updates (and bytes re-sent) a streamed ``%%chat`` costs per throttle interval.

Runs a real IPython shell against a stand-in that writes 200 tokens/s and
prints, for each interval, the updates sent, the Markdown bytes re-sent (what
the front end re-renders) and the cell's wall time. Median of 3 runs.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
from typing import Any

from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.settings import load_settings
from ollama_nb.testing import StandinConfig, StandinServer

TOKENS = 600


class Counter(DisplayPublisher):
    def __init__(self) -> None:
        super().__init__()
        self.updates = 0
        self.bytes = 0

    def publish(self, data: dict[str, Any], *args: Any, update: bool = False, **kw: Any) -> None:
        if update:
            self.updates += 1
            self.bytes += len(data.get("text/markdown", data.get("text/plain", "")))


def main() -> None:
    server = StandinServer(StandinConfig(tokens_per_second=200.0)).start()
    ip = InteractiveShell.instance()
    set_runtime(Runtime(load_settings(host=server.url, request_log=False)))
    ip.run_line_magic("load_ext", "ollama_nb")
    prompt = " ".join(f"w{i}" for i in range(TOKENS))
    print(f"{'interval s':>10} {'updates':>8} {'KB re-sent':>11} {'wall s':>7}")
    for interval in (0.0, 0.05, 0.125, 0.25, 0.5):
        ip.run_line_magic("ollama", f"config stream_interval_s={interval or 1e-9}")
        runs = []
        for _ in range(3):
            counter = Counter()
            ip.display_pub = counter
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                ip.run_cell(f"%%chat llama3.2 --new\n{prompt}")
            runs.append((counter.updates, counter.bytes / 1000, time.perf_counter() - t0))
        u, b, w = (statistics.median(r[i] for r in runs) for i in range(3))
        print(f"{interval:>10} {u:>8.0f} {b:>11.0f} {w:>7.2f}")
    server.stop()


if __name__ == "__main__":
    main()
