"""environment.yml installs what pyproject.toml asks for: every dependency, every extra."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    """The PEP 503 name of a requirement (``dask[dataframe]>=1`` -> ``dask``)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    names = {_name(r) for r in project["dependencies"]}
    names |= {_name(r) for group in extras.values() for r in group}
    return names - {_name(project["name"])}


def _environment_packages() -> tuple[set[str], list[str]]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert environment["channels"] == ["conda-forge"]
    names: set[str] = set()
    pip: list[str] = []
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):
            pip = entry["pip"]
            names |= {_name(r) for r in pip if not r.startswith("-")}
        else:
            names.add(_name(entry))
    return names, pip


def test_environment_lists_every_dependency_of_pyproject() -> None:
    listed, _ = _environment_packages()
    missing = sorted(_pyproject_requirements() - listed)
    assert not missing, f"environment.yml lacks {missing}"


def test_environment_installs_the_project_itself_last() -> None:
    _, pip = _environment_packages()
    assert pip[-1] == "-e ."


def test_pins_agree_between_the_two_files() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = {
        _name(r): r.split("==", 1)[1].split()[0]
        for group in [project["dependencies"], *project["optional-dependencies"].values()]
        for r in group
        if "==" in r
    }
    text = (ROOT / "environment.yml").read_text()
    for name, version in pinned.items():
        assert re.search(rf"{re.escape(name)}\s*==\s*{re.escape(version)}", text, re.I), name
