"""The response cache: what decides the key, LRU bounds, untrusted entries, kernels sharing it."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path

import pytest

from ollama_nb.application.reply_cache import (
    CachedReply,
    cache_key,
    vector_from_json,
    wants_cache,
)
from ollama_nb.domain import (
    ChatMessage,
    ChatRequest,
    GenerateRequest,
    GenerationOptions,
    KeepAlive,
    ModelName,
    ResponseFormat,
    ToolCall,
)
from ollama_nb.infrastructure.response_cache import SqliteResponseCache

DIGEST = "a" * 64
PIXEL = base64.b64encode(b"\x89PNG fake").decode()


def chat(text: str = "hi", **changes: object) -> ChatRequest:
    values: dict[str, object] = {
        "model": ModelName("llama3.2"),
        "messages": (ChatMessage("user", text),),
        "options": GenerationOptions(temperature=0.0),
    }
    values.update(changes)
    return ChatRequest(**values)  # type: ignore[arg-type]


def reply(text: str = "hello") -> CachedReply:
    return CachedReply(text=text, model="llama3.2", done_reason="stop", eval_tokens=3)


def test_the_key_covers_what_decides_the_answer_and_nothing_else() -> None:
    base = cache_key(chat(), DIGEST)
    assert cache_key(chat(), DIGEST) == base
    # The model is named by its digest: same name, new weights -> new key.
    assert cache_key(chat(), "b" * 64) != base
    different = [
        chat("hello"),
        chat(options=GenerationOptions(temperature=0.0, seed=1)),
        chat(format=ResponseFormat("json")),
        chat(think=True),
        chat(tools=({"type": "function", "function": {"name": "f"}},)),
        chat(messages=(ChatMessage("system", "be brief"), ChatMessage("user", "hi"))),
        chat(messages=(ChatMessage("user", "hi", images=(PIXEL,)),)),
    ]
    keys = {cache_key(r, DIGEST) for r in different}
    assert base not in keys and len(keys) == len(different)
    # What does not change the answer does not change the key.
    assert cache_key(chat(keep_alive=KeepAlive("1h")), DIGEST) == base
    assert cache_key(chat(model=ModelName("other-name-same-weights")), DIGEST) == base
    generate = GenerateRequest(
        model=ModelName("llama3.2"), prompt="hi", options=GenerationOptions(temperature=0.0)
    )
    assert cache_key(generate, DIGEST) != base


def test_only_deterministic_requests_are_kept_by_default() -> None:
    assert wants_cache(chat(), None)
    assert wants_cache(chat(options=GenerationOptions(seed=3)), None)
    sampled = chat(options=GenerationOptions(temperature=0.7))
    assert not wants_cache(sampled, None) and wants_cache(sampled, True)
    assert not wants_cache(chat(), False)


async def test_entries_round_trip_and_a_wrong_digest_misses(tmp_path: Path) -> None:
    cache = SqliteResponseCache(tmp_path / "r.sqlite")
    kept = CachedReply(
        text="4",
        model="llama3.2",
        thinking="2+2",
        tool_calls=(ToolCall("add", {"a": 2, "b": 2}),),
        done_reason="stop",
        prompt_tokens=5,
        eval_tokens=1,
    )
    await cache.put("k", DIGEST, kept)
    assert await cache.get("k", DIGEST) == kept
    assert await cache.get("k", "b" * 64) is None  # entry removed as bad: it claims another model
    assert await cache.get("k", DIGEST) is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.bad, stats.entries) == (1, 2, 1, 0)
    result = kept.result("r1")
    assert result.cached and result.timings.latency_s is None and result.timings.eval_count == 1
    cache.close()


async def test_least_recently_used_entries_go_first_and_the_size_stays_bounded(
    tmp_path: Path,
) -> None:
    cache = SqliteResponseCache(tmp_path / "r.sqlite", max_bytes=2000)
    for i in range(8):
        await cache.put(f"k{i}", DIGEST, reply("x" * 300))
        if i >= 1:
            assert await cache.get("k0", DIGEST) is not None  # k0 stays in use
    stats = cache.stats()
    assert stats.bytes <= 2000 and 0 < stats.entries < 8
    assert await cache.get("k0", DIGEST) is not None
    assert await cache.get("k1", DIGEST) is None  # the oldest unused went first
    assert await cache.get("k7", DIGEST) is not None
    # One answer bigger than the whole cache is not kept (it would evict everything).
    await cache.put("huge", DIGEST, reply("y" * 3000))
    assert await cache.get("huge", DIGEST) is None and cache.stats().entries == stats.entries
    assert cache.clear() == stats.entries and cache.stats().entries == 0
    cache.close()


async def test_a_broken_cache_file_never_fails_a_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = SqliteResponseCache(path)
    await cache.put("k", DIGEST, reply())
    assert await cache.get("k", DIGEST) is None
    assert caplog.text.count("response cache could not") == 1  # said once, then quiet
    cache.close()


def test_entries_that_parse_badly_are_refused() -> None:
    good = reply().to_json()
    assert CachedReply.from_json(good) == reply()
    for bad in (
        "[]",
        good.replace('"text":"hello"', '"text":5'),
        good.replace('"eval_tokens":3', '"eval_tokens":-1'),
        good.replace('"tool_calls":[]', '"tool_calls":[{"name":1}]'),
        good.replace('"done_reason":"stop"', '"done_reason":"' + "x" * 100 + '"'),
    ):
        with pytest.raises(ValueError):
            CachedReply.from_json(bad)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX only")
async def test_the_file_is_private(tmp_path: Path) -> None:
    cache = SqliteResponseCache(tmp_path / "data" / "r.sqlite")
    await cache.put("k", DIGEST, reply())
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "data" / "r.sqlite").stat().st_mode) == 0o600
    cache.close()


def test_two_kernels_share_one_file(tmp_path: Path) -> None:
    """Two caches on one file (two kernels) writing at once: nothing lost, nothing locked."""
    path = tmp_path / "r.sqlite"
    one, two = SqliteResponseCache(path), SqliteResponseCache(path)
    errors: list[BaseException] = []

    def write(cache: SqliteResponseCache, prefix: str) -> None:
        try:
            for i in range(50):
                cache.store(f"{prefix}{i}", DIGEST, reply(f"{prefix}{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(one, "a")),
        threading.Thread(target=write, args=(two, "b")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert one.stats().entries == 100
    assert two.lookup("a7", DIGEST) == reply("a7") and one.lookup("b9", DIGEST) == reply("b9")
    one.close()
    two.close()


async def test_vectors_round_trip_and_bad_ones_are_refused(tmp_path: Path) -> None:
    cache = SqliteResponseCache(tmp_path / "r.sqlite")
    await cache.put_vectors([("v1", (0.5, -1.0)), ("v2", (2.0, 3.0))], DIGEST, "nomic")
    assert await cache.get_vectors(["v1", "nope", "v2"], DIGEST) == [(0.5, -1.0), None, (2.0, 3.0)]
    for bad in ("[]", '["a"]', "[true]", "[1e999]", '{"text":"x"}'):
        with pytest.raises(ValueError):
            vector_from_json(bad)
    assert "(embedding vector, 2 numbers)" in [e.preview for e in cache.entries()]
    cache.close()


async def test_a_file_from_another_version_is_emptied_not_an_error(tmp_path: Path) -> None:
    """An older build's table (no ``used_seq``) must not turn every answer into a warning."""
    import sqlite3

    path = tmp_path / "r.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE entries (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")
    old.execute("INSERT INTO entries VALUES ('k', 'stale')")
    old.commit()
    old.close()
    cache = SqliteResponseCache(path)
    assert await cache.get("k", DIGEST) is None
    await cache.put("k", DIGEST, reply("fresh"))
    got = await cache.get("k", DIGEST)
    assert got is not None and got.text == "fresh"
    assert cache.stats().entries == 1
    cache.close()
