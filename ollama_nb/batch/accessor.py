"""``df.ollama``: the batch functions as DataFrame methods.

Registered when ``ollama_nb.batch`` is imported. The methods take the same
typed arguments as ``batch``/``embed_column`` (``RowArgs``, ``EmbedArgs``:
shown by ``df.ollama.chat?`` and tab completion) and run the same code with the
frame filled in, so the accessor and the functions can never disagree.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import pandas as pd

from ..runtime import get_runtime
from .api import BatchArgs, RowArgs, Template, arun_batch, run_batch
from .arguments import keyword_form, keyword_form3
from .compare import CompareArgs, arun_compare, run_compare
from .comparison import Comparison
from .embed import EmbedArgs, arun_embed, run_embed
from .retry import retry


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

    @keyword_form3(CompareArgs)
    async def acompare(
        self, models: Sequence[str], template: Template, args: CompareArgs
    ) -> Comparison:
        """``compare`` for async cells: ``cmp = await df.ollama.acompare(models, "{q}")``."""
        return await arun_compare(self._frame, models, template, args, get_runtime())

    def retry(self, template: Template | None = None, **changes: Any) -> pd.DataFrame:
        """Send again only the rows whose ``error`` is set; every other row stays as it is.

        Works on a batch result from this kernel or one read back from parquet
        after a restart (the call is kept in ``attrs``). ``changes`` override the
        recorded arguments (``retries=5``, ``model=...``); a prompt function must be
        passed again as ``template`` after a restart.
        """
        runtime = get_runtime()
        return retry(
            self._frame,
            lambda frame, again, args: run_batch(frame, again, args, runtime),
            BatchArgs,
            template=template,
            **changes,
        )

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
