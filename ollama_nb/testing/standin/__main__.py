"""``python -m ollama_nb.testing.standin serve``: a stand-in for ``ollama serve``.

Reads the same environment as Ollama (``OLLAMA_HOST``, ``OLLAMA_NUM_PARALLEL``,
``OLLAMA_MAX_QUEUE``, ``OLLAMA_KEEP_ALIVE``) plus the stand-in's own knobs, so notebooks
and CI jobs can point at it exactly as they would at a real server.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from ...domain import OllamaNbError
from .config import StandinConfig
from .server import StandinServer

_EPILOG = """\
environment:
  OLLAMA_HOST                          host[:port] or scheme://host:port (default 127.0.0.1:11434)
  OLLAMA_NUM_PARALLEL                  parallel generations per model (default 1)
  OLLAMA_MAX_QUEUE                     waiting requests before 503 (default 512)
  OLLAMA_KEEP_ALIVE                    how long models stay loaded: 5m, 1h30m, 300, -1 (default 5m)
  OLLAMA_NB_STANDIN_TOKENS_PER_SECOND  streaming speed; 0 or unset = as fast as possible
  OLLAMA_NB_STANDIN_LOAD_SECONDS       cold-load time of a model (default 0)
  OLLAMA_NB_STANDIN_PULL_SECONDS       duration of a simulated pull (default 0)

This is a deterministic stand-in for tests and offline notebooks, not a model runner.
Stand-in-only admin endpoints live under /_standin/ (faults, requests, reset, stats).
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ollama_nb.testing.standin",
        description="A stand-in Ollama server that follows Ollama's documented REST API.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "serve",
        help="start the stand-in server (like 'ollama serve')",
        description="Start the stand-in server; configured through the environment.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


async def _serve(config: StandinConfig) -> None:
    server = StandinServer(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.request_stop)
    await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command != "serve":
        _parser().print_help()
        return 2
    logging.basicConfig(
        level=logging.INFO,
        format="time=%(asctime)s level=%(levelname)s source=standin msg=%(message)s",
        stream=sys.stderr,
    )
    try:
        config = StandinConfig.from_environ()
        asyncio.run(_serve(config))
    except (OSError, OllamaNbError) as exc:
        logging.getLogger("ollama_nb.testing.standin").error("Error: %s", exc)
        return 1
    logging.getLogger("ollama_nb.testing.standin").info("stand-in server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
