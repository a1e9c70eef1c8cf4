# mypy: disable-error-code="no-untyped-call,untyped-decorator"
# (IPython's display, magic and magic_arguments APIs carry no type hints.)
"""The core ``%ollama`` subcommands: server status, models, settings, history.

Other features add subcommands from their own modules and may add sections to
``%ollama status`` by appending to ``STATUS_SECTIONS``: each entry is called
with the runtime and returns ``(title, content)`` (content being a string or
an object with ``_repr_html_``), or ``None`` to show nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from ..application import use_cases
from ..domain import (
    ModelInfo,
    ModelName,
    ModelNotFoundError,
    ModelSummary,
    OllamaNbError,
    RunningModel,
)
from ..presentation.display import Notice, Sections, Table, human_bytes, show_note, show_warning
from ..presentation.replies import inline_html
from ..runtime import Runtime
from ..settings import Settings
from .commands import all_subcommands, subcommand
from .magics import state_of

StatusSection = Callable[[Runtime], "tuple[str, object] | None"]
#: Contributions to ``%ollama status`` from other features (see the module docstring).
STATUS_SECTIONS: list[StatusSection] = []
PULL_INTERVAL_S = 0.25


def _one_model(line: str, command: str) -> ModelName:
    words = line.split()
    if len(words) != 1:
        raise UsageError(f"Usage: %ollama {command} NAME")
    return ModelName(words[0])


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else ""


# --- status -------------------------------------------------------------------------


def _running_table(models: list[RunningModel]) -> Table:
    rows = tuple(
        (
            m.name,
            human_bytes(m.size_bytes),
            f"{m.gpu_share:.0%}",
            str(m.context_length or ""),
            "forever" if m.expires_at and m.expires_at.year > 2200 else _when(m.expires_at),
        )
        for m in models
    )
    return Table(
        ("model", "size", "in GPU", "context", "unloads at"),
        rows,
        title="Loaded models",
        empty="No model loaded.",
    )


@subcommand("status", "host, server version, loaded models, queue and breaker")
def status(line: str, shell: Any, runtime: Runtime) -> object:
    settings = runtime.settings

    report = runtime.run(use_cases.status)
    gate = report.health.queue
    rows = [
        ("host", settings.host),
        ("reachable", "yes" if report.problem is None else "no"),
        ("server version", report.version or "-"),
        ("default model", settings.default_model or "(none: `%ollama use NAME`)"),
        ("circuit breaker", report.health.breaker),
        (
            "queue",
            f"{gate.running} running / {gate.limit} slots (vision {gate.vision_limit}), "
            f"{gate.waiting} waiting, {gate.admitted} admitted, longest wait {gate.max_wait_s:.2f} s",
        ),
    ]
    parts: list[object] = [Table(("", ""), tuple(rows), title="Ollama")]
    if report.problem is not None:
        parts.append(Notice(report.problem, "error"))
    else:
        parts.append(_running_table(report.running))
    for section in STATUS_SECTIONS:
        contributed = section(runtime)
        if contributed is not None:
            title, content = contributed
            parts.append(
                content
                if hasattr(content, "_repr_html_")
                else Table(("",), ((str(content),),), title=title)
            )
    return Sections(tuple(parts))


# --- models ---------------------------------------------------------------------


@subcommand("models", "installed models with size, family and capabilities", aliases=("list",))
def models(line: str, shell: Any, runtime: Runtime) -> object:
    if line.strip():
        raise UsageError("Usage: %ollama models")

    async def gather(ports: use_cases.Ports) -> list[tuple[ModelSummary, ModelInfo | None]]:
        summaries = await use_cases.list_models(ports)
        infos = await asyncio.gather(
            *(use_cases.show_model(ports, ModelName(s.name)) for s in summaries),
            return_exceptions=True,
        )
        return [
            (s, i if isinstance(i, ModelInfo) else None)
            for s, i in zip(summaries, infos, strict=True)
        ]

    found = runtime.run(gather)
    rows = tuple(
        (
            s.name,
            human_bytes(s.size_bytes),
            s.details.family,
            s.details.parameter_size,
            s.details.quantization_level,
            _when(s.modified_at),
            ", ".join(c for c in (info.capabilities if info else ()) if c != "completion")
            or ("text" if info else "?"),
        )
        for s, info in sorted(found, key=lambda pair: pair[0].name)
    )
    return Table(
        ("name", "size", "family", "parameters", "quantization", "modified", "capabilities"),
        rows,
        title=f"Installed models on {runtime.settings.host}",
        empty="No models installed: `%ollama pull llama3.2` gets one.",
    )


@subcommand("ps", "models loaded in memory now")
def ps(line: str, shell: Any, runtime: Runtime) -> object:
    return _running_table(runtime.run(use_cases.running_models))


@subcommand("show", "details of one model: family, capabilities, context, parameters")
def show(line: str, shell: Any, runtime: Runtime) -> object:
    name = _one_model(line, "show")

    async def fetch(ports: use_cases.Ports) -> ModelInfo:
        try:
            return await use_cases.show_model(ports, name)
        except ModelNotFoundError as exc:
            raise await use_cases.with_suggestions(ports, exc) from None

    info = runtime.run(fetch)
    rows = [
        ("family", info.details.family),
        ("parameters", info.details.parameter_size),
        ("quantization", info.details.quantization_level),
        ("format", info.details.format),
        ("capabilities", ", ".join(info.capabilities)),
        ("context length", str(info.context_length or "")),
        ("modified", _when(info.modified_at)),
    ]
    if info.parameters:
        rows.append(("defaults", " ".join(info.parameters.split())))
    return Table(("", ""), tuple((k, v) for k, v in rows if v), title=info.name)


# --- pull / rm / use -------------------------------------------------------------


@dataclass(slots=True)
class _Layer:
    total: int = 0
    completed: int = 0
    first_seen: float = 0.0
    first_completed: int = 0


def _progress_bundle(
    model: str, status_text: str, layers: dict[str, _Layer], now: float
) -> dict[str, str]:
    rows_html, rows_text = [], []
    for digest, layer in layers.items():
        fraction = layer.completed / layer.total if layer.total else 0.0
        elapsed = max(now - layer.first_seen, 1e-6)
        speed = (layer.completed - layer.first_completed) / elapsed
        remaining = (layer.total - layer.completed) / speed if speed > 0 else None
        eta = "done" if fraction >= 1 else (f"{remaining:.0f} s" if remaining is not None else "-")
        short = digest.removeprefix("sha256:")[:12]
        rows_html.append(
            f"<tr><td><code>{inline_html(short)}</code></td><td><progress value='{fraction:.3f}' max='1'></progress></td>"
            f"<td>{fraction:.0%}</td><td>{human_bytes(layer.completed)} / {human_bytes(layer.total)}</td>"
            f"<td>{human_bytes(speed)}/s</td><td>{eta}</td></tr>"
        )
        rows_text.append(
            f"{short}  {fraction:4.0%}  {human_bytes(layer.completed)}/{human_bytes(layer.total)}  "
            f"{human_bytes(speed)}/s  ETA {eta}"
        )
    title = f"Pulling {model}: {status_text}"
    return {
        "text/html": f"<b>{inline_html(title)}</b><table>{''.join(rows_html)}</table>",
        "text/plain": "\n".join([title, *rows_text]),
    }


@subcommand("pull", "download a model, with a progress bar per layer")
def pull(line: str, shell: Any, runtime: Runtime) -> object:
    name = _one_model(line, "pull")
    handle = display({"text/plain": f"Pulling {name.value}…"}, raw=True, display_id=True)
    layers: dict[str, _Layer] = {}
    last = float("-inf")
    status_text = "starting"
    try:
        for step in runtime.iterate(lambda ports: use_cases.pull(ports, name)):
            status_text = step.status
            now = time.monotonic()
            if step.digest and step.total:
                layer = layers.setdefault(
                    step.digest, _Layer(step.total, 0, now, step.completed or 0)
                )
                layer.total, layer.completed = step.total, step.completed or 0
            if now - last >= PULL_INTERVAL_S:
                handle.update(_progress_bundle(name.value, status_text, layers, now), raw=True)
                last = now
    except KeyboardInterrupt:
        handle.update(
            _progress_bundle(name.value, "interrupted", layers, time.monotonic()), raw=True
        )
        show_warning(
            f"Pull of {name.value} interrupted; run `%ollama pull {name.value}` to resume."
        )
        return None
    handle.update(_progress_bundle(name.value, status_text, layers, time.monotonic()), raw=True)
    return Notice(f"Pulled {name.value}.", "note")


@subcommand("rm", "delete an installed model")
def rm(line: str, shell: Any, runtime: Runtime) -> object:
    name = _one_model(line, "rm")
    runtime.run(lambda ports: use_cases.delete_model(ports, name))
    return Notice(f"Deleted {name.value}.", "note")


@subcommand("use", "set the default model for magics, widgets and the Python API")
def use(line: str, shell: Any, runtime: Runtime) -> object:
    """``%ollama use NAME [--warm]``: set the default model, optionally loading it now."""
    words = line.split()
    warm_it = "--warm" in words
    name = _one_model(" ".join(w for w in words if w != "--warm"), "use")
    runtime.configure(default_model=name.value)
    try:
        installed = runtime.run(lambda ports: use_cases.installed_match(ports, name))
    except OllamaNbError as exc:
        show_warning(f"Could not check that {name.value} is installed: {exc}")
        return Notice(f"Default model: {name.value}.", "note")
    if installed is None:
        show_warning(
            f"{name.value} is not installed on {runtime.settings.host}; "
            f"`%ollama pull {name.value}` downloads it."
        )
    elif warm_it:
        display(runtime.server.warm(name.value))
    return Notice(f"Default model: {name.value}.", "note")


# --- host / config --------------------------------------------------------------


@subcommand("host", "show or change the Ollama server for this kernel")
def host(line: str, shell: Any, runtime: Runtime) -> object:
    if line.strip():
        runtime.configure(host=line.strip())
    alive = runtime.run(use_cases.is_alive)
    state = "reachable" if alive else "not reachable (`%ollama start` or `ollama serve`)"
    return Notice(f"Ollama host: {runtime.settings.host} ({state}).", "note")


def _config_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _show(value: object) -> str:
    return (
        json.dumps(value) if isinstance(value, dict | list | bool) or value is None else str(value)
    )


@subcommand("config", "show settings, or set them: %ollama config key=value ...")
def config(line: str, shell: Any, runtime: Runtime) -> object:
    state = state_of(shell)
    changes: dict[str, Any] = {}
    for pair in line.split():
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"Expected key=value, got {pair!r}.")
        if key in state.PREFERENCES:
            state.set_preference(key, _config_value(value))
        else:
            changes[key] = _config_value(value)
    if changes:
        runtime.configure(**changes)
    settings = runtime.settings
    rows = [(k, _show(getattr(settings, k))) for k in Settings.model_fields]
    rows += [(k, _show(v)) for k, v in state.preferences().items()]
    return Table(("setting", "value"), tuple(rows), title="ollama_nb settings")


# --- history / reset --------------------------------------------------------------


@magic_arguments()
@argument("-n", type=int, default=10, help="how many recent turns")
@argument("-c", "--conversation", default="default", help="which thread")
def _history_args() -> None:
    """%ollama history [-n N] [-c NAME]"""


@subcommand("history", "recent turns of a conversation: history [-n N] [-c NAME]")
def history(line: str, shell: Any, runtime: Runtime) -> object:
    args = parse_argstring(_history_args, line)
    store = state_of(shell).conversations
    conversation = store.find(args.conversation)
    others = ", ".join(n for n in store.names() if n != args.conversation)
    footer = f"Other threads: {others}." if others else ""
    if conversation is None or not conversation.turns:
        return Table(
            ("", ""),
            (),
            title=f"Conversation {args.conversation!r}",
            empty="No turns yet.",
            footer=footer,
        )
    turns = conversation.turns[-args.n :] if args.n > 0 else conversation.turns
    rows = tuple(
        (
            str(len(conversation.turns) - len(turns) + i + 1),
            _clip(t.user.content),
            _clip(t.reply.text) + (" (interrupted)" if t.reply.interrupted else ""),
            t.reply.model,
        )
        for i, t in enumerate(turns)
    )
    return Table(
        ("#", "you", "model said", "model"),
        rows,
        title=f"Conversation {conversation.name!r}: {len(conversation.turns)} turns, ~{conversation.tokens:,} tokens",
        footer=footer,
    )


def _clip(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@subcommand("reset", "forget a conversation: reset [NAME|--all]")
def reset(line: str, shell: Any, runtime: Runtime) -> object:
    store = state_of(shell).conversations
    words = line.split()
    if words == ["--all"]:
        return Notice(f"Forgot {store.reset_all()} conversation(s).", "note")
    if len(words) > 1:
        raise UsageError("Usage: %ollama reset [NAME|--all]")
    name = words[0] if words else "default"
    if store.reset(name):
        return Notice(f"Forgot conversation {name!r}.", "note")
    show_note(f"No conversation named {name!r}; nothing to forget.")
    return None


# --- help -----------------------------------------------------------------------


@subcommand("help", "this cheat sheet")
def help_(line: str, shell: Any, runtime: Runtime) -> object:
    rows = [(f"%ollama {c.name}", c.summary) for c in all_subcommands()]
    rows += [
        (
            "%%chat [MODEL]",
            "ask; the cell is the prompt (-s system, -t temp, -o opts, -c thread, --new)",
        ),
        ("%chat QUESTION", "one-liner; -m MODEL before the question"),
        ("  -f markdown|text|json|code", "render; code goes to a new cell below"),
        ("  --schema EXPR / --think", "validate into a pydantic model / show thinking"),
        ("  --image NAME|PATH / --out VAR", "attach an image (variable or file) / store the reply"),
        ("  {x} {In[3]} {Out[3]} {traceback}", "references in the prompt; {{ for a brace"),
    ]
    return Table(("command", "what it does"), tuple(rows), title="ollama_nb cheat sheet")
