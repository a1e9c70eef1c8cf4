"""The reliability table: each test here adds a row (fault, expected, observed).

The rows are printed together at the end of the run by ``pytest_terminal_summary``,
so one ``pytest tests/reliability`` shows how the product behaves under every
fault the stand-in (and the OS) can produce, and that nothing was lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(slots=True)
class Row:
    fault: str
    expected: str
    observed: str = "(not reached)"
    nothing_lost: str = "(not checked)"
    outcome: str = "?"


_rows: list[Row] = []
_open_rows: dict[str, Row] = {}


class Table:
    """Handed to a test: ``expect`` first, ``saw`` once the behaviour is observed.

    The row is added whatever happens, so a failing test shows as FAIL with
    what it got to, never as a missing row.
    """

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid

    def expect(self, fault: str, expected: str) -> None:
        _open_rows[self.nodeid] = Row(fault, expected)

    def saw(self, observed: str, nothing_lost: str) -> None:
        row = _open_rows[self.nodeid]
        row.observed, row.nothing_lost = observed, nothing_lost


@pytest.fixture
def table(request: pytest.FixtureRequest) -> Table:
    return Table(request.node.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and item.nodeid in _open_rows:
        row = _open_rows.pop(item.nodeid)
        row.outcome = "pass" if report.passed else ("skip" if report.skipped else "FAIL")
        _rows.append(row)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _rows:
        return
    widths = [
        max(len(header), *(len(getattr(row, field)) for row in _rows))
        for header, field in (
            ("fault", "fault"),
            ("expected", "expected"),
            ("observed", "observed"),
            ("nothing lost", "nothing_lost"),
            ("test", "outcome"),
        )
    ]
    headers = ("fault", "expected", "observed", "nothing lost", "test")
    terminalreporter.section("reliability: faults, expected and observed behaviour")
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    terminalreporter.write_line(line)
    terminalreporter.write_line("-+-".join("-" * w for w in widths))
    for row in _rows:
        cells = (row.fault, row.expected, row.observed, row.nothing_lost, row.outcome)
        terminalreporter.write_line(
            " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
        )
