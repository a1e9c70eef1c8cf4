"""``df.ollama``: the batch functions as DataFrame methods.

Registered when ``ollama_nb.batch`` is imported. The methods take the same
typed arguments as ``batch``/``embed_column`` (``RowArgs``, ``EmbedArgs``:
shown by ``df.ollama.chat?`` and tab completion) and run the same code with the
frame filled in, so the accessor and the functions can never disagree.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import pandas as pd

from ..runtime import get_runtime
from .api import RowArgs, Template, arun_batch, run_batch
from .arguments import keyword_form, keyword_form3
from .compare import CompareArgs, run_compare
from .comparison import Comparison
from .embed import EmbedArgs, arun_embed, run_embed


@pd.api.extensions.register_dataframe_accessor("ollama")
class OllamaAccessor:
    """``df.ollama.chat("Classify: {review}")`` and friends; see ``ollama_nb.batch``."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    @keyword_form(RowArgs)
    def chat(self, template: Template, args: RowArgs) -> pd.DataFrame:
        """One ``/api/chat`` request per row; arguments as ``ollama_nb.batch``."""
        return run_batch(self._frame, template, args.of_kind("chat"), get_runtime())

    @keyword_form(RowArgs)
    def generate(self, template: Template, args: RowArgs) -> pd.DataFrame:
        """One ``/api/generate`` request per row; arguments as ``ollama_nb.batch``."""
        return run_batch(self._frame, template, args.of_kind("generate"), get_runtime())

    @keyword_form3(CompareArgs)
    def compare(self, models: Sequence[str], template: Template, args: CompareArgs) -> Comparison:
        """The same rows through several models, side by side; see ``ollama_nb.batch.compare``."""
        return run_compare(self._frame, models, template, args, get_runtime())

    @keyword_form(EmbedArgs)
    def embed(self, column: Hashable, args: EmbedArgs) -> pd.DataFrame:
        """A vector per row of ``column``, in a new ``embedding`` column."""
        return run_embed(self._frame, column, args, get_runtime())

    @keyword_form(RowArgs)
    async def achat(self, template: Template, args: RowArgs) -> pd.DataFrame:
        """``chat`` for async cells: ``await df.ollama.achat(...)``."""
        return await arun_batch(self._frame, template, args.of_kind("chat"), get_runtime())

    @keyword_form(RowArgs)
    async def agenerate(self, template: Template, args: RowArgs) -> pd.DataFrame:
        """``generate`` for async cells."""
        return await arun_batch(self._frame, template, args.of_kind("generate"), get_runtime())

    @keyword_form(EmbedArgs)
    async def aembed(self, column: Hashable, args: EmbedArgs) -> pd.DataFrame:
        """``embed`` for async cells."""
        return await arun_embed(self._frame, column, args, get_runtime())
