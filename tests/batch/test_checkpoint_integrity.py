"""A checkpoint is a file we read back: a plain private path, and rows that prove themselves."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pandas as pd
import pytest

from ollama_nb.batch import SUMMARY_KEY
from ollama_nb.batch.checkpoint import (
    Checkpoint,
    ObjectStoreCheckpoint,
    RowSigner,
    StoredReply,
    open_checkpoint,
)
from ollama_nb.batch.results import BatchSummary
from ollama_nb.dask.checkpoints import partition_checkpoint
from ollama_nb.domain import InvalidInputError
from ollama_nb.runtime import CHECKPOINT_KEY_NAME, Runtime
from ollama_nb.testing import StandinHandle

from .conftest import chat_prompts

SIGNER = RowSigner(b"k" * 32, "sha256:abc")
REPLY = StoredReply("an answer", "llama3.2", "stop", 3, 4, 0.1, 0.05, 40.0)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    "location", ["file:///tmp/x.sqlite", "FILE:run.sqlite", "file:run.sqlite?mode=rwc"]
)
def test_a_file_uri_is_refused_in_one_line(
    location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInputError) as caught:
        open_checkpoint(location, SIGNER)
    assert "file: URI; give a plain path" in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # nothing was created anywhere here
    with pytest.raises(InvalidInputError, match="file: URI"):
        partition_checkpoint("file:///tmp/run", 3)


def test_a_uri_lookalike_path_is_a_plain_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A path SQLite could read as a URI is opened by its absolute name, where it says."""
    monkeypatch.chdir(tmp_path)
    Path("runs").mkdir()
    checkpoint = Checkpoint("runs/file:x.sqlite", SIGNER)
    checkpoint.put("k", REPLY)
    checkpoint.close()
    assert (tmp_path / "runs" / "file:x.sqlite").is_file()


def test_a_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.sqlite"
    real.write_bytes(b"")
    link = tmp_path / "run.sqlite"
    link.symlink_to(real)
    with pytest.raises(InvalidInputError, match="is a symlink"):
        open_checkpoint(str(link), SIGNER)
    dangling = tmp_path / "dangling.sqlite"
    dangling.symlink_to(tmp_path / "missing.sqlite")
    with pytest.raises(InvalidInputError, match="is a symlink"):
        open_checkpoint(dangling, SIGNER)
    assert not (tmp_path / "missing.sqlite").exists()


def test_file_and_new_folder_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "run.sqlite"
    checkpoint = Checkpoint(path, SIGNER)
    checkpoint.put("k", REPLY)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or mode(wal) == 0o600
    checkpoint.close()


def test_rows_prove_themselves(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    checkpoint = Checkpoint(path, SIGNER)
    checkpoint.put("a", REPLY)
    checkpoint.put("b", REPLY)
    assert checkpoint.get("a") == REPLY and checkpoint.rejected == 0
    checkpoint.close()

    other_key = Checkpoint(path, RowSigner(b"x" * 32, SIGNER.model_digest))
    other_model = Checkpoint(path, RowSigner(SIGNER.secret, "sha256:rebuilt"))
    assert other_key.get("a") is None and other_model.get("a") is None
    assert other_key.rejected == other_model.rejected == 1
    other_key.close()
    other_model.close()

    with sqlite3.connect(path) as db:  # a row copied under another request's key
        sealed = db.execute(
            "SELECT reply, model_digest, checksum FROM rows WHERE key='a'"
        ).fetchone()
        db.execute("UPDATE rows SET reply=?, model_digest=?, checksum=? WHERE key='b'", sealed)
        db.execute("UPDATE rows SET reply='{not json' WHERE key='a'")
    again = Checkpoint(path, SIGNER)
    assert again.get("a") is None and again.get("b") is None and again.get("missing") is None
    assert again.rejected == 2
    again.close()


def test_rows_from_before_sealing_are_re_run(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE rows (key TEXT PRIMARY KEY, reply TEXT NOT NULL, finished_at REAL NOT NULL)"
        )
        db.execute("INSERT INTO rows VALUES ('a', ?, 0)", (json.dumps({"text": "old"}),))
    checkpoint = Checkpoint(path, SIGNER)
    assert checkpoint.get("a") is None and checkpoint.rejected == 1
    checkpoint.put("a", REPLY)
    assert checkpoint.get("a") == REPLY
    checkpoint.close()


def test_object_store_rows_are_sealed_and_local_objects_private(tmp_path: Path) -> None:
    url = f"local://{tmp_path / 'store'}"
    store = ObjectStoreCheckpoint(url, SIGNER)
    store.put("a", REPLY)
    store.put("b", REPLY)
    assert store.get("a") == REPLY
    objects = sorted((tmp_path / "store").iterdir())
    assert [mode(p) for p in objects] == [0o600, 0o600] and mode(tmp_path / "store") == 0o700
    forged = json.loads(objects[1].read_text())
    forged["reply"] = json.dumps({**json.loads(forged["reply"]), "text": "forged"})
    objects[1].write_text(json.dumps(forged))
    objects[0].write_text("{corrupt")
    assert store.get("a") is None and store.get("b") is None and store.rejected == 2


def test_batch_over_a_corrupt_and_a_forged_row_answers_every_row(
    runtime: Runtime, ollama_standin: StandinHandle, tmp_path: Path
) -> None:
    frame = pd.DataFrame({"n": range(6)})
    path = tmp_path / "run.sqlite"
    first = frame.ollama.chat("Item {n}", checkpoint=str(path), progress=False)
    assert first["status"].eq("ok").all()
    assert mode(runtime.settings.data_dir / CHECKPOINT_KEY_NAME) == 0o600

    with sqlite3.connect(path) as db:
        keys = [k for (k,) in db.execute("SELECT key FROM rows ORDER BY key")]
        # Corrupt: the reply is no longer what was sealed (and no longer JSON).
        db.execute("UPDATE rows SET reply=? WHERE key=?", ('{"text": "half a re\x00', keys[0]))
        # Forged: a well-formed row with a plausible checksum that was not made with our key.
        text = json.dumps(
            {"text": "FORGED", "model": "llama3.2", "done_reason": "stop", "prompt_tokens": 1,
             "eval_tokens": 1, "latency_s": 0.0, "ttft_s": 0.0, "tokens_per_s": 0.0}
        )  # fmt: skip
        digest = db.execute("SELECT model_digest FROM rows WHERE key=?", (keys[1],)).fetchone()[0]
        guess = RowSigner(b"\x00" * 32, digest).seal(keys[1], text)
        db.execute("UPDATE rows SET reply=?, checksum=? WHERE key=?", (text, guess, keys[1]))
    ollama_standin.reset()

    second = frame.ollama.chat("Item {n}", checkpoint=str(path), progress=False)

    counts = second["status"].value_counts()
    assert (counts["cached"], counts["ok"], counts.sum()) == (4, 2, 6)
    assert second["response"].tolist() == [f'You said: "Item {n}".' for n in range(6)]
    assert "FORGED" not in second["response"].tolist()
    assert len(chat_prompts(ollama_standin)) == 2  # only the two bad rows went to the model
    summary = second.attrs[SUMMARY_KEY]
    assert summary["checkpoint_rejected"] == 2
    plain = {k: v for k, v in summary.items() if k not in ("rows_per_s", "tokens_per_s")}
    assert "2 checkpoint row(s) re-run (corrupt, edited" in BatchSummary(**plain).line()
    # and the re-run rows were sealed again: a third run serves all six
    third = frame.ollama.chat("Item {n}", checkpoint=str(path), progress=False)
    assert third["status"].eq("cached").all()
