"""Where finished rows land, and the DataFrame and summary built from them.

One slot per input row, filled in place as rows finish (in any order), so the
memory a batch needs is the output itself, not the prompts or the requests. The
calling thread reads the counters for the progress bar while the background
loop writes them; each is a single int or float updated under the GIL.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

from ..application.reply_schema import ReplyColumns, ReplyValidationError

if TYPE_CHECKING:
    import pandas as pd

RowStatus = Literal["ok", "cached", "failed", "skipped", "not run"]

#: The columns every chat/generate batch adds, in order, after the answer columns.
META_COLUMNS = (
    "model",
    "prompt_tokens",
    "eval_tokens",
    "latency_s",
    "ttft_s",
    "tokens_per_s",
    "done_reason",
    "truncated",
    "host",
    "status",
    "error",
)


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What a batch did, in one line and as plain values (kept in ``result.attrs``)."""

    rows: int
    ok: int
    failed: int
    cached: int
    skipped: int
    not_run: int
    deduplicated: int
    wall_s: float
    eval_tokens: int
    stopped: str | None = None
    truncated: int = 0
    busy_retries: int = 0  # rows sent again after a 503 (the server's queue was full)
    rerouted: int = 0  # rows re-run on another server after theirs stopped answering
    checkpoint_rejected: int = 0  # checkpoint rows that failed their checks and were re-run

    @property
    def rows_per_s(self) -> float:
        done = self.ok + self.failed
        return done / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.eval_tokens / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly, so ``to_parquet`` can keep it in the file's metadata."""
        values = asdict(self)
        values["rows_per_s"] = round(self.rows_per_s, 3)
        values["tokens_per_s"] = round(self.tokens_per_s, 3)
        values["wall_s"] = round(self.wall_s, 3)
        return values

    def line(self) -> str:
        parts = [
            f"{self.rows} rows: {self.ok} ok",
            f"{self.failed} failed",
            f"{self.cached} cached",
            f"{self.skipped} skipped",
        ]
        if self.not_run:
            parts.append(f"{self.not_run} not run")
        if self.deduplicated:
            parts.append(f"{self.deduplicated} duplicates answered once")
        if self.busy_retries:
            parts.append(f"{self.busy_retries} retried after 503 (server busy)")
        if self.rerouted:
            parts.append(f"{self.rerouted} re-run on another server")
        if self.checkpoint_rejected:
            parts.append(
                f"{self.checkpoint_rejected} checkpoint row(s) re-run (corrupt, edited "
                "or from another model build)"
            )
        text = ", ".join(parts)
        text += (
            f" · {self.wall_s:.1f} s · {self.rows_per_s:.1f} rows/s · "
            f"{self.tokens_per_s:.1f} tokens/s"
        )
        if self.stopped:
            text += f" · stopped: {self.stopped}"
        if self.truncated:
            text += (
                f" · {self.truncated} prompt(s) probably truncated to fit the context "
                "(see the truncated column; raise num_ctx)"
            )
        return text

    def __str__(self) -> str:
        return self.line()


@dataclass(slots=True)
class RowResults:
    """Per-row outcome arrays plus running counters."""

    size: int
    schema: ReplyColumns | None = None
    text: list[str | None] = field(init=False)
    model: list[str | None] = field(init=False)
    prompt_tokens: list[int | None] = field(init=False)
    eval_tokens: list[int | None] = field(init=False)
    latency_s: list[float | None] = field(init=False)
    ttft_s: list[float | None] = field(init=False)
    tokens_per_s: list[float | None] = field(init=False)
    done_reason: list[str | None] = field(init=False)
    truncated: list[bool | None] = field(init=False)
    host: list[str | None] = field(init=False)
    status: list[RowStatus] = field(init=False)
    error: list[str | None] = field(init=False)
    fields: dict[str, list[object]] = field(init=False)
    ok: int = 0
    failed: int = 0
    cached: int = 0
    skipped: int = 0
    deduplicated: int = 0
    eval_token_total: int = 0
    busy_retries: int = 0
    rerouted: int = 0
    checkpoint_rejected: int = 0

    def __post_init__(self) -> None:
        n = self.size
        self.text = [None] * n
        self.model = [None] * n
        self.prompt_tokens = [None] * n
        self.eval_tokens = [None] * n
        self.latency_s = [None] * n
        self.ttft_s = [None] * n
        self.tokens_per_s = [None] * n
        self.done_reason = [None] * n
        self.truncated = [None] * n
        self.host = [None] * n
        self.status = ["not run"] * n
        self.error = [None] * n
        names = self.schema.fields if self.schema else ()
        self.fields = {name: [None] * n for name in names}

    @property
    def finished(self) -> int:
        return self.ok + self.failed + self.cached + self.skipped

    def record_reply(
        self,
        pos: int,
        *,
        status: Literal["ok", "cached"],
        text: str,
        model: str,
        done_reason: str | None,
        prompt_tokens: int | None,
        eval_tokens: int | None,
        latency_s: float | None,
        ttft_s: float | None,
        tokens_per_s: float | None,
        truncated: bool = False,
        host: str | None = None,
    ) -> None:
        """A reply arrived (or came from the checkpoint); a schema may still reject it."""
        self.text[pos] = text
        self.truncated[pos] = truncated
        self.host[pos] = host
        self.model[pos] = model
        self.done_reason[pos] = done_reason
        self.prompt_tokens[pos] = prompt_tokens
        self.eval_tokens[pos] = eval_tokens
        self.latency_s[pos] = latency_s
        self.ttft_s[pos] = ttft_s
        self.tokens_per_s[pos] = tokens_per_s
        if status == "ok":
            self.eval_token_total += eval_tokens or 0
        if self.schema is not None:
            try:
                values = self.schema.parse(text)
            except ReplyValidationError as exc:
                self.fail(pos, str(exc))
                return
            for name, value in values.items():
                self.fields[name][pos] = value
        self.status[pos] = status
        if status == "ok":
            self.ok += 1
        else:
            self.cached += 1

    def copy_row(self, source: int, pos: int) -> None:
        """A duplicate prompt: the same outcome as the row that was sent."""
        self.deduplicated += 1
        columns: tuple[list[Any], ...] = (
            self.text,
            self.model,
            self.done_reason,
            self.truncated,
            self.prompt_tokens,
            self.eval_tokens,
            self.latency_s,
            self.ttft_s,
            self.tokens_per_s,
            self.host,
            self.error,
        )
        for column in columns:
            column[pos] = column[source]
        for values in self.fields.values():
            values[pos] = values[source]
        status = self.status[source]
        self.status[pos] = status
        if status == "ok":
            self.ok += 1
        elif status == "cached":
            self.cached += 1
        elif status == "failed":
            self.failed += 1
        elif status == "skipped":
            self.skipped += 1

    def fail(self, pos: int, message: str) -> None:
        self.status[pos] = "failed"
        self.error[pos] = message
        self.failed += 1

    def skip(self, pos: int, message: str) -> None:
        self.status[pos] = "skipped"
        self.error[pos] = message
        self.skipped += 1

    def mark_unfinished(self, reason: str) -> int:
        """Say why rows that never finished did not; returns how many there were."""
        count = 0
        for pos, status in enumerate(self.status):
            if status == "not run":
                self.error[pos] = f"not run: {reason}"
                count += 1
        return count

    def summary(self, wall_s: float, stopped: str | None) -> BatchSummary:
        return BatchSummary(
            rows=self.size,
            ok=self.ok,
            failed=self.failed,
            cached=self.cached,
            skipped=self.skipped,
            not_run=self.size - self.finished,
            deduplicated=self.deduplicated,
            wall_s=wall_s,
            eval_tokens=self.eval_token_total,
            stopped=stopped,
            truncated=sum(1 for t in self.truncated if t),
            busy_retries=self.busy_retries,
            rerouted=self.rerouted,
            checkpoint_rejected=self.checkpoint_rejected,
        )

    def to_frame(self, source: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
        """The input's rows, index and columns plus the answer and metadata columns."""
        import pandas as pd

        columns: dict[Hashable, Any] = {}
        columns[prefix + "response"] = pd.array(self.text, dtype="str")
        if self.schema is not None:
            for name, values in self.fields.items():
                columns[prefix + name] = _typed(values, self.schema.dtypes.get(name, "object"))
        columns[prefix + "model"] = pd.array(self.model, dtype="str")
        columns[prefix + "prompt_tokens"] = pd.array(self.prompt_tokens, dtype="Int64")
        columns[prefix + "eval_tokens"] = pd.array(self.eval_tokens, dtype="Int64")
        for name in ("latency_s", "ttft_s", "tokens_per_s"):
            values = getattr(self, name)
            columns[prefix + name] = pd.array(
                [float("nan") if v is None else v for v in values], dtype="float64"
            )
        columns[prefix + "done_reason"] = pd.array(self.done_reason, dtype="str")
        columns[prefix + "truncated"] = pd.array(self.truncated, dtype="boolean")
        columns[prefix + "host"] = pd.array(self.host, dtype="str")
        columns[prefix + "status"] = pd.Categorical(
            self.status, categories=["ok", "cached", "failed", "skipped", "not run"]
        )
        columns[prefix + "error"] = pd.array(self.error, dtype="str")
        return attach(source, columns)


def attach(source: pd.DataFrame, columns: Mapping[Hashable, Any]) -> pd.DataFrame:
    """A new frame: ``source`` untouched, plus ``columns`` aligned by position."""
    out = source.copy(deep=False)
    for name, values in columns.items():
        out[name] = values if not hasattr(values, "__len__") else _positional(values, out)
    return out


def _positional(values: Any, frame: pd.DataFrame) -> Any:
    import pandas as pd

    return pd.Series(values, index=frame.index, copy=False)


def _typed(values: list[object], dtype: object) -> Any:
    import pandas as pd

    if isinstance(dtype, tuple):
        return pd.Categorical(
            [v if v in dtype else None for v in values],
            categories=list(dtype),
        )
    if dtype == "object":
        import numpy as np

        array = np.empty(len(values), dtype=object)
        for i, value in enumerate(values):  # element-wise, so lists stay lists
            array[i] = value
        return array
    try:
        return pd.array(cast("list[Any]", values), dtype=str(dtype))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return _typed(values, "object")
