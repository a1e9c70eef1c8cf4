"""Where a request came from: the notebook path when the front end says, else a project label."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_nb.telemetry.context import notebook_path, project_label


def test_vs_code_namespace_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JPY_SESSION_NAME", "from-jupyter.ipynb")
    namespace = {"__vsc_ipynb_file__": "/home/me/work/speed.ipynb", "__session__": "other"}
    assert notebook_path(namespace) == "/home/me/work/speed.ipynb"


def test_ipykernel_session_variable_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JPY_SESSION_NAME", "from-env.ipynb")
    assert notebook_path({"__session__": "lab/analysis.ipynb"}) == "lab/analysis.ipynb"
    assert notebook_path({}) == "from-env.ipynb"


def test_no_trace_means_no_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert notebook_path({"__vsc_ipynb_file__": "  "}) is None


def test_project_label_prefers_the_setting_then_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "llm-experiments"
    assert project_label("  thesis ", cwd=folder) == "thesis"
    assert project_label(None, cwd=folder) == "llm-experiments"
    assert project_label("", cwd=folder) == "llm-experiments"
