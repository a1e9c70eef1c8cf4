"""A durable record of finished rows, so a crashed or interrupted batch resumes where it stopped.

SQLite in WAL mode: each finished row is one small committed transaction, which
survives the process being killed (the kernel dying, SIGKILL, the stop button)
without an fsync per row. Rows are keyed by a hash of everything that decides
the answer (request kind, model, options, format, system prompt, the rendered
prompt and the image bytes), so re-running the same call skips finished rows,
while a change of model or options is simply a different key. Only successful
replies are stored: a row that failed is tried again on the next run.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..domain import InvalidInputError
from ..infrastructure.private_files import private_dir, touch_private

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    key TEXT PRIMARY KEY,
    reply TEXT NOT NULL,
    finished_at REAL NOT NULL
)
"""


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


class Checkpoint:
    """One SQLite file; open it where it is used (the background loop's thread)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise InvalidInputError(
                f"checkpoint {str(self.path)!r} is a directory.",
                hint="Give a file path such as 'reviews.checkpoint.sqlite'.",
            )
        try:
            # Replies are private: the file (and its -wal/-shm) 0600, a folder we create 0700;
            # an existing folder is the user's choice and keeps its mode.
            private_dir(self.path.parent, tighten=False)
            touch_private(self.path)
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process dying; only a power
            # cut can lose the last few rows, which a re-run then repeats.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise InvalidInputError(
                f"Cannot use {str(self.path)!r} as a checkpoint ({exc}).",
                hint="Give a new file path; an existing file must be a batch checkpoint.",
            ) from None

    def get(self, key: str) -> StoredReply | None:
        row = self._db.execute("SELECT reply FROM rows WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return StoredReply(**json.loads(row[0]))

    def put(self, key: str, reply: StoredReply) -> None:
        """Store one finished row and commit it before returning."""
        self._db.execute(
            "INSERT OR REPLACE INTO rows (key, reply, finished_at) VALUES (?, ?, ?)",
            (key, json.dumps(asdict(reply), ensure_ascii=False), time.time()),
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

    def __init__(self, url: str) -> None:
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
        except (ImportError, ValueError, OSError) as exc:
            raise InvalidInputError(
                f"Cannot use {url!r} as a checkpoint ({exc}).",
                hint="Check the URL and that the store's fsspec driver is installed.",
            ) from None
        self.path = url

    def _object(self, key: str) -> str:
        return f"{self._root.rstrip('/')}/{key}.json"

    def get(self, key: str) -> StoredReply | None:
        try:
            data = self._fs.cat_file(self._object(key))
        except FileNotFoundError:
            return None
        return StoredReply(**json.loads(data))

    def put(self, key: str, reply: StoredReply) -> None:
        self._fs.pipe_file(self._object(key), json.dumps(asdict(reply)).encode("utf-8"))

    def __len__(self) -> int:
        return len(self._fs.glob(f"{self._root.rstrip('/')}/*.json"))

    def close(self) -> None:
        return None


def open_checkpoint(location: str | Path) -> Checkpoint | ObjectStoreCheckpoint:
    """A SQLite file for a path, one object per row for an fsspec URL."""
    if isinstance(location, str) and is_url(location):
        return ObjectStoreCheckpoint(location)
    return Checkpoint(location)
