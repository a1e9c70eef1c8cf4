"""``--stress``: the tests run beside CPU-bound processes, as on a busy laptop or CI machine.

A test that depends on timing or scheduling passes on an idle machine and fails
on the user's. ``--stress`` starts ``--stress-load`` busy loops (two by default,
as many as this project's small CI box has cores) for the whole session, so the
tests' threads, the stand-ins and the Dask workers are all starved at random
moments. With pytest-repeat's ``--count`` each test runs several times in a row:

    python -m pytest -m concurrency --stress --count 3 -p no:randomly

Tests marked ``concurrency`` (threads, the loop bridge, interrupts, gates,
controllers, pools, Dask bounds) are the ones CI runs this way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest

# Spins until its parent is gone: a session killed by pytest-timeout (os._exit, no
# finalisers) must not leave busy loops behind to slow whatever runs next.
_BUSY_LOOP = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    pass"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stress", "run the tests beside CPU-bound processes")
    group.addoption(
        "--stress",
        action="store_true",
        help="start CPU-bound load generators for the whole session (see tests/conftest.py)",
    )
    group.addoption(
        "--stress-load",
        type=int,
        default=2,
        metavar="N",
        help="how many busy-loop processes --stress starts (default 2)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # No test writes into the user's own data directory (metrics, response cache, keys): a
    # runtime built without a data_dir, and every kernel, Lab or server a test starts, inherit
    # this private folder instead. A test about the default location sets its own environment.
    os.environ["OLLAMA_NB_DATA_DIR"] = tempfile.mkdtemp(prefix="ollama_nb_tests_")
    config.addinivalue_line(
        "markers",
        "concurrency: threads, interrupts, gates, pools or Dask bounds; run under --stress in CI",
    )


@pytest.fixture(scope="session", autouse=True)
def _load_generators(request: pytest.FixtureRequest) -> Iterator[None]:
    if not request.config.getoption("--stress"):
        yield
        return
    count = request.config.getoption("--stress-load")
    busy = [subprocess.Popen([sys.executable, "-c", _BUSY_LOOP]) for _ in range(count)]
    try:
        yield
    finally:
        for process in busy:
            process.kill()
        for process in busy:
            process.wait()


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ.pop("OLLAMA_NB_DATA_DIR", ""), ignore_errors=True)
