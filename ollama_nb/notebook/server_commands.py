# mypy: disable-error-code="no-untyped-call,untyped-decorator"
# (IPython's display and magic_arguments APIs carry no type hints.)
"""``%ollama start|stop|restart|server|tune|warm``: the local server without a terminal.

Each handler parses its line, calls the server manager and returns its report
(plain text that reads well in a notebook and a terminal alike). The core's
``%ollama status`` gets a "Local server" section from here.
"""

from __future__ import annotations

import time
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import DisplayHandle, display

from ..ollama_process.process import Progress
from ..ollama_process.profiles import check_env_value
from ..presentation.display import Notice
from ..runtime import Runtime
from .commands import subcommand
from .core_commands import STATUS_SECTIONS

#: Show the "waiting for the server" line only when a start takes longer than this.
PROGRESS_AFTER_S = 1.0


def _parse(func: Any, line: str) -> Any:
    try:
        return parse_argstring(func, line)
    except UsageError:
        raise
    except SystemExit as exc:  # argparse on bad input
        raise UsageError(f"Usage: %ollama {func.__name__.rstrip('_')} (see %ollama help)") from exc


class _WaitLine:
    """A single updatable line while ``ollama serve`` comes up."""

    def __init__(self) -> None:
        self._handle: DisplayHandle | None = None

    def __call__(self, elapsed: float, timeout: float) -> None:
        if elapsed < PROGRESS_AFTER_S:
            return
        text = Notice(f"Waiting for ollama serve to answer… {elapsed:.0f} s of {timeout:.0f} s")
        if self._handle is None:
            self._handle = display(text, display_id=True)
        else:
            self._handle.update(text)

    def done(self) -> None:
        if self._handle is not None:
            self._handle.update(Notice(""))


def _with_progress(work: Any) -> Any:
    line = _WaitLine()
    progress: Progress = line
    try:
        return work(progress)
    finally:
        line.done()


@magic_arguments()
@argument("--warm", metavar="MODEL", help="preload MODEL once the server answers")
@argument("--force", action="store_true", help="start even if the settings exceed the budget")
def start(line: str, shell: Any, runtime: Runtime) -> object:
    """Start the local Ollama server tuned for this machine (or use the one already running)."""
    args = _parse(start, line)
    manager = runtime.server
    return _with_progress(
        lambda progress: manager.start(warm=args.warm, force=args.force, progress=progress)
    )


@magic_arguments()
def stop(line: str, shell: Any, runtime: Runtime) -> object:
    """Stop the local server, only if ollama_nb started it."""
    _parse(stop, line)
    return runtime.server.stop()


@magic_arguments()
@argument("--warm", metavar="MODEL", help="preload MODEL once the server answers")
@argument("--force", action="store_true", help="start even if the settings exceed the budget")
def restart(line: str, shell: Any, runtime: Runtime) -> object:
    """Stop our server and start it again, so changed tuning takes effect."""
    args = _parse(restart, line)
    manager = runtime.server
    return _with_progress(
        lambda progress: manager.restart(warm=args.warm, force=args.force, progress=progress)
    )


@magic_arguments()
def server(line: str, shell: Any, runtime: Runtime) -> object:
    """Who runs the server at the host, with which profile, and where its log is."""
    _parse(server, line)
    return runtime.server.status()


@magic_arguments()
@argument("--profile", metavar="NAME", help="use this profile (`auto` to choose again)")
@argument(
    "--set",
    metavar="NAME=VALUE",
    action="append",
    default=[],
    dest="assignments",
    help="override a server variable, e.g. OLLAMA_NUM_PARALLEL=4",
)
@argument("--unset", metavar="NAME", action="append", default=[], help="drop an override")
def tune(line: str, shell: Any, runtime: Runtime) -> object:
    """Hardware, chosen profile, each server variable and its source, and the memory budget."""
    args = _parse(tune, line)
    manager = runtime.server
    changes: dict[str, Any] = {}
    if args.profile is not None:
        changes["profile"] = None if args.profile == "auto" else args.profile
        if changes["profile"] is not None:
            manager.profiles.named(changes["profile"])
    if args.assignments or args.unset:
        env = dict(manager.settings.env)
        for item in args.assignments:
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise UsageError(f"--set needs NAME=VALUE, got {item!r}.")
            env[name.strip()] = check_env_value(name.strip(), value.strip())
        for name in args.unset:
            env.pop(name.strip(), None)
        changes["env"] = env
    if changes:
        manager.configure(**changes)
    return manager.tune_report()


@magic_arguments()
@argument("model", help="model to load now, e.g. llama3.2")
def warm(line: str, shell: Any, runtime: Runtime) -> object:
    """Preload a model with an empty request so the next cell does not wait for the load."""
    args = _parse(warm, line)
    return runtime.server.warm(args.model)


subcommand("start", "start the local Ollama server tuned for this machine: start [--warm MODEL]")(
    start
)
subcommand("stop", "stop the local server (only one ollama_nb started)")(stop)
subcommand("restart", "restart our server so tuning changes apply: restart [--warm MODEL]")(restart)
subcommand("server", "who runs the server, its profile, slots and log file")(server)
subcommand("tune", "hardware, profile, server variables and memory budget: tune [--set K=V]")(tune)
subcommand("warm", "preload a model so the first cell does not pay the load: warm MODEL")(warm)


def _status_section(runtime: Runtime) -> tuple[str, object] | None:
    """The "Local server" part of ``%ollama status``: who owns it and how it was tuned."""
    observation = runtime.server.process().observe()
    if observation.state is not None:
        s = observation.state
        started = time.strftime("%H:%M", time.localtime(s.started_at))
        text = (
            f"{observation.owner} at {started}; profile {s.profile or 'none'}; "
            f"{s.parallel} parallel slots; log {s.log}"
        )
    elif observation.owner:
        text = f"not started by ollama_nb ({observation.owner})"
    else:
        return None
    return "Local server", text


if _status_section not in STATUS_SECTIONS:
    STATUS_SECTIONS.append(_status_section)
