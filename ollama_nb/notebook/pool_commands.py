# mypy: disable-error-code="no-untyped-call,untyped-decorator"
"""``%ollama hosts``: the servers in use, what each was found to run at once, and why.

Also adds the same table to ``%ollama status``, so the learned slot count of
every server is one magic away whether or not a pool is configured.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError

from ..infrastructure.host import parse_ollama_host
from ..infrastructure.pool import HostStatus
from ..presentation.display import Notice, Sections, Table
from ..runtime import Runtime
from .commands import subcommand
from .core_commands import STATUS_SECTIONS


def _slots(status: HostStatus) -> str:
    controller = status.controller
    if controller is None:
        return str(status.limit)
    found = f", server runs ~{controller.slots}" if controller.slots else ""
    return f"{status.limit} ({controller.phase}{found})"


def hosts_table(runtime: Runtime) -> Table:
    rows = []
    for status in runtime.pool.hosts():
        controller = status.controller
        rows.append(
            (
                status.host,
                "up" if status.up else "down (skipped by routing)",
                _slots(status),
                f"{status.running} running, {status.waiting} waiting",
                str(status.admitted),
                str(controller.busy if controller else 0),
                controller.reason if controller else "",
            )
        )
    return Table(
        ("host", "state", "in flight allowed", "now", "admitted", "503s", "why"),
        tuple(rows),
        title="Servers",
    )


def _status_section(runtime: Runtime) -> tuple[str, object]:
    return "Servers", hosts_table(runtime)


STATUS_SECTIONS.append(_status_section)


@subcommand("hosts", "the pool of servers: hosts | hosts add URL | hosts rm URL")
def hosts(line: str, shell: Any, runtime: Runtime) -> object:
    """Show the servers in use with their learned slots, or add/remove one.

    Without ``OLLAMA_NB_HOSTS`` the only server is ``OLLAMA_HOST``; adding a
    second one makes a pool that routes each request to a server that has the
    model (preferring one where it is loaded), then to the least busy.
    """
    words = line.split()
    if not words:
        return hosts_table(runtime)
    if len(words) != 2 or words[0] not in ("add", "rm"):
        raise UsageError("Usage: %ollama hosts [add URL | rm URL]")
    action, url = words
    current = runtime.settings.host_urls
    if action == "add":
        runtime.configure(hosts=[*current, url])
        note = f"Added {runtime.settings.host_urls[-1]}."
    else:
        gone = parse_ollama_host(url, variable="URL").base_url
        remaining = [u for u in current if u != gone]
        if len(remaining) == len(current):
            raise UsageError(f"{url} is not in the pool ({', '.join(current)}).")
        if not remaining:
            raise UsageError("The last server cannot be removed; change it with `%ollama host`.")
        single = remaining == [runtime.settings.host]
        runtime.configure(hosts=[] if single else remaining)
        note = f"Removed {gone}."
    return Sections((Notice(note, "note"), hosts_table(runtime)))
