"""``python -m ollama_nb.embedded serve|models``.

``serve`` is what the server manager's launcher runs in place of ``ollama serve``;
the quickstart (``python -m ollama_nb.quickstart``) lives above the runtime.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from ..domain import OllamaNbError
from .models import EmbeddedConfig, describe_models, resolve_models
from .server import banner, require_llama_cpp, server_from_environ

log = logging.getLogger("ollama_nb.embedded")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ollama_nb.embedded",
        description="Ollama's REST API served by llama.cpp, for machines without Ollama.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser("serve", help="serve at OLLAMA_HOST until Ctrl-C (like `ollama serve`)")
    commands.add_parser("models", help="list the GGUF models the server would offer")
    return parser


async def _serve() -> None:
    server = server_from_environ()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.request_stop)
    names = tuple(card.name for card in server.config.models)
    log.info(banner(names))
    await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (errors are one line, not a traceback)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="time=%(asctime)s level=%(levelname)s source=embedded msg=%(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "serve":
            asyncio.run(_serve())
            return 0
        if args.command == "models":
            require_llama_cpp()
            cards = [card for card, _ in resolve_models(EmbeddedConfig.from_environ())]
            print(describe_models(cards))
            return 0
        raise AssertionError(args.command)  # argparse allows only the commands above
    except OllamaNbError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
