"""Which notebook and project a request came from.

A kernel does not officially know its notebook, but the common front ends leave
a trace: Jupyter Server starts kernels with ``JPY_SESSION_NAME`` (the notebook's
path relative to the server root, which ipykernel also copies to ``__session__``
in the user namespace), and VS Code puts ``__vsc_ipynb_file__`` in the user
namespace. When none is there (a script, a batch job, a console) the project
label is the configured ``project`` setting, else the current folder's name, so
every row still says where it came from.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

#: User-namespace variables front ends set to the notebook's path, most precise first.
_NAMESPACE_KEYS = ("__vsc_ipynb_file__", "__session__")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where events of this process come from."""

    project: str
    notebook: str | None


def _user_namespace() -> dict[str, Any]:
    """The IPython user namespace, when this process runs an IPython shell."""
    if "IPython" not in sys.modules:  # not a kernel or IPython session: nothing to ask
        return {}
    from IPython.core.getipython import get_ipython

    shell = cast(Callable[[], object], get_ipython)()
    namespace = getattr(shell, "user_ns", None)
    return namespace if isinstance(namespace, dict) else {}


def notebook_path(namespace: dict[str, Any] | None = None) -> str | None:
    """The running notebook's path when the front end told the kernel, else None."""
    ns = _user_namespace() if namespace is None else namespace
    for key in _NAMESPACE_KEYS:
        value = ns.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    session = os.environ.get("JPY_SESSION_NAME", "").strip()
    return session or None


def project_label(configured: str | None, cwd: Path | None = None) -> str:
    """The configured project, else the current folder's name."""
    if configured and configured.strip():
        return configured.strip()
    folder = cwd or Path.cwd()
    return folder.name or str(folder)


def current_origin(configured_project: str | None) -> Origin:
    return Origin(project=project_label(configured_project), notebook=notebook_path())
