"""A durable record of finished rows, so a crashed or interrupted batch resumes where it stopped.

SQLite in WAL mode: each finished row is one small committed transaction, which
survives the process being killed (the kernel dying, SIGKILL, the stop button)
without an fsync per row. Rows are keyed by a hash of everything that decides
the answer (request kind, model, options, format, system prompt, the rendered
prompt and the image bytes), so re-running the same call skips finished rows,
while a change of model or options is simply a different key. Only successful
replies are stored: a row that failed is tried again on the next run.

A checkpoint is a file we read back, so it is trusted only as far as it proves
itself. Its location is a plain path (a ``file:`` URI would be opened by SQLite as
a URI, somewhere else, with other modes) and never a symlink; the file is created
0600 in a folder created 0700. Each row carries the model's digest, the request's
hash and an HMAC over both and the reply, keyed by a secret only this user can
read (``RowSigner``). A row that fails any check (unreadable, edited, copied under
another request, made by another model build or by someone without the secret)
is counted in ``rejected`` and re-run, never served and never fatal.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import sqlite3
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..domain import InvalidInputError
from ..infrastructure.private_files import open_private, private_dir

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    key TEXT PRIMARY KEY,
    reply TEXT NOT NULL,
    finished_at REAL NOT NULL
)
"""
#: Columns added when rows began to prove themselves; older rows lack them and re-run.
_ADDED_COLUMNS = (("model_digest", "TEXT"), ("checksum", "TEXT"))


@dataclass(frozen=True, slots=True)
class StoredReply:
    """What a row needs to be rebuilt without asking the model again."""

    text: str
    model: str
    done_reason: str | None
    prompt_tokens: int | None
    eval_tokens: int | None
    latency_s: float | None
    ttft_s: float | None
    tokens_per_s: float | None
    truncated: bool = False  # absent from checkpoints written before the context guard
    host: str | None = None  # absent in checkpoints written before pools existed


def row_key(
    *,
    kind: str,
    model: str,
    options: Mapping[str, Any],
    format: object,
    system: str | None,
    prompt: str,
    image_digests: Sequence[str],
    think: object = None,
) -> str:
    """A stable hash of everything that decides a row's answer."""
    identity = {
        "kind": kind,
        "model": model,
        "options": dict(options),
        "format": format,
        "system": system,
        "prompt": prompt,
        "images": list(image_digests),
        "think": think,
    }
    text = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class RowSigner:
    """Seals and checks rows: HMAC-SHA256 over request hash, model digest and reply.

    ``secret`` is per user (see ``Runtime.checkpoint_secret``), so a row written by
    anyone who cannot read it does not verify. ``model_digest`` is the digest of
    the model the batch runs now ("" when the server did not say); a row made by
    another build of the model does not verify either.
    """

    secret: bytes
    model_digest: str = ""

    def seal(self, key: str, reply_json: str) -> str:
        message = json.dumps([key, self.model_digest, reply_json], ensure_ascii=False)
        return hmac.new(self.secret, message.encode("utf-8"), hashlib.sha256).hexdigest()

    def opens(self, key: str, digest: object, reply_json: object, checksum: object) -> bool:
        if not isinstance(reply_json, str) or not isinstance(checksum, str):
            return False
        if digest != self.model_digest:
            return False
        return hmac.compare_digest(self.seal(key, reply_json), checksum)


def _reply_from(reply_json: str) -> StoredReply | None:
    """The stored reply, or None when the sealed text still does not make one."""
    try:
        data = json.loads(reply_json)
        reply = StoredReply(**data)
    except (ValueError, TypeError):
        return None
    if not isinstance(reply.text, str) or not isinstance(reply.model, str):
        return None
    return reply


def plain_location(location: str | Path) -> str | Path:
    """Refuse a ``file:`` URI: SQLite would open it as a URI, not as the path it names."""
    if isinstance(location, str) and location[:5].lower() == "file:":
        raise InvalidInputError(
            f"checkpoint {location!r} is a file: URI; give a plain path.",
            hint="Write the path itself, e.g. 'runs/reviews.sqlite' or '/data/reviews.sqlite'.",
        )
    return location


class Checkpoint:
    """One SQLite file; open it where it is used (the background loop's thread)."""

    def __init__(self, path: str | Path, signer: RowSigner) -> None:
        self.signer = signer
        self.rejected = 0  # rows that did not prove themselves and were re-run
        self.path = Path(plain_location(path)).expanduser().absolute()
        if self.path.is_symlink():
            raise InvalidInputError(
                f"checkpoint {str(self.path)!r} is a symlink; a checkpoint must be a plain file.",
                hint="Give the real path, or a new file path.",
            )
        if self.path.is_dir():
            raise InvalidInputError(
                f"checkpoint {str(self.path)!r} is a directory.",
                hint="Give a file path such as 'reviews.checkpoint.sqlite'.",
            )
        try:
            # Replies are private: the file (and its -wal/-shm) 0600, a folder we create 0700;
            # an existing folder is the user's choice and keeps its mode.
            private_dir(self.path.parent, tighten=False)
            identity = _touch_no_follow(self.path)
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            if _identity(self.path) != identity:  # swapped for a link while we opened it
                self._db.close()
                raise OSError("the file changed while it was opened")
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process dying; only a power
            # cut can lose the last few rows, which a re-run then repeats.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            present = {row[1] for row in self._db.execute("PRAGMA table_info(rows)")}
            for column, kind in _ADDED_COLUMNS:
                if column not in present:
                    self._db.execute(f"ALTER TABLE rows ADD COLUMN {column} {kind}")
            self._db.commit()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise InvalidInputError(
                f"Cannot use {str(self.path)!r} as a checkpoint ({exc}).",
                hint="Give a new file path; an existing file must be a batch checkpoint.",
            ) from None

    def get(self, key: str) -> StoredReply | None:
        """The row's reply if it proves itself; None (and counted) if it does not."""
        try:
            row = self._db.execute(
                "SELECT reply, model_digest, checksum FROM rows WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.DatabaseError:
            row = ("", None, None)  # an unreadable page: this row is re-run
        if row is None:
            return None
        reply = _reply_from(row[0]) if self.signer.opens(key, row[1], row[0], row[2]) else None
        if reply is None:
            self.rejected += 1
        return reply

    def put(self, key: str, reply: StoredReply) -> None:
        """Store one finished row, sealed, and commit it before returning."""
        text = json.dumps(asdict(reply), ensure_ascii=False)
        self._db.execute(
            "INSERT OR REPLACE INTO rows (key, reply, finished_at, model_digest, checksum) "
            "VALUES (?, ?, ?, ?, ?)",
            (key, text, time.time(), self.signer.model_digest, self.signer.seal(key, text)),
        )
        self._db.commit()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM rows").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def is_url(location: str) -> bool:
    """True for an fsspec URL (``s3://...``, ``memory://...``) other than a plain ``file://``."""
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme.isidentifier() and scheme != "file"


class ObjectStoreCheckpoint:
    """Finished rows as one small object each under an fsspec URL, for workers on other machines.

    Object stores cannot append or lock, and SQLite does not run on them, so each
    finished row is its own object named by its key: writing it is one atomic
    put, two writers of the same row write the same bytes, and nothing finished is
    lost when a worker dies between rows.
    """

    def __init__(self, url: str, signer: RowSigner) -> None:
        self.signer = signer
        self.rejected = 0
        try:
            import fsspec
        except ImportError:
            raise InvalidInputError(
                f"checkpoint {url!r} is a URL, which needs fsspec.",
                hint="pip install 'ollama_nb[dask]' (or fsspec and the store's driver, e.g. s3fs).",
            ) from None
        try:
            self._fs, self._root = fsspec.core.url_to_fs(url)
            self._fs.makedirs(self._root, exist_ok=True)
            self._private(self._root, 0o700)
        except (ImportError, ValueError, OSError) as exc:
            raise InvalidInputError(
                f"Cannot use {url!r} as a checkpoint ({exc}).",
                hint="Check the URL and that the store's fsspec driver is installed.",
            ) from None
        self.path = url

    def _object(self, key: str) -> str:
        return f"{self._root.rstrip('/')}/{key}.json"

    def _private(self, path: str, mode: int) -> None:
        """Private modes where the filesystem has modes (local, SFTP); object stores have none."""
        chmod = getattr(self._fs, "chmod", None)
        if callable(chmod):
            with contextlib.suppress(NotImplementedError, OSError):
                chmod(path, mode)

    def get(self, key: str) -> StoredReply | None:
        """The row's reply if its object proves itself; None (and counted) if it does not."""
        try:
            data = self._fs.cat_file(self._object(key))
        except FileNotFoundError:
            return None
        reply: StoredReply | None = None
        try:
            sealed = json.loads(data)
        except ValueError:
            sealed = None
        if isinstance(sealed, dict) and sealed.get("request") == key:
            text = sealed.get("reply")
            if self.signer.opens(key, sealed.get("model_digest"), text, sealed.get("checksum")):
                reply = _reply_from(str(text))
        if reply is None:
            self.rejected += 1
        return reply

    def put(self, key: str, reply: StoredReply) -> None:
        text = json.dumps(asdict(reply), ensure_ascii=False)
        sealed = {
            "request": key,
            "model_digest": self.signer.model_digest,
            "reply": text,
            "checksum": self.signer.seal(key, text),
        }
        target = self._object(key)
        self._fs.pipe_file(target, json.dumps(sealed).encode("utf-8"))
        self._private(target, 0o600)

    def __len__(self) -> int:
        return len(self._fs.glob(f"{self._root.rstrip('/')}/*.json"))

    def close(self) -> None:
        return None


def open_checkpoint(location: str | Path, signer: RowSigner) -> Checkpoint | ObjectStoreCheckpoint:
    """A SQLite file for a path, one object per row for an fsspec URL."""
    if isinstance(location, str) and is_url(location):
        return ObjectStoreCheckpoint(location, signer)
    return Checkpoint(location, signer)


def _touch_no_follow(path: Path) -> tuple[int, int]:
    """Create ``path`` 0600 (or open it) without following a link; its (device, inode)."""
    flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = open_private(path, flags)
    except OSError as exc:
        if path.is_symlink():
            raise InvalidInputError(
                f"checkpoint {str(path)!r} is a symlink; a checkpoint must be a plain file.",
                hint="Give the real path, or a new file path.",
            ) from None
        raise exc
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(info.st_mode):
        raise OSError(f"{path} is not a regular file")
    return info.st_dev, info.st_ino


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino
