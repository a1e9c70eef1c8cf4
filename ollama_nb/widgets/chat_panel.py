# mypy: disable-error-code="import-untyped"
# mypy: disallow-subclassing-any=False
# (ipywidgets ships no type information; the panels subclass its boxes.)
"""ChatPanel: chatting by clicking, with the same threads, settings and client as ``%%chat``.

The panel is a view over the kernel's conversation store (the one the magics
keep), so a thread started with ``%%chat -c notes`` continues here and the
other way round. A reply streams on the runtime's background loop into the
transcript (an ``Output`` whose Markdown the front end renders); the kernel is
never blocked. Stop cancels the task and keeps what arrived, like Ctrl-C.
"""

from __future__ import annotations

import asyncio
import html
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from ..application import use_cases
from ..application.conversations import (
    DEFAULT_CONVERSATION,
    Conversation,
    ConversationStore,
    shell_conversations,
)
from ..application.replies import ReplyAccumulator
from ..application.reply_stream import ReplyStream
from ..application.tools import ToolOutcome, ToolSet
from ..domain import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ChatResult,
    InvalidInputError,
    ModelInfo,
    ModelName,
    OllamaNbError,
)
from ..image_reference import resolve_image
from ..presentation.display import CURSOR, STREAM_INTERVAL_S, footer_line
from ..presentation.replies import reply_bundle
from ..request_builder import RequestBuilder
from ..runtime import Runtime, get_runtime
from ..vision import is_image_source
from .background import Background
from .banner import Banner
from .prompt_box import prompt_box

VISION_MARK = "  [vision]"
#: Ollama's own defaults, shown when the settings do not choose a value.
OLLAMA_TEMPERATURE = 0.8
OLLAMA_TOP_P = 0.9


def shared_store(shell: Any) -> ConversationStore:
    """The conversation store of ``%%chat`` in this kernel (loading the extension if needed)."""
    if shell is None:
        return ConversationStore()
    if "OllamaMagics" not in shell.magics_manager.registry:
        # As `%load_ext ollama_nb` would, so %%chat works beside the panel.
        shell.extension_manager.load_extension("ollama_nb")
    return shell_conversations(shell)


def _current_shell() -> Any:
    from IPython.core.getipython import get_ipython

    # IPython 9 types get_ipython and IPython 8 does not: a typed alias suits both.
    current: Callable[[], Any] = get_ipython
    return current()


def _entry(text: str, **parts: Any) -> dict[str, Any]:
    """One transcript output; text (a reply or the user's own) is drawn inert by presentation."""
    return {"output_type": "display_data", "data": reply_bundle(text, **parts), "metadata": {}}


class ChatPanel(widgets.VBox):
    """Model, options, thread, transcript, input with images, Send and Stop.

    ``runtime``, ``shell`` and ``store`` default to the process runtime, the
    running IPython shell and its ``%%chat`` conversations.
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        conversation: str = DEFAULT_CONVERSATION,
        runtime: Runtime | None = None,
        shell: Any = None,
        store: ConversationStore | None = None,
        stream_interval_s: float = STREAM_INTERVAL_S,
        tools: Sequence[Callable[..., Any]] | None = None,
        max_rounds: int | None = None,
    ) -> None:
        self.runtime = runtime or get_runtime()
        self.tools = ToolSet.from_functions(list(tools or ()))
        self.max_rounds = max_rounds
        self._tool_lines: list[str] = []
        self.shell = shell if shell is not None else _current_shell()
        self.store = store if store is not None else shared_store(self.shell)
        self.stream_interval_s = stream_interval_s
        self._background = Background(self.runtime)
        self._wanted_model = model
        self._busy = False
        self._future: Any = None
        self._attachments: list[tuple[str, object]] = []
        self._entries: list[dict[str, Any]] = []
        self._capabilities: dict[str, tuple[str, ...]] = {}

        self.banner = Banner(self._background, on_started=self.refresh_models)
        self._background.on_error = self.banner.error
        self.model = widgets.Dropdown(description="Model", options=[], layout={"width": "auto"})
        self.refresh_button = widgets.Button(icon="refresh", tooltip="Reload the model list")
        self.refresh_button.layout.width = "3em"
        self.refresh_button.on_click(lambda _: self.refresh_models())
        self.conversation = widgets.Combobox(
            value=conversation,
            options=self._thread_names(conversation),
            description="Thread",
            placeholder="name a new thread",
            ensure_option=False,
            continuous_update=False,
        )
        self.conversation.observe(self._thread_changed, names="value")
        options = self.runtime.settings.generation_options
        self.system = widgets.Textarea(
            placeholder="System prompt (kept for this thread)",
            rows=2,
            layout=widgets.Layout(width="100%"),
        )
        self.temperature = widgets.FloatSlider(
            value=options.temperature if options.temperature is not None else OLLAMA_TEMPERATURE,
            min=0.0,
            max=2.0,
            step=0.05,
            description="temperature",
        )
        self.top_p = widgets.FloatSlider(
            value=options.top_p if options.top_p is not None else OLLAMA_TOP_P,
            min=0.0,
            max=1.0,
            step=0.05,
            description="top_p",
        )
        self.num_ctx = widgets.IntText(
            value=options.num_ctx or 0, description="num_ctx", tooltip="0: the model's default"
        )
        self.seed = widgets.IntText(
            value=options.seed or 0, description="seed", tooltip="0: random"
        )
        settings_box = widgets.VBox(
            [self.system, self.temperature, self.top_p, self.num_ctx, self.seed]
        )
        self.options = widgets.Accordion(
            children=[settings_box], titles=("System prompt and options",)
        )
        self.options.selected_index = None

        self.transcript = widgets.Output(
            layout=widgets.Layout(
                border="1px solid #ddd", padding="4px", max_height="420px", overflow="auto"
            )
        )
        self.prompt = prompt_box("Message (Shift+Enter sends)", lambda _: self.send())
        self.send_button = widgets.Button(
            description="Send", icon="paper-plane", button_style="primary"
        )
        self.send_button.on_click(lambda _: self.send())
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.stop_button.on_click(lambda _: self.stop())
        self.status = widgets.HTML()
        self.figures = widgets.HTML()

        self.upload = widgets.FileUpload(
            accept="image/*", multiple=True, description="Upload image"
        )
        self.upload.observe(self._uploaded, names="value")
        self.variable = widgets.Combobox(
            description="Image",
            options=[],
            placeholder="variable, expression or file path",
            ensure_option=False,
            layout={"width": "auto"},
        )
        self.attach_button = widgets.Button(
            description="Attach", tooltip="Attach the image variable, expression or file named"
        )
        self.attach_button.on_click(lambda _: self.attach_variable())
        self.variables_button = widgets.Button(
            icon="refresh", tooltip="Look for image variables again"
        )
        self.variables_button.layout.width = "3em"
        self.variables_button.on_click(lambda _: self.refresh_variables())
        self.attached = widgets.HTML()
        self.clear_button = widgets.Button(description="Remove images", disabled=True)
        self.clear_button.on_click(lambda _: self.clear_attachments())

        super().__init__(
            [
                self.banner,
                widgets.HBox([self.model, self.refresh_button, self.conversation]),
                self.options,
                self.transcript,
                self.figures,
                self.prompt,
                widgets.HBox([self.send_button, self.stop_button, self.status]),
                widgets.HBox(
                    [self.upload, self.variable, self.variables_button, self.attach_button]
                ),
                widgets.HBox([self.attached, self.clear_button]),
            ]
        )
        self.add_class("ollama-nb-chat-panel")
        self._show_thread(self.store.find(conversation))
        self.refresh_variables()
        self.refresh_models()

    # --- state --------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while a reply streams (Send is disabled meanwhile)."""
        return self._busy

    @property
    def transcript_html(self) -> list[str]:
        """The transcript as the front end gets it, one HTML string per entry."""
        return [str(e["data"]["text/html"]) for e in self._entries]

    # --- models ---------------------------------------------------------------------

    def refresh_models(self) -> None:
        """Reload installed models (and their capabilities) without blocking the kernel."""
        self._background.submit(self._load_models())

    async def _load_models(self) -> None:
        ports = self.runtime.ports
        try:
            summaries = await use_cases.list_models(ports)
            infos = await asyncio.gather(
                *(use_cases.show_model(ports, ModelName(s.name)) for s in summaries),
                return_exceptions=True,
            )
        except OllamaNbError as exc:
            self.banner.error(exc)
            return
        capabilities = {
            s.name: (info.capabilities if isinstance(info, ModelInfo) else ())
            for s, info in zip(summaries, infos, strict=True)
        }
        self._capabilities = capabilities
        # Embedding-only models cannot chat; leave them out of the list.
        names = sorted(n for n, caps in capabilities.items() if not caps or "completion" in caps)
        labels = [
            (name + (VISION_MARK if "vision" in capabilities[name] else ""), name) for name in names
        ]
        previous = self.model.value
        self.model.options = labels
        self.model.value = self._preferred(names, previous)
        if not names:
            self.banner.warning(
                "No models installed: pull one with the model manager "
                "(`%ollama panel models`) or `%ollama pull llama3.2`."
            )
        elif self.banner.level == "error":
            self.banner.clear()

    def _preferred(self, names: list[str], previous: str | None) -> str | None:
        thread = self.store.find(self.conversation.value or DEFAULT_CONVERSATION)
        for wanted in (
            self._wanted_model,
            previous,
            thread.model if thread else None,
            self.runtime.settings.default_model,
        ):
            if wanted:
                match = next((n for n in names if ModelName(wanted).matches(n)), None)
                if match is not None:
                    self._wanted_model = None
                    return match
        return names[0] if names else None

    # --- threads ---------------------------------------------------------------------

    def _thread_names(self, current: str) -> list[str]:
        return sorted({DEFAULT_CONVERSATION, current, *self.store.names()})

    def _thread_changed(self, change: Mapping[str, Any]) -> None:
        name = str(change["new"]).strip()
        if not name:
            return
        conversation = self.store.find(name)
        self._show_thread(conversation)
        if conversation is not None and conversation.model:
            names = [value for _, value in self.model.options]
            match = next((n for n in names if ModelName(conversation.model).matches(n)), None)
            if match is not None:
                self.model.value = match  # continue with the model the thread used

    def _show_thread(self, conversation: Conversation | None) -> None:
        """Fill the transcript and system prompt from the thread (as ``%%chat`` left it)."""
        self._entries = []
        self.system.value = conversation.system or "" if conversation else ""
        if conversation is not None:
            for turn in conversation.turns:
                self._entries.append(self._user_entry(turn.user.content, len(turn.user.images)))
                self._entries.append(self._answer_entry(turn.reply, final=True))
        self._publish()

    def _refresh_thread_names(self) -> None:
        self.conversation.options = self._thread_names(self.conversation.value)

    # --- images -----------------------------------------------------------------------

    def refresh_variables(self) -> None:
        """List the notebook variables that hold images (PIL, arrays, figures, paths, bytes)."""
        namespace = getattr(self.shell, "user_ns", None) or {}
        names = sorted(
            name
            for name, value in list(namespace.items())
            if not name.startswith("_") and _safe_is_image(is_image_source, value)
        )
        self.variable.options = tuple(names)

    def attach_variable(self, name: str | None = None) -> None:
        """Attach what the box names, by the rule ``%%chat --image`` follows."""
        chosen = (name or self.variable.value or "").strip()
        if not chosen:
            self.banner.warning("Type an image variable, expression or file path to attach.")
            return
        evaluate = getattr(self.shell, "ev", None)
        try:
            source = resolve_image(chosen, evaluate if callable(evaluate) else self._lookup)
        except InvalidInputError as error:
            self.banner.error(error)
            return
        self._attach(chosen, source)
        self.variable.value = ""

    def _lookup(self, name: str) -> object:
        return (getattr(self.shell, "user_ns", None) or {})[name]

    def _uploaded(self, change: Mapping[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        for item in files:
            name = str(item.get("name", "upload"))
            content = bytes(item.get("content", b""))
            if is_image_source(content):
                self._attach(name, content)
            else:
                self.banner.error(
                    InvalidInputError(
                        f"{name} is not an image, so it was not attached.",
                        hint="Upload a PNG, JPEG, GIF or WebP file.",
                    )
                )
        self.upload.value = ()

    def _attach(self, label: str, source: object) -> None:
        self._attachments.append((label, source))
        self._show_attachments()

    def clear_attachments(self) -> None:
        self._attachments.clear()
        self._show_attachments()

    def _show_attachments(self) -> None:
        labels = ", ".join(html.escape(label) for label, _ in self._attachments)
        self.attached.value = f"📎 {labels}" if labels else ""
        self.clear_button.disabled = not self._attachments

    # --- sending ------------------------------------------------------------------------

    def send(self, text: str | None = None) -> None:
        """Send the input box (or ``text``); while a reply streams, say so and send nothing."""
        if self._busy:
            self.banner.warning("A reply is still streaming: wait for it or press Stop.")
            return
        message = (text if text is not None else self.prompt.value).strip()
        if not message:
            self.banner.warning("Write a message first.")
            return
        # Before the model list has loaded, the model asked for (or the default) is used.
        model = self.model.value or self._wanted_model or self.runtime.settings.default_model
        if not model:
            self.banner.error(
                InvalidInputError(
                    "No model to ask.",
                    hint="Install one (`%ollama panel models`) or reload the list (↻).",
                )
            )
            return
        try:
            images, saved = self._prepared_images(model)
            request, conversation, key, user = self._request(model, message, images)
        except OllamaNbError as exc:
            self.banner.error(exc)
            return
        self.banner.clear()
        self.prompt.value = ""
        labels = [label for label, _ in self._attachments]
        self.clear_attachments()
        self._entries.append(self._user_entry(message, len(images), labels))
        self._entries.append(self._pending_entry(request.model.value))
        self._publish()
        self._set_busy(True)
        self._future = self._background.submit(
            self._stream(request, conversation, key, user, saved)
        )

    def _prepared_images(self, model: str) -> tuple[list[str], int]:
        if not self._attachments:
            return [], 0
        prepared = self.runtime.images.prepare(
            [source for _, source in self._attachments], model=model
        )
        return [image.to_base64() for image in prepared], sum(i.bytes_saved for i in prepared)

    def _request(
        self, model: str, message: str, images: list[str]
    ) -> tuple[ChatRequest, Conversation, str, ChatMessage]:
        name = (self.conversation.value or "").strip() or DEFAULT_CONVERSATION
        conversation = self.store.get(name)
        conversation.system = self.system.value.strip() or None
        user = ChatMessage("user", message, images=tuple(images))
        key = f"panel:{uuid.uuid4().hex[:12]}"
        prepared = conversation.prepare(key, user, budget_tokens=self.store.budget_tokens)
        if prepared.dropped_turns:
            self.figures.value = (
                f"<span style='color:#666'>{prepared.dropped_turns} earlier turn(s) left out "
                f"to fit the {self.store.budget_tokens:,}-token budget.</span>"
            )
        request = RequestBuilder.from_user(
            self.runtime.settings,
            model=model,
            options=self._options(),
            discover=self.runtime.choose_model,
        ).chat(list(prepared.messages))
        return request, conversation, key, user

    def _options(self) -> dict[str, Any]:
        chosen: dict[str, Any] = {
            "temperature": round(float(self.temperature.value), 4),
            "top_p": round(float(self.top_p.value), 4),
        }
        if self.num_ctx.value > 0:
            chosen["num_ctx"] = int(self.num_ctx.value)
        if self.seed.value:
            chosen["seed"] = int(self.seed.value)
        return chosen

    def stop(self) -> None:
        """Cancel the streaming reply; what arrived stays in the transcript and the thread."""
        future = self._future
        if self._busy and future is not None:
            self.status.value = "<i>stopping…</i>"
            future.cancel()

    async def _stream(
        self,
        request: ChatRequest,
        conversation: Conversation,
        key: str,
        user: ChatMessage,
        image_bytes_saved: int,
    ) -> None:
        reply = ReplyStream(
            request,
            tools=self.runtime.tool_loop(self.tools, self.max_rounds) if self.tools else None,
            image_bytes_saved=image_bytes_saved,
        )
        self._tool_lines = []
        result: ChatResult | None = None
        failure: OllamaNbError | None = None
        last = float("-inf")

        def draw_chunk(_: ChatChunk) -> None:
            nonlocal last
            if time.monotonic() - last >= self.stream_interval_s:
                self._show_partial(reply.current)
                last = time.monotonic()

        def draw_tool(outcome: ToolOutcome) -> None:
            self._tool_lines.append(outcome.line())
            self._show_partial(reply.current)

        try:
            result = await reply.result(self.runtime.ports, on_chunk=draw_chunk, on_tool=draw_tool)
        except asyncio.CancelledError:
            self._finish(conversation, key, user, reply.partial(), None)
            raise
        except OllamaNbError as exc:
            failure = exc
            result = reply.kept(exc)
        except Exception as exc:  # a bug must not leave the panel stuck in "busy"
            self._finish(conversation, key, user, None, exc)
            raise
        self._finish(conversation, key, user, result, failure)

    def _show_partial(self, accumulator: ReplyAccumulator) -> None:
        text = accumulator.text
        thinking = accumulator.thinking
        self._entries[-1] = _entry(
            text + CURSOR,
            thinking=thinking,
            thinking_open=not text,
            heading=accumulator.model,
            notes=self._tool_lines,
            plain=text,
        )
        self._publish()

    def _finish(
        self,
        conversation: Conversation,
        key: str,
        user: ChatMessage,
        result: ChatResult | None,
        failure: BaseException | None,
    ) -> None:
        if result is not None and (result.text or result.thinking):
            conversation.record(key, user, result)
            self._entries[-1] = self._answer_entry(result, final=True)
            self.figures.value = f"<span style='color:#555;font-size:0.9em'>{html.escape(footer_line(result))}</span>"
        else:
            why = "stopped before any answer" if failure is None else "no answer"
            self._entries[-1] = _entry("", placeholder=f"({why})", plain=f"({why})")
        self._publish()
        if failure is not None:
            self.banner.error(failure)
        elif result is not None and result.error:
            self.banner.warning(result.error)
        self._refresh_thread_names()
        self._set_busy(False)

    # --- rendering ------------------------------------------------------------------------

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.send_button.disabled = busy
        self.stop_button.disabled = not busy
        self.send_button.description = "Answering…" if busy else "Send"
        self.status.value = "<i>answering… (Stop keeps what arrived)</i>" if busy else ""

    def _user_entry(
        self, text: str, images: int, labels: list[str] | None = None
    ) -> dict[str, Any]:
        attached = ""
        if images:
            names = f": {', '.join(labels)}" if labels else ""
            attached = f"📎 {images} image(s){names}"
        return _entry(text, heading="You", quoted=True, footer=attached, plain=f"You: {text}")

    def _pending_entry(self, model: str) -> dict[str, Any]:
        return _entry("", heading=model, placeholder="…waiting for the model…", plain="…")

    def _answer_entry(self, result: ChatResult, *, final: bool) -> dict[str, Any]:
        return _entry(
            result.text,
            thinking=result.thinking,
            heading=result.model,
            notes=self._tool_lines,
            footer=footer_line(result) if final else "",
            plain=result.text,
        )

    def _publish(self) -> None:
        self.transcript.outputs = tuple(self._entries)

    # --- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Cancel the reply and the model refresh (the partial answer is kept), then close."""
        self._background.close()
        super().close()


def _safe_is_image(check: Any, value: object) -> bool:
    try:
        return bool(check(value))
    except Exception:  # a variable with a broken __getattr__ is simply not an image
        return False
