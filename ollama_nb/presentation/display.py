# mypy: disable-error-code="no-untyped-call,untyped-decorator"
# (IPython's display, magic and magic_arguments APIs carry no type hints.)
"""How ollama_nb looks in a notebook: tables, one-line notices, streamed answers.

Everything here renders to HTML or Markdown for Jupyter and keeps a plain-text
form for terminals and logs. A streamed answer lives in one display handle that
is updated in place; updates are throttled because each one re-sends and
re-renders the whole answer (see ``STREAM_INTERVAL_S``).
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from IPython.display import DisplayHandle, display

from ..domain import ChatResult
from .replies import json_html, note_html, one_line, reply_bundle, reply_html, text_html

#: Seconds between in-place updates of a streamed answer. Each update re-sends
#: the whole Markdown and the front end re-renders it, so the cost of an answer
#: grows with (updates x length). 8 updates/s still reads as live typing; measured
#: by bench/stream_throttle.py for 600 tokens at 200 tok/s: 30 updates and 42 KB
#: re-sent instead of 603 updates and 850 KB unthrottled.
STREAM_INTERVAL_S = 0.125
CURSOR = "▌"
#: An update waits at least this many times as long as the last render took.
RENDER_SHARE = 4


# --- small pieces -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notice:
    """One line: an error (red), a warning (amber) or a quiet note (grey)."""

    text: str
    level: str = "note"  # "error" | "warning" | "note"

    _COLOURS = {"error": "#c62828", "warning": "#8a6d00", "note": "#666"}  # noqa: RUF012
    _PREFIX = {"error": "✖ ", "warning": "⚠ ", "note": ""}  # noqa: RUF012

    def _repr_html_(self) -> str:
        colour = self._COLOURS.get(self.level, "#666")
        size = "0.85em" if self.level == "note" else "1em"
        return (
            f'<div style="color:{colour};font-size:{size}">'
            f"{self._PREFIX.get(self.level, '')}{self._shown()}</div>"
        )

    def _shown(self) -> str:
        # A notice often quotes a server or a model: no control codes, bounded, escaped.
        lines = one_line(self.text, 2_000, keep_newlines=True)
        return html.escape(lines).replace("\n", "<br>")

    def __repr__(self) -> str:
        return f"{self._PREFIX.get(self.level, '')}{one_line(self.text, 2_000, keep_newlines=True)}"

    def bundle(self) -> dict[str, str]:
        return {"text/html": self._repr_html_(), "text/plain": repr(self)}

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


def show_error(error: BaseException) -> None:
    display(Notice(str(error), "error"))


def show_warning(text: str) -> None:
    display(Notice(text, "warning"))


def show_note(text: str) -> None:
    display(Notice(text, "note"))


@dataclass(frozen=True, slots=True)
class Table:
    """A titled table: HTML in Jupyter, aligned columns in a terminal."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str = ""
    empty: str = "(none)"
    footer: str = ""

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in self.columns)
        thead = f"<thead><tr>{head}</tr></thead>" if any(self.columns) else ""
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left'>{cell}</td>" for cell in row) + "</tr>"
            for row in (tuple(html.escape(c) for c in r) for r in self.rows)
        )
        parts = [f"<b>{html.escape(self.title)}</b>"] if self.title else []
        if self.rows:
            parts.append(f"<table>{thead}<tbody>{body}</tbody></table>")
        else:
            parts.append(f"<div style='color:#666'>{html.escape(self.empty)}</div>")
        if self.footer:
            parts.append(
                f"<div style='color:#666;font-size:0.85em'>{html.escape(self.footer)}</div>"
            )
        return "\n".join(parts)

    def __repr__(self) -> str:
        lines = [self.title] if self.title else []
        if not self.rows:
            lines.append(self.empty)
        else:
            widths = [
                max(len(c), *(len(r[i]) for r in self.rows)) for i, c in enumerate(self.columns)
            ]
            if any(self.columns):
                header = "  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True))
                lines.append(header.rstrip())
            lines.extend(
                "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                for r in self.rows
            )
        if self.footer:
            lines.append(self.footer)
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


@dataclass(frozen=True, slots=True)
class Sections:
    """Several tables or notices shown as one output (``%ollama status``)."""

    parts: tuple[object, ...]

    def _repr_html_(self) -> str:
        out = []
        for part in self.parts:
            render = getattr(part, "_repr_html_", None)
            out.append(render() if callable(render) else f"<pre>{html.escape(str(part))}</pre>")
        return "\n<br>\n".join(out)

    def __repr__(self) -> str:
        return "\n\n".join(repr(p) if not isinstance(p, str) else p for p in self.parts)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


# --- the reply object ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatReply(ChatResult):
    """A ``ChatResult`` from ``%%chat``, with what the notebook made of it.

    The streamed view already shows the answer, so when the cell's value is
    displayed in the same execution nothing is shown twice; shown later (``_``
    in another cell) it renders normally.
    """

    conversation: str = ""
    parsed: Any = None  # the JSON / schema object for -f json and --schema
    validation_error: str | None = None
    code: str | None = None
    shown_in: int | None = None  # execution count whose output already shows it

    def __repr__(self) -> str:
        state = " interrupted" if self.interrupted else ""
        text = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return f"ChatReply(model={self.model!r}, tokens={self.timings.eval_count}{state}, text={text!r})"

    def _ipython_display_(self) -> None:
        from IPython.core.getipython import get_ipython

        shell = get_ipython()
        if shell is not None and self.shown_in == shell.execution_count:
            return
        display(reply_display(self), raw=True)


# --- streaming ------------------------------------------------------------------


def footer_line(result: ChatResult, extra: Sequence[str] = ()) -> str:
    parts = [result.model, result.timings.summary(), *extra]
    if result.interrupted:
        parts.append("interrupted")
    return " · ".join(p for p in parts if p)


@dataclass(slots=True)
class StreamView:
    """One updatable output for an answer being written.

    ``feed`` is cheap to call per token; the handle is updated at most every
    ``interval_s`` seconds. ``finish`` always renders the final state.
    """

    interval_s: float = STREAM_INTERVAL_S
    show_thinking: bool = False
    now: Callable[[], float] = time.monotonic
    updates: int = 0
    _handle: DisplayHandle | None = None
    _last: float = field(default=float("-inf"))
    _text: list[str] = field(default_factory=list)
    _thinking: list[str] = field(default_factory=list)
    _dirty: bool = False
    _cost: float = 0.0  # seconds the last render took

    def start(self) -> None:
        self._handle = display(
            reply_bundle("", placeholder="…waiting for the model…", plain="…"),
            raw=True,
            display_id=True,
        )

    def feed(self, content: str, thinking: str = "") -> None:
        if content:
            self._text.append(content)
        if thinking:
            self._thinking.append(thinking)
        self._dirty = True
        # A long answer costs more to draw inert (bench/bench_reply_render.py): updates
        # slow down so drawing takes at most 1/RENDER_SHARE of the kernel's time.
        if self.now() - self._last >= max(self.interval_s, RENDER_SHARE * self._cost):
            self._push(streaming=True)

    def _push(self, *, streaming: bool) -> None:
        started = self.now()
        text = "".join(self._text)
        thinking = "".join(self._thinking)
        bundle = reply_bundle(
            text + (CURSOR if streaming else ""),
            thinking=thinking if self.show_thinking else "",
            thinking_open=streaming and not text,
            plain=text,
        )
        self._cost = self.now() - started
        self.update(bundle)
        self._last = self.now()
        self._dirty = False

    def update(self, bundle: dict[str, str]) -> None:
        if self._handle is None:
            self.start()
        assert self._handle is not None
        self._handle.update(bundle, raw=True)
        self.updates += 1

    def flush(self) -> None:
        if self._dirty:
            self._push(streaming=True)


def final_bundle(
    result: ChatResult,
    *,
    fmt: str,
    show_thinking: bool,
    parsed: object = None,
    footer: str = "",
) -> dict[str, str]:
    """The last render of an answer, which replaces the streaming one (inert HTML always)."""
    plain = result.text + (f"\n[{footer}]" if footer else "")
    note = note_html(footer) if footer else ""
    if fmt == "text":
        return {"text/html": text_html(result.text) + note, "text/plain": plain}
    if fmt == "json" and parsed is not None:
        return {
            "text/html": json_html(parsed) + note,
            "text/plain": json.dumps(parsed, indent=2, ensure_ascii=False)
            + (f"\n[{footer}]" if footer else ""),
        }
    thinking = result.thinking if show_thinking else ""
    return {
        "text/html": reply_html(result.text, thinking=thinking, footer=footer),
        "text/plain": plain,
    }


def reply_display(result: ChatResult) -> dict[str, str]:
    """How a ``ChatResult`` shows itself in a notebook: the reply, then model and timings."""
    return reply_bundle(
        result.text,
        placeholder="(no text)",
        footer=footer_line(result),
        plain=f"{result.text}\n[{footer_line(result)}]",
    )


def register_formatters(shell: Any) -> None:
    """Draw any ``ChatResult`` a cell returns (``ollama_nb.chat(...)``) through ``reply_display``."""
    shell.display_formatter.mimebundle_formatter.for_type(ChatResult, reply_display)


def unregister_formatters(shell: Any) -> None:
    shell.display_formatter.mimebundle_formatter.pop(ChatResult, None)
