"""``out.ollama.retry()``: only the rows with an error are sent again; the rest stay as they were."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ollama_nb.batch.retry import CALL_KEY, RETRY_KEY
from ollama_nb.domain import InvalidInputError
from ollama_nb.runtime import Runtime, set_runtime
from ollama_nb.testing import StandinHandle

from .conftest import chat_prompts, make_runtime

ROWS = 10


def items() -> pd.DataFrame:
    return pd.DataFrame({"n": range(ROWS)}, index=[f"row{i}" for i in range(ROWS)])


def with_three_failures(standin: StandinHandle, **kwargs: object) -> pd.DataFrame:
    standin.inject("error_midstream", count=3, path="/api/chat")
    out = items().ollama.chat("Item {n}", retries=0, progress=False, **kwargs)  # type: ignore[arg-type]
    assert (out["status"] == "failed").sum() == 3
    return out


def test_retry_sends_exactly_the_failed_rows(
    ollama_standin: StandinHandle, runtime: Runtime
) -> None:
    out = with_three_failures(ollama_standin)
    failed = out.index[out["error"].notna()].tolist()
    ollama_standin.reset()

    again = out.ollama.retry()

    sent = chat_prompts(ollama_standin)
    assert len(sent) == 3
    assert sorted(sent) == sorted(f"Item {out.loc[i, 'n']}" for i in failed)
    assert again.index.equals(out.index) and list(again.columns) == list(out.columns)
    assert (again["status"] == "ok").all() and again["error"].isna().all()
    kept = out.index.difference(failed)
    pd.testing.assert_frame_equal(again.loc[kept], out.loc[kept])
    assert again.attrs[RETRY_KEY]["ok"] == 3
    # Nothing left to do: no request at all.
    ollama_standin.reset()
    assert again.ollama.retry() is again
    assert chat_prompts(ollama_standin) == []


def test_retry_after_a_kernel_restart_from_parquet_and_checkpoint(
    ollama_standin: StandinHandle, runtime: Runtime, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "items.sqlite"
    out = with_three_failures(ollama_standin, checkpoint=str(checkpoint))
    out.to_parquet(tmp_path / "out.parquet")
    ollama_standin.reset()
    # A new kernel: a new runtime, and the in-memory record of the call is gone.
    fresh = make_runtime(ollama_standin.url, runtime.settings.data_dir)  # same data dir
    set_runtime(fresh)
    try:
        from ollama_nb.batch import retry as retry_module

        retry_module._calls.clear()
        loaded = pd.read_parquet(tmp_path / "out.parquet")
        assert CALL_KEY in loaded.attrs
        again = loaded.ollama.retry()
        assert len(chat_prompts(ollama_standin)) == 3
        assert (again["status"] == "ok").all()
        # What the retry finished went to the checkpoint too: a full re-run sends nothing.
        ollama_standin.reset()
        rerun = items().ollama.chat("Item {n}", checkpoint=str(checkpoint), progress=False)
        assert chat_prompts(ollama_standin) == []
        assert (rerun["status"] == "cached").all()
    finally:
        set_runtime(runtime)
        fresh.close()


def test_a_prompt_function_must_be_given_again_after_a_restart(
    ollama_standin: StandinHandle, runtime: Runtime
) -> None:
    def prompt(row: pd.Series) -> str:
        return f"Item {row['n']}"

    ollama_standin.inject("error_midstream", count=1, path="/api/chat")
    out = items().ollama.chat(prompt, retries=0, progress=False)
    from ollama_nb.batch import retry as retry_module

    retry_module._calls.clear()
    with pytest.raises(InvalidInputError, match="prompt function"):
        out.ollama.retry()
    ollama_standin.reset()
    again = out.ollama.retry(template=prompt)
    assert len(chat_prompts(ollama_standin)) == 1 and (again["status"] == "ok").all()


def test_retry_refuses_a_frame_that_is_not_a_batch_result(runtime: Runtime) -> None:
    with pytest.raises(InvalidInputError, match="does not say how it was made"):
        items().ollama.retry()
