# mypy: disable-error-code="import-untyped"
# mypy: disallow-subclassing-any=False
# (ipywidgets ships no type information; the panels subclass its boxes.)
"""Dashboard: server status, breaker and queue, per-model figures and a live chart.

Event-driven: the dashboard subscribes to the runtime's live feed of request
events (``runtime.recent.subscribe``) and folds each new event into what it
shows; it reads the metrics store once, when opened, to start from recent
history, and never re-queries it. Renders are coalesced (at most one every
``render_interval_s``) so a fast batch does not flood the front end.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import statistics
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from .. import telemetry
from ..application import use_cases
from ..domain import ModelName, OllamaNbError, RequestEvent
from ..runtime import Runtime, get_runtime
from .background import Background
from .banner import Banner

RENDER_INTERVAL_S = 0.5
CHART_POINTS = 60
HISTORY_WINDOW = "24h"
_INFERENCE = ("chat", "generate", "vision")


@dataclass(frozen=True, slots=True)
class Point:
    """The figures of one finished request that the dashboard shows."""

    ts: float
    model: str
    kind: str
    status: str
    latency_s: float | None
    ttft_s: float | None
    decode_tps: float | None
    tokens: int

    @classmethod
    def of(cls, event: RequestEvent) -> Point:
        t = event.timings
        return cls(
            event.started_at,
            _canonical(event.model),
            event.kind,
            event.status,
            t.latency_s,
            t.ttft_s,
            t.decode_tps,
            t.eval_count,
        )


@dataclass(frozen=True, slots=True)
class ModelFigures:
    model: str
    requests: int
    errors: int
    latency_p50_s: float | None
    ttft_p50_s: float | None
    decode_tps_mean: float | None
    tokens_out: int


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def summarize(points: Sequence[Point]) -> list[ModelFigures]:
    """One row per model; timings from successful inference requests only."""
    by_model: dict[str, list[Point]] = {}
    for point in points:
        by_model.setdefault(point.model, []).append(point)
    rows = []
    for model in sorted(by_model):
        group = by_model[model]
        good = [p for p in group if p.status == "ok" and p.kind in _INFERENCE]
        rows.append(
            ModelFigures(
                model,
                len(group),
                sum(1 for p in group if p.status == "error"),
                _median(p.latency_s for p in good),
                _median(p.ttft_s for p in good),
                _mean(p.decode_tps for p in good),
                sum(p.tokens for p in group),
            )
        )
    return rows


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def sparkline(values: Sequence[float], *, label: str, unit: str, colour: str) -> str:
    """A small inline SVG line chart with its last, min and max values."""
    width, height = 260, 48
    if not values:
        return f"<div style='color:#666'>{html.escape(label)}: no data yet</div>"
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    points = " ".join(
        f"{i * step:.1f},{height - 4 - (v - low) / span * (height - 8):.1f}"
        for i, v in enumerate(values)
    )
    caption = (
        f"{html.escape(label)}: last {values[-1]:.2f} {unit} "
        f"(min {low:.2f}, max {high:.2f}, {len(values)} requests)"
    )
    return (
        f"<div><div style='font-size:0.85em;color:#444'>{caption}</div>"
        f"<svg width='{width}' height='{height}' class='ollama-nb-spark'>"
        f"<polyline fill='none' stroke='{colour}' stroke-width='1.5' points='{points}'/></svg></div>"
    )


class Dashboard(widgets.VBox):
    """Status, queue, per-model summary and live charts, updated as requests complete."""

    def __init__(
        self,
        *,
        runtime: Runtime | None = None,
        render_interval_s: float = RENDER_INTERVAL_S,
        history: str | None = HISTORY_WINDOW,
    ) -> None:
        self.runtime = runtime or get_runtime()
        self.render_interval_s = render_interval_s
        self._background = Background(self.runtime)
        self.banner = Banner(self._background, on_started=self.check_server)
        self._background.on_error = self.banner.error
        self._points: deque[Point] = deque(maxlen=5000)
        self._lock = threading.Lock()
        self._render_pending = False
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.events_seen = 0
        self.renders = 0
        self.server_line = "checking…"

        self.status = widgets.HTML()
        self.queue = widgets.HTML()
        self.summary = widgets.HTML()
        self.chart = widgets.HTML()
        self.refresh_button = widgets.Button(description="Check server", icon="refresh")
        self.refresh_button.on_click(lambda _: self.check_server())
        super().__init__(
            [
                self.banner,
                widgets.HBox([self.status, self.refresh_button]),
                self.queue,
                widgets.HTML("<b>Per model</b>"),
                self.summary,
                widgets.HTML("<b>Recent requests</b>"),
                self.chart,
            ]
        )
        self.add_class("ollama-nb-dashboard")
        self._unsubscribe: Callable[[], None] = self.runtime.recent.subscribe(self._on_event)
        self._seed(self.runtime.recent.snapshot())
        self._render()
        if history:
            self._background.submit(self._load_history(history))
        self.check_server()

    # --- data in -----------------------------------------------------------------------

    def _seed(self, events: Iterable[RequestEvent]) -> None:
        with self._lock:
            known = {(p.ts, p.model, p.kind) for p in self._points}
            for event in events:
                point = Point.of(event)
                if (point.ts, point.model, point.kind) not in known:
                    self._points.append(point)

    async def _load_history(self, window: str) -> None:
        """Start from the metrics store's recent rows (once)."""
        runtime = self.runtime
        try:
            frame = await self._background.in_thread(
                lambda: telemetry.metrics(runtime.telemetry, since=window, now=runtime.clock.time())
            )
        except OllamaNbError as exc:
            self.banner.warning(f"Could not read the metrics store: {exc}")
            return
        stored = [
            Point(
                float(row["ts"]),
                str(row["model"]),
                str(row["kind"]),
                str(row["status"]),
                _number(row["latency_s"]),
                _number(row["ttft_s"]),
                _number(row["decode_tps"]),
                int(row["eval_tokens"]),
            )
            for row in frame.to_dict("records")
        ]
        with self._lock:
            known = {(p.ts, p.model, p.kind) for p in self._points}
            fresh = [p for p in stored if (p.ts, p.model, p.kind) not in known]
            merged = sorted([*fresh, *self._points], key=lambda p: p.ts)
            self._points = deque(merged, maxlen=self._points.maxlen)
        self._render()

    def _on_event(self, event: RequestEvent) -> None:
        """Called by the runtime's live feed (on whatever thread recorded the event)."""
        with self._lock:
            if self._closed:
                return
            self._points.append(Point.of(event))
            self.events_seen += 1
            if self._render_pending:
                return
            self._render_pending = True
        if self.render_interval_s <= 0:
            self._render()
            return
        loop = self.runtime.loop.loop
        loop.call_soon_threadsafe(self._schedule_render, loop)

    def _schedule_render(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._closed:
            self._timer = loop.call_later(self.render_interval_s, self._render)

    # --- server -------------------------------------------------------------------------

    def check_server(self) -> None:
        self._background.submit(self._probe())

    async def _probe(self) -> None:
        ports = self.runtime.ports
        try:
            version = await use_cases.server_version(ports)
        except OllamaNbError as exc:
            self.server_line = "not reachable"
            self.banner.error(exc)
        else:
            self.server_line = f"running, version {version}"
            if self.banner.level == "error":
                self.banner.clear()
        self._render()

    # --- rendering ----------------------------------------------------------------------

    def _render(self) -> None:
        with self._lock:
            self._render_pending = False
            self._timer = None
            points = list(self._points)
        settings = self.runtime.settings
        health = use_cases.health(self.runtime.ports)
        breaker = health.breaker
        self.status.value = (
            f"<b>Ollama</b> at <code>{html.escape(settings.host)}</code>: "
            f"{html.escape(self.server_line)} · circuit breaker <b>{html.escape(str(breaker))}</b>"
        )
        gate = health.queue
        self.queue.value = (
            f"<b>Queue</b>: {gate.running} running of {gate.limit} slots "
            f"(vision {gate.vision_limit}), {gate.waiting} waiting, {gate.admitted} admitted, "
            f"longest wait {gate.max_wait_s:.2f} s"
        )
        self.summary.value = self._summary_html(summarize(points))
        recent = [p for p in points if p.status == "ok" and p.kind in _INFERENCE][-CHART_POINTS:]
        self.chart.value = sparkline(
            [p.decode_tps for p in recent if p.decode_tps is not None],
            label="decode speed",
            unit="tok/s",
            colour="#1565c0",
        ) + sparkline(
            [p.latency_s for p in recent if p.latency_s is not None],
            label="latency",
            unit="s",
            colour="#c62828",
        )
        self.renders += 1

    @staticmethod
    def _summary_html(rows: list[ModelFigures]) -> str:
        if not rows:
            return "<div style='color:#666'>No requests yet: they appear here as they finish.</div>"
        head = "".join(
            f"<th style='text-align:left;padding:0 8px'>{c}</th>"
            for c in (
                "model",
                "requests",
                "errors",
                "latency p50",
                "TTFT p50",
                "decode tok/s",
                "tokens out",
            )
        )
        body = "".join(
            "<tr>"
            + "".join(
                f"<td style='padding:0 8px'>{html.escape(v)}</td>"
                for v in (
                    r.model,
                    str(r.requests),
                    str(r.errors),
                    _fmt(r.latency_p50_s, "{:.2f} s"),
                    _fmt(r.ttft_p50_s, "{:.2f} s"),
                    _fmt(r.decode_tps_mean, "{:.1f}"),
                    f"{r.tokens_out:,}",
                )
            )
            + "</tr>"
            for r in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    @property
    def figures(self) -> list[ModelFigures]:
        with self._lock:
            return summarize(list(self._points))

    # --- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Unsubscribe from the live feed, cancel the pending render and probes, then close."""
        with self._lock:
            self._closed = True
            timer = self._timer
        self._unsubscribe()
        if timer is not None:
            # RuntimeError: the loop is already shutting down, so nothing will fire.
            with contextlib.suppress(RuntimeError):
                self.runtime.loop.loop.call_soon_threadsafe(timer.cancel)
        self._background.close()
        super().close()


def _canonical(model: str) -> str:
    """``llama3.2`` and ``llama3.2:latest`` are one model (as the metrics store counts them)."""
    try:
        return ModelName(model).canonical
    except OllamaNbError:
        return model


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number  # NaN means "not measured"
