"""Notebook surfaces: magics, display helpers, the ``%ollama`` subcommand table."""

from .extension import load_ipython_extension, unload_ipython_extension

__all__ = ["load_ipython_extension", "unload_ipython_extension"]
