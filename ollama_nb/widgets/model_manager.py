# mypy: disable-error-code="import-untyped"
# mypy: disallow-subclassing-any=False
# (ipywidgets ships no type information; the panels subclass its boxes.)
"""ModelManager: installed and loaded models, and the actions on them, by clicking.

Everything talks to the server through the shared runtime on its background
loop: the table refreshes itself every ``refresh_interval_s`` seconds (a task
on that loop, stopped by ``close()``), a pull streams its per-layer progress
into progress bars and can be cancelled, and no button blocks the kernel.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ipywidgets as widgets

from ..application import use_cases
from ..domain import (
    GenerateRequest,
    KeepAlive,
    ModelInfo,
    ModelName,
    ModelSummary,
    OllamaNbError,
    RunningModel,
)
from ..fitting import fit_report, report_view
from ..presentation.display import human_bytes
from ..runtime import Runtime, get_runtime
from .background import Background
from .banner import Banner

#: Seconds between automatic refreshes: often enough to see a model unload,
#: rarely enough that an idle notebook costs the server nothing noticeable.
REFRESH_INTERVAL_S = 15.0
PROGRESS_INTERVAL_S = 0.1
SORT_KEYS: dict[str, Callable[[ModelRow], Any]] = {
    "name": lambda r: r.name,
    "size": lambda r: r.size_bytes,
    "family": lambda r: (r.family, r.name),
    "parameters": lambda r: (_parameter_count(r.parameters), r.name),
    "quantization": lambda r: (r.quantization, r.name),
}


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One installed model as the table shows it."""

    name: str
    size_bytes: int
    family: str
    parameters: str
    quantization: str
    capabilities: tuple[str, ...]

    @classmethod
    def of(cls, summary: ModelSummary, info: ModelInfo | None) -> ModelRow:
        d = summary.details
        return cls(
            summary.name,
            summary.size_bytes,
            d.family,
            d.parameter_size,
            d.quantization_level,
            info.capabilities if info else (),
        )


def _parameter_count(text: str) -> float:
    """'3.2B' -> 3.2e9, '600M' -> 6e8; unknown sorts first."""
    scale = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
    try:
        return float(text[:-1]) * scale[text[-1].upper()]
    except (KeyError, ValueError, IndexError):
        return 0.0


def _unloads_in(model: RunningModel) -> str:
    expires = model.expires_at
    if expires is None:
        return ""
    if expires.year > 2200:
        return "never"
    now = datetime.now(expires.tzinfo) if expires.tzinfo else datetime.now()
    seconds = (expires - now).total_seconds()
    if seconds <= 0:
        return "now"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _table(columns: tuple[str, ...], rows: list[tuple[str, ...]], empty: str) -> str:
    if not rows:
        return f"<div style='color:#666'>{html.escape(empty)}</div>"
    head = "".join(f"<th style='text-align:left;padding:0 8px'>{c}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td style='text-align:left;padding:0 8px'>{html.escape(v)}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class ModelManager(widgets.VBox):
    """Installed models (sortable), loaded models, and pull/delete/default/warm/unload."""

    def __init__(
        self,
        *,
        runtime: Runtime | None = None,
        refresh_interval_s: float | None = REFRESH_INTERVAL_S,
    ) -> None:
        self.runtime = runtime or get_runtime()
        self.refresh_interval_s = refresh_interval_s
        self._background = Background(self.runtime)
        self.banner = Banner(self._background, on_started=self.refresh)
        self._background.on_error = self.banner.error
        self.rows: list[ModelRow] = []
        self.loaded: list[RunningModel] = []
        self.recommended: list[str] = []
        self.refreshes = 0
        self._pull_future: Any = None
        self._pending_delete: str | None = None
        self._bars: dict[str, widgets.FloatProgress] = {}

        self.sort_by = widgets.Dropdown(
            options=list(SORT_KEYS), value="name", description="Sort by"
        )
        self.descending = widgets.ToggleButton(value=False, description="descending", icon="sort")
        self.sort_by.observe(lambda _: self._render_installed(), names="value")
        self.descending.observe(lambda _: self._render_installed(), names="value")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.installed_table = widgets.HTML()
        self.loaded_table = widgets.HTML()
        self.recommendations = widgets.HBox()

        self.selected = widgets.Dropdown(description="Model", options=[], layout={"width": "auto"})
        self.default_button = widgets.Button(description="Set default", icon="star")
        self.warm_button = widgets.Button(description="Warm", icon="fire", tooltip="Load it now")
        self.unload_button = widgets.Button(description="Unload", icon="eject")
        self.delete_button = widgets.Button(
            description="Delete…", icon="trash", button_style="danger"
        )
        self.default_button.on_click(lambda _: self.set_default())
        self.warm_button.on_click(lambda _: self.warm())
        self.unload_button.on_click(lambda _: self.unload())
        self.delete_button.on_click(lambda _: self.ask_delete())
        self.confirm_text = widgets.HTML()
        self.confirm_button = widgets.Button(description="Delete", button_style="danger")
        self.cancel_delete_button = widgets.Button(description="Keep it")
        self.confirm_button.on_click(lambda _: self.confirm_delete())
        self.cancel_delete_button.on_click(lambda _: self._hide_confirm())
        self.confirm_box = widgets.HBox(
            [self.confirm_text, self.confirm_button, self.cancel_delete_button],
            layout={"display": "none"},
        )

        self.pull_name = widgets.Text(
            placeholder="model to pull, e.g. llama3.2", description="Pull"
        )
        self.pull_button = widgets.Button(
            description="Pull", icon="download", button_style="primary"
        )
        self.cancel_pull_button = widgets.Button(description="Cancel pull", disabled=True)
        self.pull_button.on_click(lambda _: self.pull())
        self.cancel_pull_button.on_click(lambda _: self.cancel_pull())
        self.pull_status = widgets.HTML()
        self.pull_layers = widgets.VBox()
        self.fit_button = widgets.Button(
            description="Will it fit?", icon="calculator", tooltip="Before pulling: memory needed"
        )
        self.fit_button.on_click(lambda _: self.check_fit())
        self.fit_view = widgets.HTML()

        super().__init__(
            [
                self.banner,
                widgets.HTML("<b>Installed models</b>"),
                widgets.HBox([self.sort_by, self.descending, self.refresh_button]),
                self.installed_table,
                self.recommendations,
                widgets.HBox(
                    [
                        self.selected,
                        self.default_button,
                        self.warm_button,
                        self.unload_button,
                        self.delete_button,
                    ]
                ),
                self.confirm_box,
                widgets.HTML("<b>Loaded models</b>"),
                self.loaded_table,
                widgets.HBox(
                    [self.pull_name, self.pull_button, self.cancel_pull_button, self.fit_button]
                ),
                self.pull_status,
                self.pull_layers,
                self.fit_view,
            ]
        )
        self.add_class("ollama-nb-model-manager")
        self._background.submit(self._keep_fresh())

    # --- refreshing ------------------------------------------------------------------

    def refresh(self) -> None:
        self._background.submit(self._refresh())

    async def _keep_fresh(self) -> None:
        """Refresh now and then every interval, until the panel is closed (cancelled)."""
        while True:
            await self._refresh()
            if not self.refresh_interval_s:
                return
            await asyncio.sleep(self.refresh_interval_s)

    async def _refresh(self) -> None:
        ports = self.runtime.ports
        try:
            summaries = await use_cases.list_models(ports)
            infos = await asyncio.gather(
                *(use_cases.show_model(ports, ModelName(s.name)) for s in summaries),
                return_exceptions=True,
            )
            loaded = await use_cases.running_models(ports)
        except OllamaNbError as exc:
            self.banner.error(exc)
            return
        self.rows = [
            ModelRow.of(s, i if isinstance(i, ModelInfo) else None)
            for s, i in zip(summaries, infos, strict=True)
        ]
        self.loaded = loaded
        self.refreshes += 1
        if self.banner.level == "error" and self.banner.start_button.layout.display != "none":
            self.banner.clear()  # the server is back
        self._render_installed()
        self._render_loaded()
        if not self.rows:
            await self._offer_recommended()
        else:
            self.recommendations.children = ()

    def _render_installed(self) -> None:
        rows = sorted(self.rows, key=SORT_KEYS[self.sort_by.value], reverse=self.descending.value)
        self.installed_table.value = _table(
            ("name", "size", "family", "parameters", "quantization", "capabilities"),
            [
                (
                    r.name,
                    human_bytes(r.size_bytes),
                    r.family,
                    r.parameters,
                    r.quantization,
                    ", ".join(r.capabilities),
                )
                for r in rows
            ],
            "No models installed.",
        )
        names = [r.name for r in rows]
        current = self.selected.value
        self.selected.options = names
        self.selected.value = current if current in names else (names[0] if names else None)

    def _render_loaded(self) -> None:
        self.loaded_table.value = _table(
            ("model", "memory", "in GPU", "unloads in"),
            [
                (
                    m.name,
                    human_bytes(m.size_bytes),
                    f"{m.gpu_share:.0%}",
                    _unloads_in(m),
                )
                for m in self.loaded
            ],
            "No model loaded.",
        )

    async def _offer_recommended(self) -> None:
        """No models: offer the tuning profile's recommended ones as one-click pulls."""
        try:
            plan = await self._background.in_thread(self.runtime.server.plan)
        except OllamaNbError as exc:
            self.banner.note(f"No models installed: type a name to pull ({exc}).")
            return
        profile = plan.choice.profile
        if profile is None:
            self.banner.note("No models installed: type a name below and press Pull.")
            return
        self.recommended = list(dict.fromkeys([profile.models.text, profile.models.vision]))
        buttons = []
        for name in self.recommended:
            button = widgets.Button(description=f"Pull {name}", icon="download")
            button.on_click(lambda _, n=name: self.pull(n))
            buttons.append(button)
        self.recommendations.children = (
            widgets.HTML(f"No models installed. Recommended for this machine ({profile.name}):"),
            *buttons,
        )

    # --- actions ---------------------------------------------------------------------------

    def _chosen(self) -> str | None:
        name = self.selected.value
        if not name:
            self.banner.warning("Choose a model first.")
        return name or None

    def set_default(self) -> None:
        name = self._chosen()
        if name:
            self.runtime.configure(default_model=name)
            self.banner.note(f"Default model: {name} (for magics, panels and the Python API).")

    def warm(self) -> None:
        name = self._chosen()
        if name:
            keep = self.runtime.settings.keep_alive
            self._load(name, KeepAlive(keep) if keep is not None else None, "Loaded")

    def unload(self) -> None:
        name = self._chosen()
        if name:
            self._load(name, KeepAlive(0), "Unloaded")

    def _load(self, name: str, keep_alive: KeepAlive | None, done: str) -> None:
        request = GenerateRequest(model=ModelName(name), allow_empty=True, keep_alive=keep_alive)
        self.banner.note(f"{'Loading' if done == 'Loaded' else 'Unloading'} {name}…")

        async def run() -> None:
            try:
                await use_cases.complete(self.runtime.ports, request, stream=False)
            except OllamaNbError as exc:
                self.banner.error(exc)
                return
            self.banner.note(f"{done} {name}.")
            await self._refresh()

        self._background.submit(run())

    def ask_delete(self) -> None:
        """First step of a delete: say what will happen and wait for the confirmation."""
        name = self._chosen()
        if not name:
            return
        warning = ""
        default = self.runtime.settings.default_model
        if default and ModelName(default).matches(name):
            warning = (
                " It is the <b>default model</b>: magics and panels without a model "
                "will ask you to choose another."
            )
        self.confirm_text.value = f"Delete <b>{html.escape(name)}</b> from the server?{warning}"
        self._pending_delete = name
        self.confirm_box.layout.display = ""

    def _hide_confirm(self) -> None:
        self.confirm_box.layout.display = "none"
        self._pending_delete = None

    def confirm_delete(self) -> None:
        name = self._pending_delete
        self._hide_confirm()
        if not name:
            return

        async def run() -> None:
            try:
                await use_cases.delete_model(self.runtime.ports, ModelName(name))
            except OllamaNbError as exc:
                self.banner.error(exc)
                return
            default = self.runtime.settings.default_model
            if default and ModelName(default).matches(name):
                self.runtime.configure(default_model=None)
                self.banner.warning(
                    f"Deleted {name}, which was the default model: choose another with Set default."
                )
            else:
                self.banner.note(f"Deleted {name}.")
            await self._refresh()

        self._background.submit(run())

    # --- pulling ---------------------------------------------------------------------------

    def pull(self, name: str | None = None) -> None:
        """Pull ``name`` (or the text box) with a progress bar per layer; Cancel stops it."""
        text = (name or self.pull_name.value).strip()
        if self._pull_future is not None and not self._pull_future.done():
            self.banner.warning("A pull is already running: wait for it or cancel it.")
            return
        try:
            model = ModelName(text)
        except OllamaNbError as exc:
            self.banner.error(exc)
            return
        self.banner.clear()
        self._bars = {}
        self.pull_layers.children = ()
        self.pull_status.value = f"Pulling {html.escape(model.value)}: starting…"
        self.pull_button.disabled = True
        self.cancel_pull_button.disabled = False
        self._pull_future = self._background.submit(self._pull(model))

    def cancel_pull(self) -> None:
        if self._pull_future is not None:
            self._pull_future.cancel()

    async def _pull(self, model: ModelName) -> None:
        ports = self.runtime.ports
        status = "starting"
        last = float("-inf")
        layers: dict[str, tuple[int, int]] = {}
        try:
            async for step in use_cases.pull(ports, model):
                status = step.status
                if step.digest and step.total:
                    layers[step.digest] = (step.completed or 0, step.total)
                if time.monotonic() - last >= PROGRESS_INTERVAL_S:
                    self._show_progress(model.value, status, layers)
                    last = time.monotonic()
        except asyncio.CancelledError:
            self._show_progress(model.value, "cancelled", layers)
            self.banner.warning(f"Pull of {model.value} cancelled; pulling it again resumes.")
            self._pull_done()
            raise
        except OllamaNbError as exc:
            self._show_progress(model.value, "failed", layers)
            self.banner.error(exc)
            self._pull_done()
            return
        self._show_progress(model.value, status, layers)
        self.banner.note(f"Pulled {model.value}.")
        self._pull_done()
        await self._refresh()

    def _pull_done(self) -> None:
        self.pull_button.disabled = False
        self.cancel_pull_button.disabled = True

    def _show_progress(self, model: str, status: str, layers: dict[str, tuple[int, int]]) -> None:
        self.pull_status.value = f"Pulling {html.escape(model)}: {html.escape(status)}"
        for digest, (completed, total) in layers.items():
            bar = self._bars.get(digest)
            if bar is None:
                short = digest.removeprefix("sha256:")[:12]
                bar = widgets.FloatProgress(min=0.0, max=1.0, description=short)
                self._bars[digest] = bar
                self.pull_layers.children = (*self.pull_layers.children, bar)
            bar.value = min(1.0, completed / total) if total else 0.0
            bar.bar_style = "success" if completed >= total else ""

    # --- will it fit -----------------------------------------------------------------------

    def check_fit(self, name: str | None = None) -> Any:
        """Weights + KV cache + overhead for ``name`` (or the Pull box, else the chosen model)."""
        text = (name or self.pull_name.value or self._chosen() or "").strip()
        if not text:
            self.banner.warning("Type a model name in the Pull box first.")
            return None
        self.fit_view.value = f"Checking whether {html.escape(text)} fits…"

        async def run() -> None:
            try:
                # Blocking parts (hardware detection, the registry) run off the loop.
                report = await asyncio.to_thread(fit_report, self.runtime, text)
            except OllamaNbError as exc:
                self.fit_view.value = ""
                self.banner.error(exc)
                return
            self.fit_view.value = report_view(report)._repr_html_()

        return self._background.submit(run())

    @property
    def progress(self) -> dict[str, float]:
        """Each layer's fraction done, by digest (what the bars show)."""
        return {digest: bar.value for digest, bar in self._bars.items()}

    # --- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the refresh timer and any pull, then close."""
        self._background.close()
        super().close()
