"""``df.ollama.embed(column)``: one vector per row, in a new column.

Ollama's ``/api/embed`` takes many texts per request, so rows travel in groups
of ``batch_size``; groups run concurrently through the same gate as chats. A
group that fails after its retries marks its rows with the error and the rest
carry on. Missing texts get no vector (and say so) instead of an empty string's.

With ``checkpoint=`` each vector is saved (sealed, as chat rows are) the moment
its group returns, so a crash, an interrupt or a kernel restart loses no
finished row; a rerun looks every text up first and sends only the rest, so
groups stay full of work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from ..application import use_cases
from ..domain import EmbedRequest, InvalidInputError, ModelName, OllamaNbError
from ..domain.checks import whole_number
from ..request_builder import resolve_model
from ..runtime import Runtime, get_runtime
from .arguments import keyword_form
from .checkpoint import Checkpoint, ObjectStoreCheckpoint, RowSigner, open_checkpoint
from .driver import Ended, run_awaiting, run_blocking
from .embed_checkpoint import embed_key, vector_from, vector_reply
from .progress import Progress
from .results import BatchSummary, attach
from .retries import RowFailedError, RowRetries
from .runner import open_for_model
from .template import is_missing

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SUMMARY_KEY = "ollama_embed"


class EmbedRun:
    def __init__(
        self,
        frame: pd.DataFrame,
        column: Hashable,
        model: ModelName,
        *,
        dimensions: int | None,
        batch_size: int,
        concurrency: int,
        retries: int,
        backoff_s: float,
        cache: bool = False,
        checkpoint: str | None = None,
        checkpoint_secret: bytes = b"",
    ) -> None:
        self.frame = frame
        self.column = column
        self.model = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.retries = retries
        self._retries = RowRetries(retries, backoff_s)
        n = len(frame)
        self.vectors: list[np.ndarray[Any, Any] | None] = [None] * n
        self.errors: list[str | None] = [None] * n
        self.cache = cache
        self.truncate = True  # EmbedRequest's default, which the batch does not change
        self.checkpoint = checkpoint
        self._secret = checkpoint_secret
        self._store: Checkpoint | ObjectStoreCheckpoint | None = None
        self.checkpoint_rejected = 0
        self._digest: str | None = None
        self.ok = self.failed = self.skipped = self.cached = 0
        self.tokens = 0
        self.stopped: str | None = None
        self.fatal: OllamaNbError | None = None
        self._groups = self._texts()

    def _texts(self) -> Iterator[list[tuple[int, str, str]]]:
        """Groups of (position, text, checkpoint key) still to send, read lazily."""
        group: list[tuple[int, str, str]] = []
        series = self.frame[self.column]
        for start in range(0, len(series), 1024):
            for offset, value in enumerate(series.iloc[start : start + 1024].tolist()):
                pos = start + offset
                if is_missing(value) or (isinstance(value, str) and not value.strip()):
                    self.errors[pos] = f"skipped: no text in column {self.column!r}"
                    self.skipped += 1
                    continue
                text = value if isinstance(value, str) else str(value)
                key = embed_key(
                    self.model.canonical, text, dimensions=self.dimensions, truncate=self.truncate
                )
                if self._restored(pos, key):
                    continue
                group.append((pos, text, key))
                if len(group) == self.batch_size:
                    yield group
                    group = []
        if group:
            yield group

    def _restored(self, pos: int, key: str) -> bool:
        """Serve a row's saved vector, if the checkpoint holds one that proves itself."""
        if self._store is None:
            return False
        stored = self._store.get(key)
        if stored is None:
            return False
        vector = vector_from(stored, self.dimensions)
        if vector is None:  # sealed by us, yet not a vector this run can use
            self._store.rejected += 1
            return False
        self.vectors[pos] = vector
        self.cached += 1
        return True

    @property
    def finished(self) -> int:
        return self.ok + self.failed + self.skipped + self.cached

    def counts(self) -> tuple[int, int, int]:
        """Rows finished and failed for the progress bar (embeddings generate no tokens)."""
        return self.finished, self.failed, 0

    async def run(self, ports: use_cases.Ports) -> None:
        if self.cache and ports.cache is not None:
            # Once per run: every text's key names the model by this digest.
            self._digest = await use_cases.model_digest(ports, self.model)
        if self.checkpoint:
            self._store = await open_for_model(ports, self.model, self.checkpoint, self._secret)
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.concurrency):
                    group.create_task(self._worker(ports))
        finally:
            if self._store is not None:
                self.checkpoint_rejected += self._store.rejected
                self._store.close()
                self._store = None

    async def _worker(self, ports: use_cases.Ports) -> None:
        import numpy as np

        for group in self._groups:
            if self.stopped is not None:
                return
            request = EmbedRequest(
                model=self.model,
                inputs=tuple(t for _, t, _ in group),
                dimensions=self.dimensions,
                truncate=self.truncate,
            )
            try:
                result = await self._retries.send(
                    partial(
                        use_cases.embed,
                        ports,
                        request,
                        priority="batch",
                        cache=self._digest is not None,
                        digest=self._digest,
                    ),
                    stopping=lambda: self.stopped is not None,
                )
            except RowFailedError as failed:
                for pos, _, _ in group:
                    self.errors[pos] = str(failed)
                self.failed += len(group)
                if failed.fatal and self.stopped is None:
                    self.stopped, self.fatal = failed.error.message, failed.error
                continue
            self.tokens += result.timings.prompt_eval_count
            for (pos, _, key), vector in zip(group, result.embeddings, strict=True):
                self.vectors[pos] = array = np.asarray(vector, dtype=np.float32)
                if self._store is not None:
                    self._store.put(key, vector_reply(array, self.model.value))
            self.ok += len(group) - result.cached
            self.cached += result.cached

    def summary(self, wall_s: float, stopped: str | None) -> BatchSummary:
        return BatchSummary(
            rows=len(self.frame),
            ok=self.ok,
            failed=self.failed,
            cached=self.cached,
            skipped=self.skipped,
            not_run=len(self.frame) - self.finished,
            deduplicated=0,
            wall_s=wall_s,
            eval_tokens=0,
            stopped=stopped,
            checkpoint_rejected=self.checkpoint_rejected,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class EmbedArgs:
    """The keywords of ``embed_column``/``aembed_column``."""

    model: str | None = None
    dimensions: int | None = None
    batch_size: int = 32
    concurrency: int | None = None
    retries: int = 2
    progress: bool = True
    output: str = "embedding"
    cache: bool = False
    checkpoint: str | None = None


def _build(df: pd.DataFrame, column: Hashable, args: EmbedArgs, runtime: Runtime) -> EmbedRun:
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(f"embed needs a pandas DataFrame, got {type(df).__name__}.")
    if column not in df.columns:
        raise InvalidInputError(
            f"No column {column!r} to embed (columns: {', '.join(map(str, list(df.columns)[:12]))})."
        )
    output = args.output
    for name in (output, f"{output}_error"):
        if name in df.columns:
            raise InvalidInputError(
                f"The frame already has a column {name!r}.",
                hint="Pass output='another_name' for the vectors.",
            )
    whole_number("batch_size", args.batch_size, 1)
    whole_number("retries", args.retries, 0)
    chosen = runtime.gate.stats().limit if args.concurrency is None else args.concurrency
    whole_number("concurrency", chosen, 1)
    checkpoint = args.checkpoint
    secret = b""
    if checkpoint is not None:
        secret = runtime.checkpoint_secret()
        # Fail now on a bad path (a file: URI, a symlink), not after the first group.
        open_checkpoint(checkpoint, RowSigner(secret)).close()
        checkpoint = str(checkpoint)
    return EmbedRun(
        df,
        column,
        resolve_model(args.model, runtime.settings, runtime.choose_model, "embedding"),
        dimensions=args.dimensions,
        batch_size=args.batch_size,
        concurrency=chosen,
        retries=args.retries,
        backoff_s=runtime.settings.retry_backoff_s,
        cache=_check_cache(args.cache),
        checkpoint=checkpoint,
        checkpoint_secret=secret,
    )


def _check_cache(cache: object) -> bool:
    if not isinstance(cache, bool):
        raise InvalidInputError(f"cache must be True or False, got {cache!r}.")
    return cache


def _finish(run: EmbedRun, ended: Ended, args: EmbedArgs) -> pd.DataFrame:
    import numpy as np

    stopped = "interrupted" if ended.interrupted else run.stopped
    if run.fatal is not None and run.ok + run.cached == 0 and not ended.interrupted:
        raise run.fatal
    if stopped is not None:
        for pos, (vector, error) in enumerate(zip(run.vectors, run.errors, strict=True)):
            if vector is None and error is None:
                run.errors[pos] = f"not run: {stopped}"
    vectors = np.empty(len(run.vectors), dtype=object)
    for i, vector in enumerate(run.vectors):  # element-wise: one array per cell
        vectors[i] = vector
    import pandas as pd

    frame = attach(
        run.frame,
        {args.output: vectors, f"{args.output}_error": pd.array(run.errors, dtype="str")},
    )
    summary = run.summary(ended.wall_s, stopped)
    frame.attrs[SUMMARY_KEY] = summary.as_dict()
    if args.progress:
        print(summary.line())
    return frame


@keyword_form(EmbedArgs)
def embed_column(df: pd.DataFrame, column: Hashable, args: EmbedArgs) -> pd.DataFrame:
    """``df`` plus ``output`` (a float32 vector per row) and ``{output}_error``.

    ``checkpoint`` is a file path: vectors are kept there as they arrive, and a
    rerun with the same path sends only the texts that have none (counted ``cached``).
    """
    return run_embed(df, column, args, get_runtime())


@keyword_form(EmbedArgs)
async def aembed_column(df: pd.DataFrame, column: Hashable, args: EmbedArgs) -> pd.DataFrame:
    """``embed_column`` for async cells."""
    return await arun_embed(df, column, args, get_runtime())


def run_embed(
    df: pd.DataFrame, column: Hashable, args: EmbedArgs, runtime: Runtime
) -> pd.DataFrame:
    """``embed_column`` with its arguments checked into ``EmbedArgs`` (the accessor calls this)."""
    run = _build(df, column, args, runtime)
    ended = run_blocking(runtime.loop, run.run(runtime.ports), _bar(run, args), run.counts)
    return _finish(run, ended, args)


async def arun_embed(
    df: pd.DataFrame, column: Hashable, args: EmbedArgs, runtime: Runtime
) -> pd.DataFrame:
    run = _build(df, column, args, runtime)
    ended = await run_awaiting(runtime.loop, run.run(runtime.ports), _bar(run, args), run.counts)
    return _finish(run, ended, args)


def _bar(run: EmbedRun, args: EmbedArgs) -> Progress:
    return Progress(len(run.frame), enabled=args.progress, description=f"embed {run.model.value}")
