# mypy: disable-error-code="no-untyped-call,untyped-decorator"
# (IPython's magic_arguments API carries no type hints.)
"""``%ollama metrics`` and ``%ollama perf``: the metrics store from a magic.

Both are thin: parse the line, ask ``ollama_nb.telemetry`` for a table or a
report from the runtime's store, and return it for Jupyter to display.
"""

from __future__ import annotations

from typing import Any

from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .. import telemetry
from ..presentation.display import Notice, Sections
from ..runtime import Runtime
from ..telemetry.reports import host_summary, model_summary
from .commands import subcommand

#: Decimals shown per column kind; the DataFrame from ``ollama_nb.telemetry.summary()`` keeps all.
_ROUNDING = {
    "latency_p50_s": 2,
    "latency_p95_s": 2,
    "ttft_p50_s": 2,
    "ttft_p95_s": 2,
    "decode_tps_mean": 1,
    "prompt_tps_mean": 1,
    "load_mean_s": 2,
}


@magic_arguments()
@argument("--since", default=None, help="look back this far: 30m, 1h, 7d, or a date")
@argument("--model", default=None, help="only this model (llama3.2 means llama3.2:latest)")
@argument("--project", default=None, help="only this project label or notebook path")
def _metrics_args() -> None:
    """%ollama metrics [--since 1h] [--model M] [--project P]"""


@magic_arguments()
@argument("--since", default=None, help="look back this far: 30m, 1h, 7d, or a date")
@argument("--model", default=None, help="only this model")
@argument("--project", default=None, help="only this project label or notebook path")
def _perf_args() -> None:
    """%ollama perf [--model M] [--since 1d] [--project P]"""


def _filters(args: Any) -> str:
    given = [
        f"--{name} {value}"
        for name in ("since", "model", "project")
        if (value := getattr(args, name, None))
    ]
    return " ".join(given)


@subcommand("metrics", "requests, errors, latency, TTFT, tokens/s per model (and per host)")
def metrics_command(line: str, shell: Any, runtime: Runtime) -> object:
    """Summary table per model of the requests recorded in the metrics store.

    When more than one server answered (a pool), a second table shows each host.
    """
    args = parse_argstring(_metrics_args, line)
    events = telemetry.metrics(
        runtime.telemetry, args.since, args.model, args.project, now=runtime.clock.time()
    )
    table = model_summary(events)
    if table.empty:
        where = f" matching {_filters(args)}" if _filters(args) else ""
        return Notice(f"No requests recorded{where} yet.")
    if events["host"].nunique() > 1:
        return Sections((table.round(_ROUNDING), host_summary(events).round(_ROUNDING)))
    return table.round(_ROUNDING)


@subcommand("perf", "performance report with charts (decode speed, latency, TTFT, loads)")
def perf_command(line: str, shell: Any, runtime: Runtime) -> object:
    """A performance report for the matching requests; ``.to_html(path)`` saves it."""
    args = parse_argstring(_perf_args, line)
    return telemetry.report(
        runtime.telemetry,
        args.since,
        args.model,
        args.project,
        server_profile=runtime.server_profile(),
        now=runtime.clock.time(),
    )
