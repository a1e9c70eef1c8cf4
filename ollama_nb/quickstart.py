"""``python -m ollama_nb.quickstart``: the README's main job.

Make sure a server answers at ``OLLAMA_HOST`` (the one already running, else real
Ollama if installed, else the embedded llama.cpp server), execute the quickstart
notebook top to bottom in a fresh kernel, save it with its outputs, and stop any
server this command started. It lives outside ``embedded`` because it is an entry
point above the runtime: ``embedded`` is an adapter the runtime builds on.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .domain import ConfigurationError, OllamaNbError
from .embedded import banner, require_llama_cpp
from .ollama_process.embedded_start import start_embedded_server
from .ollama_process.process import ServerProcess
from .runtime import Runtime, get_runtime

QUICKSTART_NAME = "01_quickstart.ipynb"


def quickstart_notebook() -> Path:
    """The shipped quickstart: inside the installed package, or in a checkout's notebooks/.

    The wheel carries ``notebooks/01_quickstart.ipynb`` as ``ollama_nb/notebooks/...``
    (pyproject's force-include); an editable install runs from the clone, where the file
    is beside the package. Either way the command works from any directory.
    """
    package = Path(__file__).resolve().parent
    candidates = (
        package / "notebooks" / QUICKSTART_NAME,
        package.parent / "notebooks" / QUICKSTART_NAME,
    )
    return next((c for c in candidates if c.is_file()), candidates[0])


def check_notebook(path: Path) -> None:
    """Fail in one line, before any server starts, when the notebook cannot be run."""
    hint = "Pass --notebook PATH, or reinstall ollama_nb to restore the shipped quickstart."
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells")
    except FileNotFoundError:
        raise ConfigurationError(f"The notebook {path} does not exist.", hint=hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigurationError(f"Cannot read the notebook {path}: {reason}.", hint=hint) from None
    except (json.JSONDecodeError, AttributeError):
        cells = None
    if not isinstance(cells, list):
        raise ConfigurationError(f"{path} is not a Jupyter notebook (no cells).", hint=hint)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ollama_nb.quickstart",
        description="Start a server if none answers, then run the quickstart notebook.",
    )
    parser.add_argument(
        "--notebook", type=Path, default=None,
        help="the notebook to run (default: the quickstart shipped with ollama_nb)",
    )  # fmt: skip
    parser.add_argument(
        "--output", type=Path, default=Path("quickstart-output.ipynb"),
        help="where the executed notebook is saved (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--open", action="store_true", help="open it in JupyterLab afterwards")
    return parser


def _quickstart(args: argparse.Namespace) -> int:
    """Run the quickstart; a server this command started is stopped when it ends."""
    args.notebook = args.notebook or quickstart_notebook()
    check_notebook(args.notebook)
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
    require_llama_cpp()
    outcome = start_embedded_server(host, runtime.settings.data_dir)
    print(banner())
    print(f"Listening at {outcome.host}; this command stops it when it ends.")
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
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    try:
        return _quickstart(args)
    except (OllamaNbError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
