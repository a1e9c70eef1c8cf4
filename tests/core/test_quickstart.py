"""``python -m ollama_nb.quickstart`` from any directory: it finds the shipped notebook, and
a notebook it cannot run is one line (exit 1) before any server starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ollama_nb.domain import ConfigurationError
from ollama_nb.quickstart import check_notebook, quickstart_notebook


def test_the_shipped_notebook_is_found_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    found = quickstart_notebook()
    assert found.is_absolute() and found.name == "01_quickstart.ipynb"
    check_notebook(found)  # a real notebook: no error
    assert json.loads(found.read_text())["cells"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        ("{not json", "is not a Jupyter notebook"),
        ('{"cells": 3}', "is not a Jupyter notebook"),
        (b"\xff\xfe", "Cannot read the notebook"),
    ],
)
def test_a_notebook_that_cannot_run_is_refused(
    tmp_path: Path, content: str | bytes | None, expected: str
) -> None:
    path = tmp_path / "nb.ipynb"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigurationError, match=expected):
        check_notebook(path)


def test_the_command_says_so_in_one_line_from_an_empty_directory(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ollama_nb.quickstart", "--notebook", "missing.ipynb"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "Error: The notebook missing.ipynb does not exist. Pass --notebook PATH, or reinstall "
        "ollama_nb to restore the shipped quickstart."
    ]
