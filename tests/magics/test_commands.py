# mypy: disable-error-code="no-untyped-call"
"""Every ``%ollama`` subcommand through a real IPython shell against the stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.error import UsageError

from ollama_nb.domain import OllamaNbError
from ollama_nb.notebook import core_commands
from ollama_nb.presentation.display import Notice, Sections, Table

from .conftest import Shell, dead_url, make_shell


def test_status_reports_server_queue_and_loaded_models(shell: Shell) -> None:
    shell.run("%%chat llama3.2\nwarm up")
    status = shell.run("%ollama status")
    assert isinstance(status, Sections)
    text = repr(status)
    assert "reachable        yes" in text and "0.13.0-standin" in text
    assert "circuit breaker  closed" in text and "1 slots" in text
    assert "llama3.2:latest" in text and "<progress" not in status._repr_html_()


def test_status_with_server_down(ollama_standin) -> None:  # type: ignore[no-untyped-def]
    url = dead_url()
    for down in make_shell(url, ollama_standin):
        text = repr(down.run("%ollama status"))
        assert "reachable        no" in text and url in text


@pytest.fixture
def extra_section() -> Iterator[None]:
    def section(runtime: object) -> tuple[str, object]:
        return "Server process", "managed by test"

    core_commands.STATUS_SECTIONS.append(section)
    yield
    core_commands.STATUS_SECTIONS.remove(section)


def test_status_includes_contributed_sections(shell: Shell, extra_section: None) -> None:
    assert "managed by test" in repr(shell.run("%ollama status"))


def test_models_lists_capabilities(shell: Shell) -> None:
    table = shell.run("%ollama list")
    assert isinstance(table, Table)
    rows = {row[0]: row for row in table.rows}
    assert rows["gemma3:4b"][-1] == "vision"
    assert "thinking" in rows["qwen3:0.6b"][-1]
    assert rows["nomic-embed-text:latest"][-1] == "embedding"
    assert "<table>" in table._repr_html_()


def test_ps_and_show(shell: Shell) -> None:
    assert shell.run("%ollama ps").rows == ()
    shell.run("%%chat llama3.2\nload it")
    assert shell.run("%ollama ps").rows[0][0] == "llama3.2:latest"
    info = dict(shell.run("%ollama show qwen3:0.6b").rows)
    assert "thinking" in info["capabilities"] and info["family"] == "qwen3"


def test_show_unknown_model_is_one_line(shell: Shell) -> None:
    with pytest.raises(OllamaNbError) as failed:
        shell.run("%ollama show llama3.3")
    (line,) = failed.value._render_traceback_()
    assert "'llama3.3' is not installed" in line
    with pytest.raises(UsageError, match="Usage: %ollama show NAME"):
        shell.run("%ollama show")


def test_pull_shows_progress_then_model_is_installed(shell: Shell) -> None:
    done = shell.run("%ollama pull moondream")
    assert isinstance(done, Notice) and "Pulled moondream" in done.text
    progress = [o for o in shell.out.outputs if o.update]
    assert progress and "Pulling moondream" in progress[-1].data["text/plain"]
    assert "<progress" in progress[-1].data["text/html"]
    assert any(r[0] == "moondream:latest" for r in shell.run("%ollama models").rows)


def test_pull_unknown_reports_server_error(shell: Shell) -> None:
    with pytest.raises(OllamaNbError) as failed:
        shell.run("%ollama pull no-such-model-xyz")
    assert len(failed.value._render_traceback_()) == 1


def test_rm(shell: Shell) -> None:
    assert "Deleted" in shell.run("%ollama rm qwen3:0.6b").text
    assert all(r[0] != "qwen3:0.6b" for r in shell.run("%ollama models").rows)


def test_use_sets_default_and_warns_when_missing(shell: Shell) -> None:
    shell.run("%ollama use qwen3:0.6b")
    assert shell.runtime.settings.default_model == "qwen3:0.6b"
    shell.run("%chat plain question")
    assert shell.chat_requests()[-1]["model"] == "qwen3:0.6b"
    shell.run("%ollama use phi4-mini")
    assert "`%ollama pull phi4-mini`" in shell.out.texts()


def test_host_shows_and_changes_shared_setting(shell: Shell) -> None:
    assert "reachable" in shell.run("%ollama host").text
    url = dead_url()
    notice = shell.run(f"%ollama host {url}")
    assert "not reachable" in notice.text
    assert shell.runtime.settings.host == url


def test_config_shows_and_sets(shell: Shell) -> None:
    table = shell.run('%ollama config read_timeout_s=60 default_options={"num_ctx":2048}')
    values = dict(table.rows)
    assert values["read_timeout_s"] == "60.0" and values["chat_token_budget"] == "8192"
    assert shell.runtime.settings.default_options == {"num_ctx": 2048}
    with pytest.raises(OllamaNbError, match="Unknown setting 'nonsense'"):
        shell.run("%ollama config nonsense=1")
    with pytest.raises(UsageError, match="positive number"):
        shell.run("%ollama config chat_token_budget=-4")


def test_history_and_reset(shell: Shell) -> None:
    assert shell.run("%ollama history").empty == "No turns yet."
    shell.run("%%chat llama3.2\none", cell_id="1")
    shell.run("%%chat\ntwo", cell_id="2")
    shell.run("%%chat llama3.2 -c other\nthree", cell_id="3")
    table = shell.run("%ollama history -n 1")
    assert [r[1] for r in table.rows] == ["two"] and "other" in table.footer
    assert [r[1] for r in shell.run("%ollama history -c other").rows] == ["three"]
    assert "Forgot conversation 'other'" in shell.run("%ollama reset other").text
    assert shell.run("%ollama reset other") is None
    assert "Forgot 1 conversation" in shell.run("%ollama reset --all").text
    assert shell.run("%ollama history").rows == ()


def test_help_lists_every_feature_and_unknown_is_refused(shell: Shell) -> None:
    help_text = repr(shell.run("%ollama help"))
    assert "%ollama pull" in help_text and "%%chat" in help_text
    for feature in ("start", "tune", "metrics", "perf", "panel", "backend"):
        assert f"%ollama {feature}" in help_text  # every feature ships: nothing is "not installed"
    assert "issue" not in help_text.lower()
    with pytest.raises(UsageError, match="Unknown subcommand 'frobnicate'"):
        shell.run("%ollama frobnicate")


def test_magic_help_is_generated(shell: Shell) -> None:
    doc = shell.ip.find_line_magic("chat").__doc__
    assert "--temperature" in doc and "--schema" in doc


def test_unload_removes_magics(shell: Shell) -> None:
    shell.run("%unload_ext ollama_nb")
    assert shell.ip.find_cell_magic("chat") is None
    assert shell.ip.find_line_magic("ollama") is None
    shell.run("%load_ext ollama_nb")
    assert shell.ip.find_cell_magic("chat") is not None
