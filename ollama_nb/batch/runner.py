"""The batch engine: rows in, replies out, on the shared background loop.

Workers each take the next row, render its prompt, and send it through the
core use case (so every row passes the concurrency gate and leaves a telemetry
event). With an explicit ``concurrency`` that many rows are in flight; without
one, there are enough workers for the gate's learned limit to decide. Rows wait
at the gate behind interactive requests, so a ``%%chat`` mid-batch is not
starved. A row whose server stops answering is re-run, whole, on another
server of the pool. Rows are rendered only when a worker takes them, so nothing
grows with the table but the result columns. A row's failure is retried, then
recorded; it never stops the others. Errors that would fail every row (the
server is gone, the model is not installed) stop the batch early instead of
burning through the table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..application import use_cases
from ..application.context_guard import ContextCheck, context_window, estimate_request_tokens
from ..application.reply_schema import ReplyColumns
from ..domain import (
    ChatRequest,
    ChatResult,
    ConnectionLostError,
    GenerateRequest,
    InvalidInputError,
    ModelName,
    OllamaNbError,
    ServerBusyError,
    ServerUnavailableError,
)
from ..request_builder import RequestBuilder
from .checkpoint import (
    Checkpoint,
    ObjectStoreCheckpoint,
    RowSigner,
    StoredReply,
    open_checkpoint,
    row_key,
)
from .results import RowResults
from .retries import RowFailedError, RowRetries
from .template import MissingValueError, PromptTemplate, RowFunction, is_missing, render_with

if TYPE_CHECKING:
    import pandas as pd

#: Rows rendered per slice of the frame; bounds what is held before it is sent.
CHUNK_ROWS = 256
#: Times one row may move to another server before its failure counts.
MAX_REROUTES = 4


@dataclass(frozen=True, slots=True)
class BatchSpec:
    """Everything that decides what each row sends; built and validated before the run."""

    kind: Literal["chat", "generate"]
    prompt: PromptTemplate | RowFunction
    request: RequestBuilder
    concurrency: int | None  # explicit width; None = as many as the gates admit
    workers: int
    retries: int
    retry_backoff_s: float = 0.25
    schema: ReplyColumns | None = None
    restore_keep_alive: bool = False  # the batch chose keep_alive: give it back afterwards
    images: Hashable | None = None
    max_errors: int | None = None
    checkpoint: str | None = None
    server_context: int | None = None  # OLLAMA_CONTEXT_LENGTH, when known
    checkpoint_secret: bytes = field(default=b"", repr=False)  # seals checkpoint rows
    cache: bool | None = None  # the response cache: None = deterministic requests only

    @property
    def model(self) -> ModelName:
        return self.request.model

    @property
    def identity(self) -> dict[str, Any]:
        """What, besides the prompt and images, goes into each row's checkpoint key."""
        request = self.request
        return {
            "kind": self.kind,
            "model": request.model.canonical,
            "options": request.options.to_wire(),
            "format": None if request.format is None else request.format.to_wire(),
            "system": request.system,
            "think": request.think,
        }


@dataclass(slots=True)
class _Row:
    pos: int
    prompt: str
    images: tuple[str, ...]
    image_digests: tuple[str, ...]
    image_bytes_saved: int


class BatchRun:
    """One execution of a spec over a frame; ``results`` fills in as rows finish."""

    def __init__(self, frame: pd.DataFrame, spec: BatchSpec) -> None:
        self.frame = frame
        self.spec = spec
        self.results = RowResults(len(frame), schema=spec.schema)
        self.stopped: str | None = None
        self.fatal: OllamaNbError | None = None
        self._rows = self._positions()
        self._inflight: dict[bytes, list[int]] = {}
        self._answered: dict[bytes, int] = {}
        self._window: tuple[int, str] | None = None
        self.hosts_used: set[str] = set()
        self._retries = RowRetries(spec.retries, spec.retry_backoff_s)
        self._digest: str | None = None

    # --- rows ------------------------------------------------------------------------

    def _positions(self) -> Iterator[tuple[int, Any]]:
        """(position, row) pairs, sliced from the frame a chunk at a time."""
        frame = self.frame
        needed: list[Hashable] = []
        if isinstance(self.spec.prompt, PromptTemplate):
            needed.extend(self.spec.prompt.columns)
        if self.spec.images is not None and self.spec.images not in needed:
            needed.append(self.spec.images)
        use_series = not isinstance(self.spec.prompt, PromptTemplate)
        for start in range(0, len(frame), CHUNK_ROWS):
            chunk = frame.iloc[start : start + CHUNK_ROWS]
            if use_series:
                for offset in range(len(chunk)):
                    yield start + offset, chunk.iloc[offset]
            else:
                columns = [chunk[c].tolist() for c in needed]
                for offset in range(len(chunk)):
                    yield (
                        start + offset,
                        {c: col[offset] for c, col in zip(needed, columns, strict=True)},
                    )

    def _render(self, row: Any) -> str:
        prompt = self.spec.prompt
        if isinstance(prompt, PromptTemplate):
            return prompt.render(row)
        return render_with(prompt, row)

    async def _prepare(self, pos: int, row: Any) -> _Row:
        try:
            prompt = self._render(row)
        except OllamaNbError:
            raise
        except Exception as exc:  # the user's prompt function failed on this row
            raise InvalidInputError(
                f"The prompt function raised {type(exc).__name__}: {exc}"
            ) from exc
        if not prompt.strip():
            raise MissingValueError("The prompt is empty.")
        if self.spec.images is None:
            return _Row(pos, prompt, (), (), 0)
        cell = row[self.spec.images]
        if not isinstance(cell, list | tuple) and is_missing(cell):
            raise MissingValueError(f"No image in column {self.spec.images!r}.")
        sources = list(cell) if isinstance(cell, list | tuple) else [cell]
        from ..vision import prepare_images

        prepared = await asyncio.to_thread(prepare_images, sources, model=self.spec.model.value)
        return _Row(
            pos,
            prompt,
            tuple(p.to_base64() for p in prepared),
            tuple(p.sha256 for p in prepared),
            sum(p.bytes_saved for p in prepared),
        )

    def _request(self, row: _Row) -> ChatRequest | GenerateRequest:
        build = (
            self.spec.request.generate if self.spec.kind == "generate" else self.spec.request.chat
        )
        return build(row.prompt, row.images)

    # --- running ---------------------------------------------------------------------

    def counts(self) -> tuple[int, int, int]:
        """Rows finished, rows failed and tokens generated, for the progress bar."""
        r = self.results
        return r.finished, r.failed, r.eval_token_total

    async def run(self, ports: use_cases.Ports) -> None:
        spec = self.spec
        # One look at the context every row will get, for the truncated column.
        self._window = await context_window(
            ports, spec.model, spec.request.options.num_ctx, spec.server_context
        )
        if ports.cache is not None and self.spec.cache is not False:
            # Once per batch: every row's key names the model by this digest.
            self._digest = await use_cases.model_digest(ports, spec.model)
        checkpoint = await self._open_checkpoint(ports)
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.spec.workers):
                    group.create_task(self._worker(ports, checkpoint))
        finally:
            if checkpoint is not None:
                self.results.checkpoint_rejected += checkpoint.rejected
                checkpoint.close()
            if self.spec.restore_keep_alive and self.hosts_used:
                await asyncio.shield(
                    use_cases.restore_keep_alive(ports, self.spec.request.model, self.hosts_used)
                )

    async def _open_checkpoint(
        self, ports: use_cases.Ports
    ) -> Checkpoint | ObjectStoreCheckpoint | None:
        """The checkpoint, its rows checked against this user's key and the model's digest."""
        if not self.spec.checkpoint:
            return None
        return await open_for_model(
            ports, self.spec.model, self.spec.checkpoint, self.spec.checkpoint_secret
        )

    async def _worker(
        self, ports: use_cases.Ports, checkpoint: Checkpoint | ObjectStoreCheckpoint | None
    ) -> None:
        for pos, raw in self._rows:
            if self.stopped is not None:
                return
            try:
                row = await self._prepare(pos, raw)
            except MissingValueError as exc:
                self.results.skip(pos, exc.message)
                continue
            except OllamaNbError as exc:
                self._row_failed(pos, str(exc))
                continue
            key = row_key(**self.spec.identity, prompt=row.prompt, image_digests=row.image_digests)
            digest = bytes.fromhex(key)
            if digest in self._answered:
                self._copy(self._answered[digest], pos)
                continue
            if digest in self._inflight:
                self._inflight[digest].append(pos)
                continue
            stored = checkpoint.get(key) if checkpoint is not None else None
            if stored is not None:
                self.results.record_reply(pos, status="cached", **_stored_fields(stored))
                self._answered[digest] = pos
                continue
            self._inflight[digest] = waiting = [pos]
            try:
                await self._send(ports, row, key, checkpoint)
            finally:
                # Duplicates that arrived meanwhile share the outcome; if this task was
                # cancelled they stay "not run", like every other unfinished row.
                del self._inflight[digest]
                if self.results.status[pos] != "not run":
                    self._answered[digest] = pos
                    for other in waiting[1:]:
                        self._copy(pos, other)

    async def _send(
        self,
        ports: use_cases.Ports,
        row: _Row,
        key: str,
        checkpoint: Checkpoint | ObjectStoreCheckpoint | None,
    ) -> None:
        try:
            request = self._request(row)
        except InvalidInputError as exc:
            self._row_failed(row.pos, str(exc))
            return
        reroutes = 0

        async def attempt() -> ChatResult:
            nonlocal reroutes
            while True:
                try:
                    return await use_cases.complete(
                        ports,
                        request,
                        image_bytes_saved=row.image_bytes_saved,
                        priority="batch",
                        concurrency=self.spec.concurrency,
                        cache=self.spec.cache if self._digest else False,
                        digest=self._digest,
                    )
                except (ServerUnavailableError, ConnectionLostError) as exc:
                    # Its server is gone: the whole row again elsewhere, if the pool has one.
                    if reroutes < MAX_REROUTES and ports.gate.failed(exc.host):
                        reroutes += 1
                        self.results.rerouted += 1
                        continue
                    raise
                except ServerBusyError:
                    self.results.busy_retries += 1
                    raise

        try:
            result = await self._retries.send(attempt, stopping=lambda: self.stopped is not None)
        except RowFailedError as failed:
            self._row_failed(row.pos, str(failed))
            if failed.fatal:
                self._stop(failed.error)
            return
        if result.timings.retries:
            self.results.busy_retries += 1
        if result.host is not None:
            self.hosts_used.add(result.host)
        stored = _stored_from(result, self._truncated(request, result))
        if checkpoint is not None:
            checkpoint.put(key, stored)
        status: Literal["ok", "cached"] = "cached" if result.cached else "ok"
        self.results.record_reply(row.pos, status=status, **_stored_fields(stored))
        if self.results.status[row.pos] == "failed":
            self._count_error()

    def _truncated(self, request: ChatRequest | GenerateRequest, result: ChatResult) -> bool:
        if self._window is None:
            return False
        window, source = self._window
        check = ContextCheck(
            self.spec.model.value, estimate_request_tokens(request), window, source
        )
        return check.truncated(result.timings.prompt_eval_count)

    def _copy(self, source: int, pos: int) -> None:
        self.results.copy_row(source, pos)
        if self.results.status[pos] == "failed":
            self._count_error()

    def _row_failed(self, pos: int, message: str) -> None:
        self.results.fail(pos, message)
        self._count_error()

    def _count_error(self) -> None:
        limit = self.spec.max_errors
        if limit is not None and self.results.failed > limit and self.stopped is None:
            self.stopped = f"{self.results.failed} errors (max_errors={limit})"

    def _stop(self, exc: OllamaNbError) -> None:
        if self.stopped is None:
            self.stopped = exc.message
            self.fatal = exc


async def open_for_model(
    ports: use_cases.Ports, model: ModelName, location: str, secret: bytes
) -> Checkpoint | ObjectStoreCheckpoint:
    """A checkpoint whose rows prove themselves against this user's key and the model's digest.

    Chat and embed batches both open theirs here, so a row is trusted by one rule.
    """
    try:
        installed = await use_cases.installed_match(ports, model)
    except OllamaNbError:
        installed = None  # unknown digest: rows sealed with a known one are re-run
    digest = (installed.digest or "") if installed is not None else ""
    return open_checkpoint(location, RowSigner(secret, digest))


def _stored_from(result: ChatResult, truncated: bool) -> StoredReply:
    t = result.timings
    return StoredReply(
        text=result.text,
        model=result.model,
        done_reason=result.done_reason,
        prompt_tokens=t.prompt_eval_count,
        eval_tokens=t.eval_count,
        latency_s=t.latency_s,
        ttft_s=t.ttft_s,
        tokens_per_s=t.decode_tps,
        truncated=truncated,
        host=result.host,
    )


def _stored_fields(stored: StoredReply) -> dict[str, Any]:
    return {
        "text": stored.text,
        "model": stored.model,
        "done_reason": stored.done_reason,
        "prompt_tokens": stored.prompt_tokens,
        "eval_tokens": stored.eval_tokens,
        "latency_s": stored.latency_s,
        "ttft_s": stored.ttft_s,
        "tokens_per_s": stored.tokens_per_s,
        "truncated": stored.truncated,
        "host": stored.host,
    }
