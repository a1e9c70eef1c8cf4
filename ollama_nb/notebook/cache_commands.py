# mypy: disable-error-code="no-untyped-call,untyped-decorator"
"""``%ollama cache`` and ``%ollama deterministic``: notebooks that re-run the same.

The response cache keeps answers of deterministic requests (temperature 0 or
a seed) keyed by the model's digest, so Run All serves them again instead of
asking the model; deterministic mode makes every request one of those.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from IPython.core.error import UsageError

from ..presentation.display import Notice, Sections, Table, human_bytes
from ..request_builder import DETERMINISTIC_NUM_CTX
from ..runtime import Runtime
from .commands import subcommand


@subcommand("cache", "kept answers: cache | cache clear | cache on | cache off")
def cache(line: str, shell: Any, runtime: Runtime) -> object:
    words = line.split()
    if words == ["clear"]:
        removed = runtime.responses.clear()
        return Notice(f"Response cache cleared: {removed} answers removed.", "note")
    if words in (["on"], ["off"]):
        runtime.configure(response_cache=words[0] == "on")
        state = "on (deterministic requests are kept)" if words[0] == "on" else "off"
        return Notice(f"Response cache {state}.", "note")
    if words:
        raise UsageError("Usage: %ollama cache [clear|on|off]")
    return cache_report(runtime)


def cache_report(runtime: Runtime) -> Sections:
    """Entries, size and hit rate, then the most recently used entries."""
    store = runtime.responses
    stats = store.stats()
    rate = "-" if stats.hit_rate is None else f"{stats.hit_rate:.0%}"
    state = "on" if runtime.settings.response_cache else "off (`%ollama cache on`)"
    rows = (
        ("state", state),
        ("entries", str(stats.entries)),
        ("size", f"{human_bytes(stats.bytes)} of {human_bytes(stats.max_bytes)}"),
        ("hit rate", f"{rate} ({stats.hits} hits, {stats.misses} misses)"),
        ("bad entries dropped", str(stats.bad)),
        ("file", str(stats.path)),
    )
    entries = tuple(
        (
            e.model,
            e.digest[:12],
            _when(e.created_at),
            _when(e.used_at),
            str(e.hits),
            human_bytes(e.bytes),
            e.preview,
        )
        for e in store.entries()
    )
    return Sections(
        (
            Table(("", ""), rows, title="Response cache"),
            Table(
                ("model", "digest", "kept", "last used", "hits", "size", "answer"),
                entries,
                title="Most recently used",
                empty="No answers kept yet.",
                footer="Only deterministic requests (temperature 0 or a seed) are kept unless "
                "cache=True; a model re-pulled with a new digest misses.",
            ),
        )
    )


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")


@subcommand("deterministic", "same answers on every run: deterministic [on|off]")
def deterministic(line: str, shell: Any, runtime: Runtime) -> object:
    words = line.split()
    if words in (["on"], ["off"]):
        runtime.configure(deterministic=words[0] == "on")
    elif words:
        raise UsageError("Usage: %ollama deterministic [on|off]")
    settings = runtime.settings
    if not settings.deterministic:
        return Notice("Deterministic mode is off: requests use the model's own sampling.", "note")
    return Notice(
        f"Deterministic mode is on: temperature 0, seed {settings.deterministic_seed}, "
        f"num_ctx {DETERMINISTIC_NUM_CTX} unless you set one; batches send one row at a time. "
        "Cost: a server with several parallel slots batches requests together, which can "
        "change a token, so batches give up that parallelism (about 1/OLLAMA_NUM_PARALLEL "
        "of the throughput), and a model loaded with another context reloads once. Answers "
        "are kept in the response cache, so a re-run sends nothing.",
        "note",
    )
