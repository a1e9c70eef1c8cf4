"""Re-execute the example notebooks against a stand-in and store their new outputs.

nbval (``python -m pytest notebooks``) compares each notebook's stored outputs with a
fresh run against the stand-in that ``notebooks/conftest.py`` starts. When a change
alters what a cell shows on purpose (a new rendering, a new column), the stored
outputs must be recorded again under the same conditions, or nbval fails on the
difference. This script reproduces those conditions: one stand-in at the same simulated
speed, a fresh data directory and a reset stand-in per notebook, and streamed displays
saved as their final update (nbclient applies ``update_display_data`` as a saved
notebook has it).

    python scripts/record_notebooks.py                       # every notebook
    python scripts/record_notebooks.py notebooks/02_vision.ipynb
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from ollama_nb.testing import StandinConfig, StandinHandle, StandinServer

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def record(paths: list[Path], server: StandinServer) -> None:
    for path in paths:
        os.environ["OLLAMA_NB_DATA_DIR"] = tempfile.mkdtemp(prefix="ollama_nb_notebook_")
        handle = StandinHandle(server.url)
        handle.reset()
        handle.close()
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(
            notebook,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
        nbformat.write(notebook, path)
        print(f"recorded {path.name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(NOTEBOOKS.glob("*.ipynb"))
    # The same simulated speed as notebooks/conftest.py, so timings read alike.
    server = StandinServer(StandinConfig(tokens_per_second=400.0)).start()
    os.environ["OLLAMA_HOST"] = server.host
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        record([p.resolve() for p in paths], server)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
