"""Notebook surfaces: magics, display helpers, the ``%ollama`` subcommand table.

``%load_ext ollama_nb`` loads ``extension``; nothing is imported here, so a
widget that reuses a display helper does not pull in every magic.
"""
