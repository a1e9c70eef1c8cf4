"""``ollama_nb.batch(df, ...)``: one prompt over every row, returning a new DataFrame.

Everything that can be wrong with the call (unknown columns in the template, a
bad schema, unknown options, a column-name clash, an unusable checkpoint path)
is checked here, before the first request, so a mistake costs a second and not
a thousand failed rows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Literal

from ..application.context_guard import server_context_length
from ..application.reply_schema import ReplyColumns, ReplySchema
from ..domain import InvalidInputError, KeepAlive, Think
from ..domain.checks import whole_number
from ..request_builder import RequestBuilder, UserOptions
from ..runtime import Runtime, get_runtime
from .arguments import keyword_form
from .checkpoint import RowSigner, open_checkpoint
from .driver import Ended, run_awaiting, run_blocking
from .progress import Progress
from .results import META_COLUMNS
from .runner import BatchRun, BatchSpec
from .template import PromptTemplate

if TYPE_CHECKING:
    import pandas as pd

Kind = Literal["chat", "generate"]
Template = str | Callable[[Any], object]
#: Retries per row after its first try, for errors a second try can fix.
DEFAULT_RETRIES = 2
SUMMARY_KEY = "ollama_batch"


@dataclass(frozen=True, kw_only=True, slots=True)
class RowArgs:
    """The keywords of ``df.ollama.chat``/``generate`` (see ``ollama_nb.batch`` for each)."""

    model: str | None = None
    system: str | None = None
    images: Hashable | None = None
    schema: object = None
    options: UserOptions = None
    think: Think | None = None
    keep_alive: str | float | None = None
    concurrency: int | None = None
    retries: int = DEFAULT_RETRIES
    max_errors: int | None = None
    checkpoint: str | None = None
    progress: bool = True
    prefix: str = ""

    def of_kind(self, kind: Kind) -> BatchArgs:
        return BatchArgs(kind=kind, **{f.name: getattr(self, f.name) for f in fields(RowArgs)})


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchArgs(RowArgs):
    """The keywords of ``batch``/``abatch``: the accessor's, and which endpoint to use."""

    kind: Kind = "chat"


@keyword_form(BatchArgs)
def batch(df: pd.DataFrame, template: Template, args: BatchArgs) -> pd.DataFrame:
    """Send ``template`` rendered for every row of ``df``; return ``df`` plus answer columns.

    ``template`` is text with ``{column}`` placeholders (``{{`` for a literal
    brace) or a function ``row -> prompt``. ``images`` names a column of image
    sources (paths, bytes, PIL images, arrays, or lists of them) for a vision
    model. ``schema`` (a pydantic model or a JSON schema of an object) is sent
    as Ollama's ``format``; each reply is validated and its fields become typed
    columns. ``concurrency`` is how many rows are in flight at once; by default
    each server's concurrency controller decides, from what it learns of the
    server's slots (more only queues at the server). ``keep_alive`` defaults to
    the ``batch_keep_alive`` setting so the model stays loaded between rows; the
    server's own default applies again after the batch. ``checkpoint`` is a file that keeps
    finished rows, so the same call after a crash or interrupt only runs the
    rest. Interrupting returns the frame with unfinished rows marked
    ``status == "not run"``.

    Works in a plain cell and in an async cell; ``await abatch(...)`` keeps an
    async cell's event loop free while the rows run.
    """
    return run_batch(df, template, args, get_runtime())


@keyword_form(BatchArgs)
async def abatch(df: pd.DataFrame, template: Template, args: BatchArgs) -> pd.DataFrame:
    """``batch`` for async cells: ``result = await ollama_nb.abatch(df, ...)``."""
    return await arun_batch(df, template, args, get_runtime())


def run_batch(
    df: pd.DataFrame, template: Template, args: BatchArgs, runtime: Runtime
) -> pd.DataFrame:
    """``batch`` with its arguments checked into ``BatchArgs`` (the accessor calls this)."""
    run = BatchRun(df, _spec(df, template, args, runtime))
    ended = run_blocking(runtime.loop, run.run(runtime.ports), _bar(run, args), run.counts)
    return _finish(run, ended, args)


async def arun_batch(
    df: pd.DataFrame, template: Template, args: BatchArgs, runtime: Runtime
) -> pd.DataFrame:
    run = BatchRun(df, _spec(df, template, args, runtime))
    ended = await run_awaiting(runtime.loop, run.run(runtime.ports), _bar(run, args), run.counts)
    return _finish(run, ended, args)


def _bar(run: BatchRun, args: BatchArgs) -> Progress:
    return Progress(
        len(run.frame), enabled=args.progress, description=f"{args.kind} {run.spec.model.value}"
    )


def _finish(run: BatchRun, ended: Ended, args: BatchArgs) -> pd.DataFrame:
    results = run.results
    stopped = "interrupted" if ended.interrupted else run.stopped
    if run.fatal is not None and results.ok + results.cached == 0 and not ended.interrupted:
        raise run.fatal
    if stopped is not None:
        results.mark_unfinished(stopped)
    summary = results.summary(ended.wall_s, stopped)
    frame = results.to_frame(run.frame, args.prefix)
    frame.attrs[SUMMARY_KEY] = summary.as_dict()
    if args.progress:
        print(summary.line())
    return frame


def _spec(df: pd.DataFrame, template: Template, args: BatchArgs, runtime: Runtime) -> BatchSpec:
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(f"batch needs a pandas DataFrame, got {type(df).__name__}.")
    if args.kind not in ("chat", "generate"):
        raise InvalidInputError(f"kind must be 'chat' or 'generate', got {args.kind!r}.")
    columns = list(df.columns)
    if isinstance(template, str):
        parsed = PromptTemplate.parse(template, columns)
        _require_unique(df, parsed.columns)
        prompt: PromptTemplate | Callable[[Any], object] = parsed
    elif callable(template):
        prompt = template
    else:
        raise InvalidInputError(
            f"template must be text with {{column}} placeholders or a function row -> prompt, "
            f"got {type(template).__name__}."
        )
    images = args.images
    if images is not None:
        if images not in df.columns:
            raise InvalidInputError(
                f"images={images!r} is not a column (columns: {', '.join(map(str, columns[:12]))})."
            )
        _require_unique(df, (images,))
    schema = None if args.schema is None else ReplySchema.from_user(args.schema).columns()
    _check_names(df, schema, args.prefix)
    request = RequestBuilder.from_user(
        runtime.settings,
        model=args.model,
        system=args.system,
        options=args.options,
        format=schema.schema if schema is not None else None,
        think=args.think,
        keep_alive=args.keep_alive,
        discover=runtime.choose_model,
    )
    # A batch keeps its model loaded between rows and pauses, unless the user chose;
    # afterwards the server's own default applies again (see BatchRun.run).
    restore_keep_alive = request.keep_alive is None
    if restore_keep_alive:
        request = replace(request, keep_alive=KeepAlive(runtime.settings.batch_keep_alive))
    concurrency = whole_number("concurrency", args.concurrency, 1, optional=True)
    # Without an explicit width, enough workers that the gates' learned limits decide.
    workers = concurrency or runtime.settings.max_concurrency * len(runtime.settings.host_urls)
    retries = whole_number("retries", args.retries, 0)
    max_errors = whole_number("max_errors", args.max_errors, 0, optional=True)
    checkpoint = args.checkpoint
    secret = b""
    if checkpoint is not None:
        secret = runtime.checkpoint_secret()
        # Fail now on a bad path (a file: URI, a symlink), not on the first row.
        open_checkpoint(checkpoint, RowSigner(secret)).close()
        checkpoint = str(checkpoint)
    return BatchSpec(
        kind=args.kind,
        prompt=prompt,
        request=request,
        concurrency=concurrency,
        workers=max(1, min(workers, len(df))),
        retries=retries,
        retry_backoff_s=runtime.settings.retry_backoff_s,
        schema=schema,
        restore_keep_alive=restore_keep_alive,
        images=images,
        max_errors=max_errors,
        checkpoint=checkpoint,
        checkpoint_secret=secret,
        server_context=server_context_length(),
    )


def _require_unique(df: pd.DataFrame, used: tuple[Hashable, ...]) -> None:
    names: list[Hashable] = list(df.columns)
    for column in used:
        count = names.count(column)
        if count > 1:
            raise InvalidInputError(
                f"The frame has {count} columns named {column!r}; the batch reads it, "
                "so it must be unique.",
                hint="Rename the duplicates first (df.columns = [...]).",
            )


def added_columns(schema: ReplyColumns | None, prefix: str) -> list[str]:
    names = ["response", *(schema.fields if schema else ()), *META_COLUMNS]
    return [prefix + n for n in names]


def _check_names(df: pd.DataFrame, schema: ReplyColumns | None, prefix: object) -> None:
    if not isinstance(prefix, str):
        raise InvalidInputError(f"prefix must be text, got {type(prefix).__name__}.")
    added = added_columns(schema, prefix)
    seen: set[str] = set()
    for name in added:
        if name in seen:
            raise InvalidInputError(
                f"The schema field {name!r} clashes with a column the batch adds.",
                hint="Rename that field: the batch adds "
                + ", ".join(["response", *META_COLUMNS])
                + ".",
            )
        seen.add(name)
    clashes = [n for n in added if n in df.columns]
    if clashes:
        raise InvalidInputError(
            f"The frame already has column(s) {', '.join(map(repr, clashes))} that the batch "
            "would add.",
            hint="Pass prefix='llm_' (any text) to name the new columns apart, or drop them first.",
        )
