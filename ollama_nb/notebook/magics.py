# mypy: disable-error-code="no-untyped-call,untyped-decorator"
# (IPython's display, magic and magic_arguments APIs carry no type hints.)
"""``%ollama`` and ``%%chat``: the magics.

The magics only parse, call the shared runtime and render. Requests run on the
runtime's background loop (never the kernel's), so a streamed answer, a widget
and ``await ollama_nb.achat(...)`` in another cell share one client. Ctrl-C
cancels the request on that loop and the partial answer stays on screen.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .. import vision
from ..application.context_guard import ContextCheck, needs_check, server_context_length
from ..application.conversations import (
    DEFAULT_CONVERSATION,
    ConversationStore,
    shell_conversations,
)
from ..application.reply_schema import ReplySchema, ReplyValidationError
from ..application.reply_stream import ReplyStream
from ..application.tool_loop import ToolLoop
from ..application.tools import ToolOutcome, ToolSet
from ..domain import (
    ChatChunk,
    ChatMessage,
    ChatResult,
    InvalidInputError,
    OllamaNbError,
)
from ..image_reference import resolve_image
from ..presentation.display import (
    STREAM_INTERVAL_S,
    ChatReply,
    StreamView,
    final_bundle,
    footer_line,
    show_note,
    show_warning,
)
from ..presentation.replies import reply_bundle
from ..request_builder import RequestBuilder
from ..runtime import Runtime
from . import commands
from .interpolation import DEFAULT_MAX_CHARS, interpolate

FORMATS = ("markdown", "text", "json", "code")
_FENCE = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)


@dataclass(slots=True)
class NotebookState:
    """What the magics keep per shell: conversations, preferences, the running cell."""

    conversations: ConversationStore = field(default_factory=ConversationStore)
    stream_interval_s: float = STREAM_INTERVAL_S
    interpolation_max_chars: int = DEFAULT_MAX_CHARS
    cell_id: str | None = None
    raw_cell: str = ""
    chats_in_cell: int = 0

    def before_cell(self, info: Any) -> None:
        """``pre_run_cell`` hook: remember which cell runs, to key its conversation turns."""
        self.cell_id = getattr(info, "cell_id", None)
        self.raw_cell = getattr(info, "raw_cell", "") or ""
        self.chats_in_cell = 0

    def next_turn_key(self) -> str:
        """The cell id (or, without one, the cell's text) plus which chat in the cell this is."""
        base = self.cell_id or hashlib.sha256(self.raw_cell.encode()).hexdigest()[:16]
        self.chats_in_cell += 1
        return f"{base}#{self.chats_in_cell}"

    #: Preferences ``%ollama config`` can change besides the runtime settings.
    PREFERENCES = ("chat_token_budget", "stream_interval_s", "interpolation_max_chars")

    def preferences(self) -> dict[str, object]:
        return {
            "chat_token_budget": self.conversations.budget_tokens,
            "stream_interval_s": self.stream_interval_s,
            "interpolation_max_chars": self.interpolation_max_chars,
        }

    def set_preference(self, key: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise UsageError(f"{key} must be a positive number, got {value!r}.")
        if key == "chat_token_budget":
            self.conversations.budget_tokens = int(value)
        elif key == "stream_interval_s":
            self.stream_interval_s = float(value)
        else:
            self.interpolation_max_chars = int(value)


def state_of(shell: Any) -> NotebookState:
    magics = shell.magics_manager.registry.get("OllamaMagics")
    if magics is None:
        raise UsageError("ollama_nb is not loaded: run `%load_ext ollama_nb` first.")
    state: NotebookState = magics.state
    return state


def parse_options(values: Sequence[str]) -> dict[str, Any]:
    """``-o`` values: a JSON object, or ``key=value`` pairs (values read as JSON when they parse)."""
    merged: dict[str, Any] = {}
    for raw in values:
        text = raw.strip()
        if text.startswith("{"):
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError as exc:
                raise UsageError(f"-o: invalid JSON ({exc.msg} at column {exc.colno}).") from None
            if not isinstance(loaded, dict):
                raise UsageError('-o: the JSON must be an object like {"num_ctx": 4096}.')
            merged.update(loaded)
            continue
        for pair in re.split(r"[\s,]+", text):
            if not pair:
                continue
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise UsageError(f"-o: expected key=value or a JSON object, got {pair!r}.")
            try:
                merged[key] = json.loads(value)
            except json.JSONDecodeError:
                merged[key] = value
    return merged


def parse_arguments(magic: Any, argstring: str) -> Any:
    """Like IPython's ``parse_argstring`` but with shell quoting: ``-s 'be brief'`` gives ``be brief``."""
    try:
        argv = shlex.split(argstring)
    except ValueError as exc:
        raise UsageError(f"Could not read the options: {exc}.") from None
    return magic.parser.parse_args(argv)


def split_line(line: str, takes_value: dict[str, bool]) -> tuple[str, str]:
    """``%chat -m x -t 0 what's up?`` -> (``-m x -t 0``, ``what's up?``): options lead, the rest is prose."""
    token = re.compile(r"\s*(\"[^\"]*\"|'[^']*'|\S+)")
    position = 0
    while True:
        match = token.match(line, position)
        if match is None:
            break
        word = match.group(1)
        name = word.split("=", 1)[0]
        if not word.startswith("-") or name not in takes_value:
            break
        position = match.end()
        if takes_value[name] and "=" not in word:
            value = token.match(line, position)
            if value is None:
                break
            position = value.end()
    return line[:position], line[position:].strip()


def extract_code(text: str) -> str:
    blocks = _FENCE.findall(text)
    return "\n\n".join(b.rstrip() for b in blocks) if blocks else text.strip()


@magics_class
class OllamaMagics(Magics):
    shell: Any

    def __init__(self, shell: Any, runtime: Runtime) -> None:
        super().__init__(shell)
        self.runtime = runtime
        # The chat panel reaches the same store through the shell, without importing us.
        self.state = NotebookState(conversations=shell_conversations(shell))

    # --- %ollama ---------------------------------------------------------------

    @magic_arguments()
    @argument("subcommand", nargs="?", default="help", help="status, models, ps, show, pull, ...")
    @argument("args", nargs="*", help="arguments of the subcommand")
    @line_magic
    def ollama(self, line: str) -> object:
        """Manage the Ollama server and this kernel's settings.

        Subcommands: status, models (list), ps, show NAME, pull NAME, rm NAME,
        use NAME, host [URL], config [key=value ...], history [-n N] [-c NAME],
        reset [NAME|--all], help, start/stop/restart/tune, metrics/perf,
        panel, backend. `%ollama help` prints a cheat sheet.
        """
        name, _, rest = line.strip().partition(" ")
        name = name or "help"
        command = commands.lookup(name)
        if command is None:
            known = ", ".join(c.name for c in commands.all_subcommands())
            raise UsageError(f"Unknown subcommand {name!r}. Known: {known}.")
        try:
            return command.handler(rest.strip(), self.shell, self.runtime)
        except OllamaNbError as error:
            raise cell_failure(error) from None

    # --- %%chat ----------------------------------------------------------------

    @magic_arguments()
    @argument(
        "model",
        nargs="?",
        help="model to ask (cell magic); default: the thread's, else %%ollama use",
    )
    @argument("-m", "--model", dest="model_option", help="model to ask")
    @argument("-s", "--system", help="system prompt (kept for the rest of the conversation)")
    @argument("-t", "--temperature", type=float, help="sampling temperature")
    @argument(
        "-o",
        "--options",
        action="append",
        default=[],
        help="Ollama options: JSON or key=value pairs",
    )
    @argument("-c", "--conversation", default=DEFAULT_CONVERSATION, help="named thread")
    @argument("--new", action="store_true", help="start the thread afresh")
    @argument(
        "--image", action="append", default=[], help="expression giving an image (repeatable)"
    )
    @argument(
        "-f", "--format", default="markdown", choices=FORMATS, help="how to render the answer"
    )
    @argument("--schema", help="expression: a pydantic model class or a JSON schema dict")
    @argument("--think", action="store_true", help="ask the model to think; show it folded")
    @argument("--no-stream", action="store_true", help="wait for the whole answer")
    @argument("--out", help="store the reply object in this variable")
    @argument(
        "--tools",
        help="comma-separated notebook functions the model may call, e.g. add,search_df",
    )
    @argument(
        "--max-rounds",
        type=int,
        default=None,
        help="most tool rounds before answering (default: the tool_max_rounds setting, 5)",
    )
    @line_cell_magic
    def chat(self, line: str, cell: str | None = None) -> ChatReply | None:
        """Ask a model; the cell body (or the rest of the line) is the prompt.

        `{name}`, `{In[3]}`, `{Out[3]}` and `{traceback}` in the prompt are replaced
        from the notebook; `{{` and `}}` are literal braces. Each conversation keeps
        its history within a token budget (`%ollama config chat_token_budget=N`);
        re-running a cell replaces its earlier turn.
        """
        if cell is None:
            options_text, prompt = split_line(line, self._option_arity())
            if prompt.startswith("-- "):
                prompt = prompt[3:]
            elif re.match(r"--?[A-Za-z][\w-]*(\s|=|$)", prompt):
                flag = re.split(r"[\s=]", prompt, maxsplit=1)[0]
                raise UsageError(
                    f"Unknown option {flag} (see %chat?); put `-- ` before a question that starts with a dash."
                )
            args = parse_arguments(self.chat, options_text)
        else:
            args = parse_arguments(self.chat, line)
            prompt = cell
        prompt = prompt.strip()
        if not prompt:
            raise UsageError(
                "The prompt is empty: write the question in the cell body (or after `%chat`)."
            )
        try:
            return self._chat(args, prompt)
        except OllamaNbError as error:
            raise cell_failure(error) from None

    def _option_arity(self) -> dict[str, bool]:
        parser = self.chat.parser
        return {
            option: action.nargs != 0
            for action in parser._actions
            for option in action.option_strings
        }

    def _chat(self, args: Any, prompt: str) -> ChatReply | None:
        runtime = self.runtime
        state = self.state
        namespace = self.shell.user_ns
        filled = interpolate(
            prompt,
            namespace,
            max_chars=state.interpolation_max_chars,
            is_image=vision.is_image_source,
        )
        for warning in filled.warnings:
            show_warning(warning)
        sources = [
            resolve_image(text, self.shell.ev, label="--image") for text in args.image
        ] + filled.images
        images, thumbnails, saved = _prepare_images(sources, runtime)
        schema = self._schema(args)
        options = parse_options(args.options)
        if args.temperature is not None:
            options["temperature"] = args.temperature

        conversation = state.conversations.get(args.conversation)
        if args.new:
            conversation.clear()
        if args.system is not None:
            conversation.system = args.system
        key = state.next_turn_key()
        user = ChatMessage("user", filled.text, images=tuple(images))
        prepared = conversation.prepare(key, user, budget_tokens=state.conversations.budget_tokens)
        if prepared.dropped_turns:
            show_note(
                f"{prepared.dropped_turns} earlier turn(s) of {conversation.name!r} left out to fit "
                f"the {state.conversations.budget_tokens:,}-token budget."
            )
        tools = self._tools(args.tools, args.max_rounds)
        model = args.model_option or args.model or conversation.model
        request = RequestBuilder.from_user(
            runtime.settings,
            model=model,
            options=options,
            format=schema,
            think=True if args.think else None,
            discover=runtime.choose_model,
        ).chat(list(prepared.messages))
        if thumbnails:
            from IPython.display import display

            display({"text/html": thumbnails, "text/plain": f"[{len(images)} image(s)]"}, raw=True)
        stream = ReplyStream(
            request,
            tools=tools,
            stream=not args.no_stream,
            image_bytes_saved=saved,
            check_context=True,  # in the same loop-thread trip as the answer
            server_context=server_context_length(),
        )
        view = StreamView(interval_s=state.stream_interval_s, show_thinking=args.think)

        def warn_first(check: ContextCheck) -> None:
            if check.may_not_fit:
                show_warning(check.warning())
            view.start()  # under the warning, as the answer will be

        if not needs_check(request):
            view.start()
        result, failure = _stream(runtime, stream, view, warn_first)
        check = stream.check
        if result is None:
            assert failure is not None
            view.update(reply_bundle(""))
            raise failure
        count = result.timings.prompt_eval_count
        if check is not None and not result.interrupted and check.truncated(count):
            result = replace(result, truncated=True)
            show_warning(check.truncation_note(count))
        conversation.record(key, user, result)
        reply = self._finish(args, result, schema, view)
        if failure is None and result.error:
            show_warning(result.error)  # e.g. tool rounds used up: the answer is still there
        if args.out:
            namespace[args.out] = reply
        if failure is not None:
            # The cell fails so Run All stops here; what arrived stays on screen, in
            # ``--out`` and in ``_`` (as if the cell had returned it).
            self.shell.displayhook.update_user_ns(reply)
            raise failure
        return reply

    def _schema(self, args: Any) -> ReplySchema | None:
        """``--schema`` (evaluated in the user's namespace), else ``-f json`` for any JSON."""
        if not args.schema:
            return ReplySchema.from_user("json") if args.format == "json" else None
        value = self._evaluate("--schema", args.schema)
        try:
            return ReplySchema.from_user(value, label=f"--schema {args.schema}")
        except InvalidInputError as exc:
            raise UsageError(str(exc)) from None

    def _finish(
        self, args: Any, result: ChatResult, schema: ReplySchema | None, view: StreamView
    ) -> ChatReply:
        parsed: Any = None
        problem: str | None = None
        if schema is not None and not result.interrupted:
            try:
                parsed = schema.parse(result.text)
            except ReplyValidationError as exc:
                parsed, problem = exc.value, f"{exc.message}. Raw text kept in .text."
        code = extract_code(result.text) if args.format == "code" else None
        extra = (
            [] if args.conversation == DEFAULT_CONVERSATION else [f"thread {args.conversation!r}"]
        )
        if result.truncated:
            extra.append("prompt truncated")
        shown_parsed = parsed
        if parsed is not None and hasattr(parsed, "model_dump"):
            shown_parsed = parsed.model_dump(mode="json")
        view.update(
            final_bundle(
                result,
                fmt=args.format,
                show_thinking=args.think,
                parsed=shown_parsed,
                footer=footer_line(result, extra),
            )
        )
        if problem:
            show_warning(problem)
        if code is not None and not result.interrupted:
            self.shell.set_next_input(code, replace=False)
        values = {f.name: getattr(result, f.name) for f in fields(ChatResult)}
        return ChatReply(
            **values,
            conversation=args.conversation,
            parsed=parsed,
            validation_error=problem,
            code=code,
            shown_in=self.shell.execution_count,
        )

    def _tools(self, names: str | None, max_rounds: int | None) -> ToolLoop | None:
        """The named notebook functions, checked before anything is sent."""
        if not names:
            return None
        if max_rounds is not None and max_rounds < 1:
            raise UsageError(f"--max-rounds must be at least 1, got {max_rounds}.")
        functions = []
        for name in (n.strip() for n in names.split(",")):
            if not name:
                continue
            value = self.shell.user_ns.get(name)
            if value is None:
                raise UsageError(f"--tools: no function named {name!r} in the notebook.")
            if not callable(value):
                raise UsageError(f"--tools: {name} is a {type(value).__name__}, not a function.")
            functions.append(value)
        return self.runtime.tool_loop(ToolSet.from_functions(functions), max_rounds)

    def _evaluate(self, flag: str, expression: str) -> object:
        """``--schema``: always an expression (a class or a dict), never a file."""
        try:
            return self.shell.ev(expression)
        except Exception as exc:
            raise UsageError(f"{flag} {expression}: {type(exc).__name__}: {exc}") from None


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during ``%%chat``: the cell stops (and Run All with it) in one line."""

    def _render_traceback_(self) -> list[str]:
        return ["KeyboardInterrupt: stopped; the partial answer is kept in `_` (and --out)."]


def cell_failure(error: OllamaNbError) -> OllamaNbError:
    """``error``, marked to show as one line: the cell fails without a traceback wall."""
    error.one_line = True
    return error


def _prepare_images(sources: Sequence[object], runtime: Runtime) -> tuple[list[str], str, int]:
    """Base64 images, thumbnails HTML and bytes saved by the runtime's image pipeline."""
    if not sources:
        return [], "", 0
    prepared = runtime.images.prepare(sources)
    return (
        [image.to_base64() for image in prepared],
        vision.thumbnails_html(prepared),
        sum(image.bytes_saved for image in prepared),
    )


def _stream(
    runtime: Runtime,
    reply: ReplyStream,
    view: StreamView,
    on_check: Callable[[ContextCheck], None],
) -> tuple[ChatResult | None, BaseException | None]:
    """Drain ``reply`` in one loop-thread trip, drawing into ``view``; returns (result, error).

    Ctrl-C keeps the partial answer; each tool call the model makes is shown as
    one line under the answer.
    """

    def feed(chunk: ChatChunk) -> None:
        view.feed(chunk.content, chunk.thinking)

    try:
        items = runtime.iterate(reply.items)
        try:
            drawn = reply.follow(
                items,
                on_chunk=feed if reply.stream else None,
                on_tool=_show_outcome,
                on_check=on_check,
            )
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
    except KeyboardInterrupt:
        return reply.partial(), Interrupted()
    except OllamaNbError as error:
        return reply.kept(error), error
    return drawn, None


def _show_outcome(outcome: ToolOutcome) -> None:
    """One line per call under the answer; a failing or refused call stands out."""
    if outcome.status == "ok":
        show_note(outcome.line())
    else:
        show_warning(outcome.line())
