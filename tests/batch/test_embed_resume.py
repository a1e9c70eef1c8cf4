"""``df.ollama.embed(..., checkpoint=...)`` keeps finished vectors and re-sends only the rest."""

from __future__ import annotations

import json
import signal
import sqlite3
import stat
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ollama_nb.batch.checkpoint import Checkpoint, RowSigner, StoredReply
from ollama_nb.batch.embed import SUMMARY_KEY
from ollama_nb.batch.embed_checkpoint import MAX_DIMENSIONS, embed_key, vector_from, vector_reply
from ollama_nb.domain import InvalidInputError, ModelName, RequestEvent
from ollama_nb.runtime import Runtime
from ollama_nb.testing import StandinHandle

MODEL = "nomic-embed-text"
TEXTS = [f"text number {i}" for i in range(12)]


def sent_texts(standin: StandinHandle) -> list[list[str]]:
    """The inputs of every /api/embed request that reached the server, in order."""
    return [entry["body"]["input"] for entry in standin.requests("/api/embed")]


def key_of(text: str) -> str:
    return embed_key(ModelName(MODEL).canonical, text, dimensions=None, truncate=True)


def embed(frame: pd.DataFrame, checkpoint: Path, **kwargs: object) -> pd.DataFrame:
    return frame.ollama.embed(
        "text", model=MODEL, checkpoint=str(checkpoint), progress=False, **kwargs
    )


def test_a_rerun_sends_no_text_and_serves_every_saved_vector(
    runtime: Runtime, ollama_standin: StandinHandle, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "private" / "vectors.sqlite"
    frame = pd.DataFrame({"text": TEXTS[:5]})
    first = embed(frame, checkpoint, batch_size=2)
    assert sum(len(group) for group in sent_texts(ollama_standin)) == 5
    assert first.attrs[SUMMARY_KEY]["ok"] == 5
    assert stat.S_IMODE(checkpoint.stat().st_mode) == 0o600
    assert stat.S_IMODE(checkpoint.parent.stat().st_mode) == 0o700

    ollama_standin.reset()
    again = embed(frame, checkpoint, batch_size=2)
    assert sent_texts(ollama_standin) == []
    summary = again.attrs[SUMMARY_KEY]
    assert (summary["cached"], summary["ok"], summary["checkpoint_rejected"]) == (5, 0, 0)
    assert again["embedding_error"].isna().all()
    for before, after in zip(first["embedding"], again["embedding"], strict=True):
        assert after.dtype == np.float32 and np.array_equal(before, after)


def test_other_dimensions_are_another_key(
    runtime: Runtime, ollama_standin: StandinHandle, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "dims.sqlite"
    frame = pd.DataFrame({"text": TEXTS[:3]})
    embed(frame, checkpoint)
    ollama_standin.reset()
    embed(frame, checkpoint, dimensions=64)
    assert sent_texts(ollama_standin) == [TEXTS[:3]]  # not served from the full-width rows


def test_failed_groups_keep_finished_rows_and_the_rerun_sends_only_them(
    runtime: Runtime, ollama_standin: StandinHandle, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "partial.sqlite"
    frame = pd.DataFrame({"text": TEXTS[:6]})
    # One request at a time: the first group (texts 0 and 1) meets the fault, the rest do not.
    ollama_standin.inject("http_500", count=1, path="/api/embed")
    first = embed(frame, checkpoint, batch_size=2, concurrency=1, retries=0)
    summary = first.attrs[SUMMARY_KEY]
    assert (summary["ok"], summary["failed"]) == (4, 2)
    assert first["embedding"].isna().tolist() == [True, True, False, False, False, False]

    ollama_standin.reset()
    second = embed(frame, checkpoint, batch_size=2, concurrency=1)
    assert sent_texts(ollama_standin) == [TEXTS[:2]]
    summary = second.attrs[SUMMARY_KEY]
    assert (summary["ok"], summary["cached"], summary["failed"]) == (2, 4, 0)
    for pos in range(2, 6):
        assert np.array_equal(first.loc[pos, "embedding"], second.loc[pos, "embedding"])


def test_an_interrupt_keeps_finished_groups_and_the_rerun_sends_only_the_rest(
    runtime: Runtime, ollama_standin: StandinHandle, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "interrupt.sqlite"
    frame = pd.DataFrame({"text": TEXTS})
    main = threading.main_thread().ident
    assert main is not None and threading.current_thread().ident == main
    finished: list[str] = []

    def stop_after_two_groups(event: RequestEvent) -> None:
        if event.kind == "embed" and event.status == "ok":
            finished.append(event.request_id)
            if len(finished) == 2:
                # Every later request hangs: the run can only return through the interrupt.
                ollama_standin.inject("stall", count=len(TEXTS), path="/api/embed")
                signal.pthread_kill(main, signal.SIGINT)

    unsubscribe = runtime.recent.subscribe(stop_after_two_groups)
    try:
        out = embed(frame, checkpoint, batch_size=2, concurrency=1)
    finally:
        unsubscribe()
    summary = out.attrs[SUMMARY_KEY]
    assert summary["stopped"] == "interrupted"
    done = out["embedding"].notna()
    assert summary["ok"] == done.sum() >= 4 and summary["not_run"] == (~done).sum() >= 2
    assert out.loc[~done, "embedding_error"].eq("not run: interrupted").all()
    assert runtime.gate.stats().running == 0

    ollama_standin.reset()
    resumed = embed(frame, checkpoint, batch_size=2, concurrency=1)
    resent = [text for group in sent_texts(ollama_standin) for text in group]
    assert resent == [text for text, kept in zip(TEXTS, done, strict=True) if not kept]
    assert resumed.attrs[SUMMARY_KEY]["cached"] == done.sum()
    assert resumed["embedding"].notna().all()
    for pos in np.flatnonzero(done.to_numpy()):
        assert np.array_equal(out.loc[pos, "embedding"], resumed.loc[pos, "embedding"])


def test_forged_or_unusable_rows_are_re_run_and_counted(
    runtime: Runtime, ollama_standin: StandinHandle, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "forged.sqlite"
    frame = pd.DataFrame({"text": TEXTS[:4]})
    first = embed(frame, checkpoint)
    with sqlite3.connect(checkpoint) as db:
        (digest,) = db.execute("SELECT DISTINCT model_digest FROM rows").fetchone()
        # Forged: another vector written into text 1's row without the key to re-seal it.
        forged = vector_reply(np.ones(768, dtype=np.float32), MODEL)
        db.execute(
            "UPDATE rows SET reply = ? WHERE key = ?",
            (json.dumps(asdict(forged)), key_of(TEXTS[1])),
        )
    # Sealed with the real key, yet not a vector: refused all the same.
    store = Checkpoint(checkpoint, RowSigner(runtime.checkpoint_secret(), digest))
    store.put(
        key_of(TEXTS[2]), StoredReply("not base64!", MODEL, None, None, None, None, None, None)
    )
    store.close()

    ollama_standin.reset()
    again = embed(frame, checkpoint)
    assert sent_texts(ollama_standin) == [[TEXTS[1], TEXTS[2]]]
    summary = again.attrs[SUMMARY_KEY]
    assert (summary["cached"], summary["ok"], summary["checkpoint_rejected"]) == (2, 2, 2)
    for before, after in zip(first["embedding"], again["embedding"], strict=True):
        assert np.array_equal(before, after)
    ollama_standin.reset()
    embed(frame, checkpoint)  # the re-run rows were saved again, sealed
    assert sent_texts(ollama_standin) == []


def test_a_stored_vector_is_bounded_and_checked() -> None:
    good = vector_reply(np.arange(4, dtype=np.float32), MODEL)
    vector = vector_from(good, None)
    assert vector is not None and vector.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert vector_from(good, 8) is None  # not the width asked for
    nan = vector_reply(np.array([1.0, np.nan], dtype=np.float32), MODEL)
    bad = [
        StoredReply(text, MODEL, None, None, None, None, None, None)
        for text in ("", "AAA=", "not base64!", "AAAA\u00e9AAA", "A" * (MAX_DIMENSIONS * 6))
    ]  # empty, 2 bytes (not whole float32s), not base64, not ASCII, wider than any model
    for reply in (nan, *bad):
        assert vector_from(reply, None) is None


@pytest.mark.parametrize("location", ["file:vectors.sqlite", "file:///tmp/v.sqlite"])
def test_a_file_uri_checkpoint_is_refused_before_any_request(
    runtime: Runtime, ollama_standin: StandinHandle, location: str
) -> None:
    frame = pd.DataFrame({"text": TEXTS[:2]})
    with pytest.raises(InvalidInputError, match="file: URI"):
        frame.ollama.embed("text", model=MODEL, checkpoint=location, progress=False)
    assert sent_texts(ollama_standin) == []


def test_a_symlink_checkpoint_is_refused(
    runtime: Runtime, ollama_standin: StandinHandle, tmp_path: Path
) -> None:
    real = tmp_path / "real.sqlite"
    real.write_bytes(b"")
    link = tmp_path / "link.sqlite"
    link.symlink_to(real)
    with pytest.raises(InvalidInputError, match="is a symlink"):
        embed(pd.DataFrame({"text": TEXTS[:2]}), link)
    assert sent_texts(ollama_standin) == []
