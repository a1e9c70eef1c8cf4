"""``df.ollama``: the batch functions as DataFrame methods.

Registered when ``ollama_nb.batch`` is imported. The methods only forward to
``batch``/``embed_column`` with the frame filled in, so the accessor and the
function can never disagree.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import pandas as pd

from .api import Template, abatch, batch
from .compare import compare
from .comparison import Comparison
from .embed import aembed_column, embed_column


@pd.api.extensions.register_dataframe_accessor("ollama")
class OllamaAccessor:
    """``df.ollama.chat("Classify: {review}")`` and friends; see ``ollama_nb.batch``."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def chat(self, template: Template, **kwargs: Any) -> pd.DataFrame:
        """One ``/api/chat`` request per row; arguments as ``ollama_nb.batch``."""
        return batch(self._frame, template, kind="chat", **kwargs)

    def generate(self, template: Template, **kwargs: Any) -> pd.DataFrame:
        """One ``/api/generate`` request per row; arguments as ``ollama_nb.batch``."""
        return batch(self._frame, template, kind="generate", **kwargs)

    def compare(self, models: list[str], template: Template, **kwargs: Any) -> Comparison:
        """The same rows through several models, side by side; see ``ollama_nb.batch.compare``."""
        return compare(self._frame, models, template, **kwargs)

    def embed(self, column: Hashable, **kwargs: Any) -> pd.DataFrame:
        """A vector per row of ``column``, in a new ``embedding`` column."""
        return embed_column(self._frame, column, **kwargs)

    async def achat(self, template: Template, **kwargs: Any) -> pd.DataFrame:
        """``chat`` for async cells: ``await df.ollama.achat(...)``."""
        return await abatch(self._frame, template, kind="chat", **kwargs)

    async def agenerate(self, template: Template, **kwargs: Any) -> pd.DataFrame:
        return await abatch(self._frame, template, kind="generate", **kwargs)

    async def aembed(self, column: Hashable, **kwargs: Any) -> pd.DataFrame:
        return await aembed_column(self._frame, column, **kwargs)
