"""``out.ollama.retry()``: send again only the rows of a batch result that did not finish.

A batch result carries how it was made in ``attrs`` (``CALL_KEY``): the
template, model, options and the other arguments as plain JSON, so the recipe
survives ``to_parquet``/``read_parquet`` and a kernel restart. In the kernel
that ran the batch, the exact arguments (a prompt function, a pydantic schema)
are also kept in memory under the call's id and win over the JSON copy.

``retry`` takes the rows whose ``error`` is set (failed, skipped or not run),
runs the same batch over just those input rows (through the same checkpoint, if
the batch had one, so what the retry finishes is kept too), and writes their new
answer columns back in place: every other row, the index and the columns stay
exactly as they were.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from ..application.reply_schema import ReplySchema
from ..domain import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from .api import BatchArgs, Template

CALL_KEY = "ollama_batch_call"
#: The last retry's summary (the first run's stays under ``SUMMARY_KEY``).
RETRY_KEY = "ollama_batch_retry"
SUMMARY_KEY = "ollama_batch"
#: Calls kept in memory for an exact retry; the oldest go first.
_MAX_KEPT_CALLS = 64
_calls: dict[str, tuple[Template, BatchArgs]] = {}


@dataclass(frozen=True, slots=True)
class Recipe:
    """How a batch result was made, in JSON terms (``attrs[CALL_KEY]``)."""

    call_id: str
    template: str | None  # None: a prompt function, which only this kernel still has
    args: dict[str, Any]
    input_columns: list[Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def remember(
    frame: pd.DataFrame, source: pd.DataFrame, template: Template, args: BatchArgs
) -> None:
    """Keep the call on the result (JSON) and in this kernel (exact)."""
    call_id = uuid.uuid4().hex
    _calls[call_id] = (template, args)
    while len(_calls) > _MAX_KEPT_CALLS:
        del _calls[next(iter(_calls))]
    frame.attrs[CALL_KEY] = Recipe(
        call_id=call_id,
        template=template if isinstance(template, str) else None,
        args=_json_args(args),
        input_columns=list(source.columns),
    ).as_dict()


def _json_args(args: BatchArgs) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in fields(args):
        value = getattr(args, f.name)
        if f.name == "schema" and value is not None:
            value = ReplySchema.from_user(value).json_schema or "json"
        elif f.name == "options" and value is not None and not isinstance(value, Mapping):
            value = value.to_wire()  # GenerationOptions
        elif f.name == "options" and value is not None:
            value = dict(value)
        values[f.name] = value
    return values


def failed_positions(frame: pd.DataFrame, prefix: str) -> list[int]:
    """Positions of rows whose ``error`` column is set."""
    column = prefix + "error"
    if column not in frame.columns:
        raise InvalidInputError(
            f"This frame has no {column!r} column: it is not a batch result.",
            hint="Call retry() on what df.ollama.chat/generate returned.",
        )
    return [i for i, missing in enumerate(frame[column].isna().tolist()) if not missing]


def retry(
    frame: pd.DataFrame,
    run: Callable[[pd.DataFrame, Template, BatchArgs], pd.DataFrame],
    args_type: type[BatchArgs],
    *,
    template: Template | None = None,
    **changes: Any,
) -> pd.DataFrame:
    """The same frame with the rows that had an error sent again (see the module docstring).

    ``template`` and keyword ``changes`` (any ``df.ollama.chat`` argument, e.g.
    ``retries=5`` or ``model=``) override the recorded call: needed for a prompt
    function after a kernel restart, since only its result survived.
    """
    recorded, args = _recorded_call(frame, args_type)
    use = template if template is not None else recorded
    if use is None:
        raise InvalidInputError(
            "This batch used a prompt function, which did not survive the kernel restart.",
            hint="Pass it again: result.ollama.retry(template=my_function).",
        )
    if changes:
        unknown = [k for k in changes if k not in {f.name for f in fields(args)}]
        if unknown:
            raise InvalidInputError(f"retry() got unknown argument(s): {', '.join(unknown)}.")
        args = replace(args, **changes)
    positions = failed_positions(frame, args.prefix)
    if not positions:
        if args.progress:
            print("No rows with an error: nothing to retry.")
        return frame
    inputs = _input_columns(frame)
    again = run(frame.iloc[positions][inputs], use, args)
    return _merged(frame, again, positions, inputs)


def _recorded_call(
    frame: pd.DataFrame, args_type: type[BatchArgs]
) -> tuple[Template | None, BatchArgs]:
    data = frame.attrs.get(CALL_KEY)
    if not isinstance(data, Mapping) or not isinstance(data.get("args"), Mapping):
        raise InvalidInputError(
            "This frame does not say how it was made (its attrs were lost).",
            hint="Run the batch again with checkpoint=...; finished rows are not re-sent.",
        )
    kept = _calls.get(str(data.get("call_id")))
    if kept is not None:
        return kept
    known = {f.name for f in fields(args_type)}
    args = args_type(**{k: v for k, v in data["args"].items() if k in known})
    template = data.get("template")
    return (template if isinstance(template, str) else None), args


def _input_columns(frame: pd.DataFrame) -> list[Hashable]:
    data = frame.attrs.get(CALL_KEY) or {}
    recorded = data.get("input_columns") if isinstance(data, Mapping) else None
    if isinstance(recorded, list) and all(c in frame.columns for c in recorded):
        return list(recorded)
    raise InvalidInputError("This frame's input columns are not all there any more.")


def _merged(
    frame: pd.DataFrame, again: pd.DataFrame, positions: list[int], inputs: list[Hashable]
) -> pd.DataFrame:
    """``frame`` with the retried rows' answer columns replaced, index and columns kept."""
    out = frame.copy()
    added = [c for c in frame.columns if c not in inputs and c in again.columns]
    for column in added:
        index = out.columns.get_loc(column)
        assert isinstance(index, int), "batch columns are unique (checked before the run)"
        out.iloc[positions, index] = again[column].to_numpy()
    out.attrs = dict(frame.attrs)  # the first run's summary and recipe stay
    summary = again.attrs.get(SUMMARY_KEY)
    if summary is not None:
        out.attrs[RETRY_KEY] = summary
    return out
