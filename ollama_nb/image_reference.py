"""What a person types to name an image, turned into an image source.

People type ``--image photo.jpg``, ``--image 'photo.jpg'``, ``--image ~/shot.png`` or
``--image pil``: a path is the first thing they reach for, a variable the second. One rule
for every surface that takes a typed name (``%%chat --image``, the chat panel's Attach,
string items in the Python API's ``images=``):

1. a name or expression that evaluates in the notebook wins (a string result that names
   an existing file becomes that file);
2. otherwise an existing file path, quoted or not, with ``~`` expanded;
3. otherwise one line saying that neither worked.

Without a namespace (the Python API) step 1 is skipped, and a string that is not a file
goes on unchanged: it may be base64, a ``data:`` URL or a URL, which the pipeline reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .domain import InvalidInputError

Evaluate = Callable[[str], object]


def _existing_file(text: str) -> Path | None:
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "'\"":
        stripped = stripped[1:-1]
    if not stripped or len(stripped) > 4096 or "\n" in stripped or "\x00" in stripped:
        return None
    try:
        path = Path(stripped).expanduser()
        return path if path.is_file() else None
    except (OSError, ValueError):  # names the OS rejects
        return None


def resolve_image(text: str, evaluate: Evaluate | None = None, *, label: str = "") -> object:
    """The image source ``text`` names (see the module docstring for the rule).

    ``evaluate`` evaluates an expression in the user's namespace (IPython's ``shell.ev``);
    ``label`` prefixes the error (``--image``) so it reads like the command typed.
    """
    problem = ""
    if evaluate is not None:
        try:
            value = evaluate(text)
        except Exception as exc:  # any failure to evaluate means "not an expression"
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if isinstance(value, str):
                return _existing_file(value) or value
            return value
    path = _existing_file(text)
    if path is not None:
        return path
    if evaluate is None:
        return text
    shown = f"{label} {text}".strip()
    where = Path(text.strip().strip("'\"")).expanduser().absolute()
    raise InvalidInputError(
        f"{shown}: not a variable or expression ({problem}) and no file at {where}.",
        hint="Name an image variable, or give the path of an image file.",
    )
