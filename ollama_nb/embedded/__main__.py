"""``python -m ollama_nb.embedded serve|models|quickstart``.

``serve`` is what the server manager's launcher runs in place of ``ollama serve``;
``quickstart`` is the README's main job on a machine without Ollama: make sure a server
answers at ``OLLAMA_HOST`` (real Ollama if present, else this embedded one), then execute
the quickstart notebook top to bottom and save it with its outputs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..domain import OllamaNbError
from .models import DEFAULT_MODEL, EmbeddedConfig, describe_models, resolve_models
from .server import banner, require_llama_cpp, server_from_environ

if TYPE_CHECKING:
    from ..runtime import Runtime

log = logging.getLogger("ollama_nb.embedded")
QUICKSTART = Path("notebooks") / "01_quickstart.ipynb"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ollama_nb.embedded",
        description="Ollama's REST API served by llama.cpp, for machines without Ollama.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser("serve", help="serve at OLLAMA_HOST until Ctrl-C (like `ollama serve`)")
    commands.add_parser("models", help="list the GGUF models the server would offer")
    quick = commands.add_parser(
        "quickstart", help="start a server if none answers, then run the quickstart notebook"
    )
    quick.add_argument("--notebook", type=Path, default=QUICKSTART)
    quick.add_argument(
        "--output", type=Path, default=Path("quickstart-output.ipynb"),
        help="where the executed notebook is saved (default: %(default)s)",
    )  # fmt: skip
    quick.add_argument("--open", action="store_true", help="open it in JupyterLab afterwards")
    return parser


async def _serve() -> None:
    server = server_from_environ()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.request_stop)
    names = tuple(card.name for card in server.config.models)
    log.info(banner(names))
    await server.serve_forever()


def _quickstart(args: argparse.Namespace) -> int:
    """Run the quickstart; a server this command started is stopped when it ends."""
    from ..runtime import get_runtime
    from ..server.process import ServerProcess

    runtime = get_runtime()
    host = runtime.settings.ollama_host
    server = ServerProcess(host, runtime.settings.data_dir)
    env = dict(os.environ)
    started = False
    # A CI timeout or `kill` sends SIGTERM: unwind like Ctrl-C so the server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if server.answering():
        print(f"Using the server already running at {host.base_url}; it stays running.")
    else:
        started = _start_server(runtime, env)
    env["OLLAMA_HOST"] = host.netloc
    try:
        return _run_notebook(args, env)
    finally:
        if started:
            stopped = server.stop()
            print(f"Stopped the server this command started at {stopped.host} (pid {stopped.pid}).")


def _start_server(runtime: Runtime, env: dict[str, str]) -> bool:
    """Start Ollama if installed, else the embedded server; True if this call started one."""
    host = runtime.settings.ollama_host
    if shutil.which("ollama"):
        report = runtime.server.start()
        print(report)
        return report.outcome.action == "started"
    from ..server.embedded_start import start_embedded_server

    require_llama_cpp()
    outcome = start_embedded_server(host, runtime.settings.data_dir)
    print(banner())
    print(f"Listening at {outcome.host}; this command stops it when it ends.")
    env.setdefault("OLLAMA_NB_DEFAULT_MODEL", DEFAULT_MODEL)
    return outcome.action == "started"


def _run_notebook(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Execute the notebook in a fresh kernel, save it, and say how long the run took."""
    command = [
        sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
        "--ExecutePreprocessor.timeout=600", str(args.notebook), "--output",
        str(args.output.resolve()),
    ]  # fmt: skip
    began = time.monotonic()
    done = subprocess.run(command, env=env, check=False)
    if done.returncode != 0:
        return done.returncode
    print(f"Executed notebook saved to {args.output} ({time.monotonic() - began:.1f} s).")
    if args.open:
        print("Opening it in JupyterLab; the server stays up until you stop JupyterLab.")
        return subprocess.run(
            [sys.executable, "-m", "jupyter", "lab", str(args.output)], env=env, check=False
        ).returncode
    return 0


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
        return _quickstart(args)
    except OllamaNbError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
