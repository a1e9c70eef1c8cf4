from __future__ import annotations

import pytest

from ollama_nb.testing import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
