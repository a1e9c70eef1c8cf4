"""Run one prompt over every row of a DataFrame: concurrent, resumable, structured.

Importing this package registers the ``df.ollama`` accessor (and imports pandas).

    result = df.ollama.chat("Sentiment of: {review}", model="llama3.2", checkpoint="run.db")
    result = ollama_nb.batch(df, "Sentiment of: {review}", schema=Review)
"""

from ..application.reply_schema import ReplyColumns, ReplySchema, ReplyValidationError
from . import accessor as _accessor  # registers df.ollama
from .api import SUMMARY_KEY, BatchArgs, abatch, batch
from .compare import CompareArgs, compare
from .comparison import Comparison
from .embed import EmbedArgs, aembed_column, embed_column
from .results import BatchSummary
from .template import PromptTemplate

__all__ = [
    "SUMMARY_KEY",
    "BatchArgs",
    "BatchSummary",
    "CompareArgs",
    "Comparison",
    "EmbedArgs",
    "PromptTemplate",
    "ReplyColumns",
    "ReplySchema",
    "ReplyValidationError",
    "abatch",
    "aembed_column",
    "batch",
    "compare",
    "embed_column",
]

del _accessor
