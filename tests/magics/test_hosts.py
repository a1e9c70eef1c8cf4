# mypy: disable-error-code="no-untyped-call"
"""``%ollama hosts`` and the per-server rows of ``%ollama status``."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError

from ollama_nb.presentation.display import Sections, Table

from .conftest import Shell, make_shell


def test_status_shows_each_servers_allowed_slots_and_why(shell: Shell) -> None:
    shell.run("%%chat llama3.2\nhello")
    text = repr(shell.run("%ollama status"))
    assert "Servers" in text and shell.standin.url in text
    assert "slow start" in text and "slots unknown" in text


def test_hosts_add_and_rm_build_and_dissolve_a_pool(
    shell: Shell, ollama_standin_factory: Any
) -> None:
    second = ollama_standin_factory()
    table = shell.run("%ollama hosts")
    assert isinstance(table, Table) and [r[0] for r in table.rows] == [shell.standin.url]
    added = shell.run(f"%ollama hosts add {second.host}")
    assert isinstance(added, Sections)
    assert shell.runtime.settings.hosts == [shell.standin.url, second.url]
    assert [m.host for m in shell.runtime.pool.members] == [shell.standin.url, second.url]
    shell.run("%%chat llama3.2\nanyone")
    shell.run(f"%ollama hosts rm {second.url}")
    assert shell.runtime.settings.hosts == []  # back to OLLAMA_HOST alone
    assert [m.host for m in shell.runtime.pool.members] == [shell.standin.url]


def test_hosts_refuses_to_remove_the_last_server_or_an_unknown_one(shell: Shell) -> None:
    with pytest.raises(UsageError, match="not in the pool"):
        shell.run("%ollama hosts rm 127.0.0.1:1")
    with pytest.raises(UsageError, match="last server"):
        shell.run(f"%ollama hosts rm {shell.standin.url}")
    with pytest.raises(UsageError, match="Usage"):
        shell.run("%ollama hosts drop x")


def test_the_pool_comes_from_ollama_nb_hosts(
    ollama_standin: Any, ollama_standin_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = ollama_standin_factory()
    monkeypatch.setenv("OLLAMA_NB_HOSTS", f"{ollama_standin.url},{second.host}")
    for shell in make_shell(ollama_standin.url, ollama_standin):
        table = shell.run("%ollama hosts")
        assert [r[0] for r in table.rows] == [ollama_standin.url, second.url]
