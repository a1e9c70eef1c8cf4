"""Batches against the stand-in over loopback: results, faults, dedup, frames, async."""

from __future__ import annotations

import asyncio
from typing import Literal

import pandas as pd
import pytest
from pydantic import BaseModel

from ollama_nb.batch import SUMMARY_KEY, abatch, batch
from ollama_nb.domain import InvalidInputError, ModelNotFoundError
from ollama_nb.runtime import Runtime
from ollama_nb.testing import StandinHandle

from .conftest import chat_prompts


def test_chat_adds_answer_and_metadata_columns(
    runtime: Runtime,
    reviews: pd.DataFrame,
    ollama_standin: StandinHandle,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = reviews.ollama.chat("Review of a {product}: {review}", progress=True)
    assert list(out.columns) == [
        "product",
        "review",
        "response",
        "model",
        "prompt_tokens",
        "eval_tokens",
        "latency_s",
        "ttft_s",
        "tokens_per_s",
        "done_reason",
        "truncated",
        "host",
        "cached",
        "status",
        "error",
    ]
    assert out.loc[0, "response"] == 'You said: "Review of a kettle: Boils fast and quietly".'
    assert (out["status"] == "ok").all() and out["error"].isna().all()
    assert out["eval_tokens"].dtype == "Int64" and (out["eval_tokens"] > 0).all()
    assert (out["model"] == "llama3.2").all()
    summary = out.attrs[SUMMARY_KEY]
    assert (summary["rows"], summary["ok"], summary["failed"]) == (4, 4, 0)
    assert "4 rows: 4 ok, 0 failed, 0 cached, 0 skipped" in capsys.readouterr().out
    assert sorted(chat_prompts(ollama_standin)) == sorted(
        f"Review of a {p}: {r}" for p, r in zip(reviews["product"], reviews["review"], strict=True)
    )
    kinds = [e.kind for e in runtime.recent.snapshot()]
    assert kinds == ["chat"] * 4  # one telemetry event per row


def test_generate_with_system_prompt_and_callable(
    runtime: Runtime, reviews: pd.DataFrame, ollama_standin: StandinHandle
) -> None:
    out = reviews.ollama.generate(
        lambda row: f"{row['product'].upper()}: {row.review}", system="Be brief.", progress=False
    )
    bodies = [r["body"] for r in ollama_standin.requests("/api/generate") if r["body"]["prompt"]]
    assert {b["prompt"] for b in bodies} == {
        "KETTLE: Boils fast and quietly",
        "LAMP: Flickers after a week",
        "CHAIR: Sturdy but the cushion is thin",
        "MUG: Handle got hot",
    }
    assert all(b["system"] == "Be brief." for b in bodies)
    assert out["status"].eq("ok").all()


def test_input_frame_is_never_mutated(runtime: Runtime, reviews: pd.DataFrame) -> None:
    before = reviews.copy(deep=True)
    out = batch(reviews, "{review}", progress=False)
    pd.testing.assert_frame_equal(reviews, before)
    assert out is not reviews and "response" not in reviews.columns


@pytest.mark.parametrize(
    "index",
    [
        pd.RangeIndex(10, 14),
        pd.Index(["w", "x", "y", "z"], name="sku"),
        pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1), ("b", 2)], names=["shop", "n"]),
    ],
    ids=["range", "string", "multi"],
)
def test_index_types_are_preserved(
    runtime: Runtime, reviews: pd.DataFrame, index: pd.Index
) -> None:
    frame = reviews.set_axis(index, axis=0)
    out = frame.ollama.chat("{review}", progress=False)
    pd.testing.assert_index_equal(out.index, frame.index)
    for label in frame.index:
        assert out.loc[label, "response"] == f'You said: "{frame.loc[label, "review"]}".'


def test_identical_prompts_are_sent_once_and_fanned_out(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    frame = pd.DataFrame({"text": ["same", "other", "same", "same", "other", "third"]})
    out = frame.ollama.chat("Say {text}", progress=False, concurrency=3)
    assert sorted(chat_prompts(ollama_standin)) == ["Say other", "Say same", "Say third"]
    assert out["response"].tolist() == [f'You said: "Say {t}".' for t in frame["text"]]
    assert out["status"].eq("ok").all()
    assert out.attrs[SUMMARY_KEY]["deduplicated"] == 3


def test_changing_options_changes_nothing_but_is_sent(
    runtime: Runtime, reviews: pd.DataFrame, ollama_standin: StandinHandle
) -> None:
    reviews.ollama.chat("{review}", options={"temperature": 0, "seed": 7}, progress=False)
    bodies = [r["body"] for r in ollama_standin.requests("/api/chat")]
    assert all(b["options"] == {"temperature": 0.0, "seed": 7} for b in bodies)


def test_a_failing_row_is_retried_then_succeeds(
    runtime: Runtime, reviews: pd.DataFrame, ollama_standin: StandinHandle
) -> None:
    ollama_standin.inject("error_midstream", count=1, path="/api/chat", after=1)
    out = reviews.ollama.chat("{review}", progress=False, concurrency=1)
    assert out["status"].eq("ok").all()
    assert len(ollama_standin.requests("/api/chat")) == 5  # one row sent twice


def test_a_row_that_keeps_failing_is_recorded_and_the_rest_finish(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    frame = pd.DataFrame({"n": range(12)})
    # Every request that reaches the server in this window fails with a 500; rows
    # are retried twice (three tries), so exactly one row's worth of tries is used up.
    ollama_standin.inject("http_500", count=3, path="/api/chat")
    out = frame.ollama.chat("Number {n}", progress=False, concurrency=1, retries=2)
    failed = out[out["status"] == "failed"]
    assert len(failed) == 1
    assert "after 2 retries" in failed["error"].iloc[0]
    assert "runner process has terminated" in failed["error"].iloc[0]
    assert out["status"].eq("ok").sum() == 11
    assert len(ollama_standin.requests("/api/chat")) == 14


def test_mixed_faults_account_for_every_row(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    frame = pd.DataFrame({"n": [*range(20), None, None]}, dtype="Int64")
    for fault in ("http_500", "error_midstream", "drop", "http_503"):
        ollama_standin.inject(fault, count=2, path="/api/chat")
    out = frame.ollama.chat("Row {n}", progress=False, retries=0, concurrency=2)
    counts = out["status"].value_counts().to_dict()
    assert counts["skipped"] == 2
    assert counts["ok"] + counts["failed"] == 20
    assert counts["failed"] >= 4  # 500s, stream errors and drops are not retried with retries=0
    assert counts.get("not run", 0) == 0
    ok = out[out["status"] == "ok"]
    assert all(ok["response"] == [f'You said: "Row {n}".' for n in ok["n"]])
    assert out[out["status"] == "failed"]["error"].notna().all()
    summary = out.attrs[SUMMARY_KEY]
    assert summary["ok"] + summary["failed"] + summary["skipped"] == 22


def test_max_errors_stops_early_and_marks_the_rest(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    frame = pd.DataFrame({"n": range(30)})
    ollama_standin.inject("http_500", count=100, path="/api/chat")
    out = frame.ollama.chat("{n}", progress=False, retries=0, max_errors=2, concurrency=1)
    assert out["status"].eq("failed").sum() == 3
    not_run = out[out["status"] == "not run"]
    assert len(not_run) == 27
    assert not_run["error"].str.startswith("not run: 3 errors (max_errors=2)").all()


def test_unknown_model_fails_fast_with_one_line(
    runtime: Runtime, reviews: pd.DataFrame, ollama_standin: StandinHandle
) -> None:
    with pytest.raises(ModelNotFoundError, match="not installed"):
        reviews.ollama.chat("{review}", model="nosuchmodel", progress=False, concurrency=1)
    assert len(ollama_standin.requests("/api/chat")) == 1


def test_mistakes_are_caught_before_sending(
    runtime: Runtime, reviews: pd.DataFrame, ollama_standin: StandinHandle
) -> None:
    with pytest.raises(InvalidInputError, match="'reveiw'"):
        reviews.ollama.chat("{reveiw}")
    with pytest.raises(InvalidInputError, match="Unknown Ollama option"):
        reviews.ollama.chat("{review}", options={"temprature": 0})
    with pytest.raises(InvalidInputError, match="images='photo' is not a column"):
        reviews.ollama.chat("{review}", images="photo")
    with pytest.raises(InvalidInputError, match="concurrency"):
        reviews.ollama.chat("{review}", concurrency=0)
    chained = reviews.ollama.chat("{review}", progress=False)
    with pytest.raises(InvalidInputError, match="prefix="):
        chained.ollama.chat("{review}")
    again = chained.ollama.chat("Again: {response}", prefix="second_", progress=False)
    assert again["second_status"].eq("ok").all()
    assert len(ollama_standin.requests("/api/chat")) == 8


class Verdict(BaseModel):
    sentiment: Literal["positive", "negative", "mixed"]
    stars: int


def test_schema_fields_become_typed_columns(
    runtime: Runtime, reviews: pd.DataFrame, ollama_standin: StandinHandle
) -> None:
    out = reviews.ollama.chat("Rate 4 stars: {review}", schema=Verdict, progress=False)
    assert out["sentiment"].dtype == "category"
    assert list(out["sentiment"].cat.categories) == ["positive", "negative", "mixed"]
    assert out["stars"].dtype == "Int64"
    assert out["status"].eq("ok").all()
    assert out["sentiment"].notna().all()
    body = ollama_standin.requests("/api/chat")[0]["body"]
    assert body["format"] == Verdict.model_json_schema()


def test_replies_failing_validation_keep_their_text(
    runtime: Runtime, reviews: pd.DataFrame
) -> None:
    out = reviews.ollama.chat(
        "{review}", schema=Verdict, options={"num_predict": 2}, progress=False
    )
    assert out["status"].eq("failed").all()
    assert out["response"].str.len().gt(0).all()  # the truncated JSON is kept
    assert out["error"].str.contains("does not match Verdict").all()
    assert out["sentiment"].isna().all()
    assert out["done_reason"].eq("length").all()


def test_image_column_goes_through_the_vision_lane(
    runtime: Runtime, ollama_standin: StandinHandle
) -> None:
    from PIL import Image

    frame = pd.DataFrame(
        {
            "name": ["red", "blue", "none"],
            "photo": [
                Image.new("RGB", (1600, 1200), "red"),
                [Image.new("RGB", (64, 48), "blue")],
                None,
            ],
        }
    )
    out = frame.ollama.chat("What is {name}?", model="gemma3:4b", images="photo", progress=False)
    assert out["status"].tolist() == ["ok", "ok", "skipped"]
    assert out.loc[2, "error"] == "No image in column 'photo'."
    assert "image" in out.loc[0, "response"].lower()
    sent = ollama_standin.requests("/api/chat")
    assert [len(r["body"]["messages"][-1]["images"]) for r in sent] == [1, 1]
    events = [e for e in runtime.recent.snapshot() if e.kind == "vision"]
    assert len(events) == 2
    assert any(e.image_bytes_saved > 0 for e in events) or all(e.image_count == 1 for e in events)


async def test_works_from_inside_a_running_event_loop(
    runtime: Runtime, reviews: pd.DataFrame
) -> None:
    asyncio.get_running_loop()  # like an async notebook cell
    blocking = reviews.ollama.chat("{review}", progress=False)
    awaited = await reviews.ollama.achat("{review}", progress=False)
    module_level = await abatch(reviews, "{review}", progress=False)
    assert blocking["response"].tolist() == awaited["response"].tolist()
    assert module_level["status"].eq("ok").all()


def test_embed_puts_vectors_in_a_column(runtime: Runtime, ollama_standin: StandinHandle) -> None:
    frame = pd.DataFrame({"text": ["alpha", None, "beta", "alpha"]}, index=list("abcd"))
    out = frame.ollama.embed("text", model="nomic-embed-text", batch_size=2, progress=False)
    vectors = out["embedding"]
    assert vectors["b"] is None and out.loc["b", "embedding_error"].startswith("skipped")
    assert vectors["a"].shape == vectors["c"].shape and vectors["a"].ndim == 1
    assert (vectors["a"] == vectors["d"]).all() and not (vectors["a"] == vectors["c"]).all()
    assert len(ollama_standin.requests("/api/embed")) == 2
