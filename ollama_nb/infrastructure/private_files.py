"""Private files: the data directory 0700 and every file in it 0600.

The data directory holds prompts and replies (metrics history, batch
checkpoints), request logs and the server's log and state. Whichever part of
ollama_nb writes first used to create the folder with the default umask
(0755), so files were world-readable on a shared machine. Every writer now goes
through these functions: folders are created 0700, files 0600, and a folder or
file an older version (or the user) left looser is tightened once, with one
line saying so. Modes are POSIX only: on Windows the per-user folder's ACL
already keeps other users out, and ``chmod`` could only toggle read-only.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger("ollama_nb")

DIR_MODE = 0o700
FILE_MODE = 0o600
_POSIX = os.name == "posix"


def private_dir(path: Path, *, within: Path | None = None, tighten: bool = True) -> Path:
    """Create ``path`` (missing levels 0700) and tighten it if group or others can get in.

    ``within`` (an ancestor, usually the data directory) is tightened too, with
    every level between it and ``path``; folders above ``within`` and, without
    it, above ``path`` are the user's and keep their modes. ``tighten=False``
    only creates: for a folder the user chose (a checkpoint's), which may be
    shared on purpose.
    """
    missing = []
    level = path
    while not level.exists():
        missing.append(level)
        if level.parent == level:
            break
        level = level.parent
    for folder in reversed(missing):
        # Another kernel may make it first: it is then tightened below like any other.
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=DIR_MODE)
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
    for folder in _levels(path, within) if tighten else ():
        _tighten(folder, DIR_MODE, "folder")
    return path


def _levels(path: Path, within: Path | None) -> list[Path]:
    if within is None:
        return [path]
    try:
        relative = path.relative_to(within)
    except ValueError:
        return [path]
    levels = [within]
    for part in relative.parts:
        levels.append(levels[-1] / part)
    return levels


def open_private(path: Path, flags: int) -> int:
    """``os.open`` that creates ``path`` 0600 and tightens an existing looser file.

    The caller's folder must exist (see :func:`private_dir`). ``O_CREAT`` is added.
    """
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    if _POSIX:
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            if mode & ~FILE_MODE:
                os.fchmod(fd, FILE_MODE)
                _notice(path, mode, FILE_MODE, "file")
        except OSError:
            os.close(fd)
            raise
    return fd


def touch_private(path: Path) -> Path:
    """Make sure ``path`` exists and is 0600 (for files another library opens, e.g. SQLite)."""
    os.close(open_private(path, os.O_RDWR))
    return path


def _partial(path: Path) -> Path:
    """A name beside ``path`` that no other writer uses: not the pid alone, since two
    threads of one process (a Dask worker's partitions) may write the same file at once."""
    return path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")


def write_private_text(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``; the new file is 0600 from its first byte."""
    partial = _partial(path)
    fd = open_private(partial, os.O_WRONLY | os.O_TRUNC)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


def private_secret(path: Path, size: int = 32) -> bytes:
    """A random secret kept in ``path`` (0600), made on first use; the same bytes after.

    The file appears whole or not at all (written aside, then hard-linked into
    place, which fails if another kernel's got there first): two kernels making it at
    once both end up with the first one's. A short file (damaged) is replaced.
    """
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        secret = b""
    if len(secret) >= size:
        return secret
    private_dir(path.parent)
    partial = _partial(path)
    fd = open_private(partial, os.O_WRONLY | os.O_TRUNC)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(size))
        if secret:
            os.replace(partial, path)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path.read_bytes()


def _tighten(path: Path, wanted: int, kind: str) -> None:
    if not _POSIX:
        return
    try:
        info = path.stat()
        mode = stat.S_IMODE(info.st_mode)
        if not stat.S_ISDIR(info.st_mode):
            return  # something else in the way: the writer reports it
        if not mode & ~wanted or info.st_uid != os.getuid():
            return  # already private, or not ours to change (a shared parent we were given)
        os.chmod(path, wanted)
    except OSError:
        return  # a read-only mount: the writer that needs it reports the real problem
    _notice(path, mode, wanted, kind)


def _notice(path: Path, was: int, now: int, kind: str) -> None:
    log.warning(
        "ollama_nb: made the %s %s private (%04o -> %04o); it holds prompts, replies or logs.",
        kind,
        path,
        was,
        now,
    )
