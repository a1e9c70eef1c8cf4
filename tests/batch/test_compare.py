"""``df.ollama.compare``: two stand-in models over the same rows, scores worked out by hand.

The stand-in answers ``You said: "<prompt>".`` (3 word tokens for a one-word
prompt, which counts 1 prompt token), so every figure below follows from the
data and the faults armed.
"""

from __future__ import annotations

import pandas as pd
import pytest

from ollama_nb.batch import Comparison
from ollama_nb.domain import InvalidInputError, ModelNotFoundError
from ollama_nb.runtime import Runtime
from ollama_nb.testing import StandinHandle

MODELS = ["llama3.2", "qwen3:0.6b"]


@pytest.fixture
def reviews() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": ["yes", "no", "maybe", "Yes"],
            "label": ['You said: "yes".', 'You said: "no".', "wrong", 'YOU SAID:   "yes".'],
        },
        index=[10, 11, 12, 13],
    )


def test_scores_agreement_errors_and_tokens_by_hand(
    runtime: Runtime, ollama_standin: StandinHandle, reviews: pd.DataFrame
) -> None:
    # The first chat request fails: llama3.2's first row (concurrency 1, no retries).
    ollama_standin.inject("http_500", count=1, path="/api/chat")
    cmp = reviews.ollama.compare(
        MODELS, "{text}", expected="label", concurrency=1, retries=0, progress=False
    )
    assert isinstance(cmp, Comparison)
    assert list(cmp.answers.columns) == ["llama3.2", "qwen3:0.6b"]
    assert list(cmp.answers.index) == [10, 11, 12, 13]
    assert cmp.answers.loc[10, "llama3.2"] is pd.NA or pd.isna(cmp.answers.loc[10, "llama3.2"])
    assert cmp.answers.loc[11, "qwen3:0.6b"] == 'You said: "no".'

    s = cmp.summary
    # llama3.2: row 10 failed (wrong), 11 right, 12 wrong, 13 right after normalising -> 2/4.
    assert s.loc["llama3.2", "score"] == 0.5
    # qwen3: right, right, wrong, right -> 3/4.
    assert s.loc["qwen3:0.6b", "score"] == 0.75
    # Where both answered (rows 11-13) they said the same.
    assert s.loc["llama3.2", "agreement"] == 1.0
    assert list(s["errors"]) == [1, 0]
    # 1 prompt + 3 answer tokens per answered row; qwen3 also thinks by default, 12
    # tokens of 'The user wrote "yes". I will quote it back (thinking effort: default).'
    assert list(s["tokens"]) == [3 * (1 + 3), 4 * (1 + 12 + 3)]
    for column in ("median_latency_s", "p95_latency_s", "median_ttft_s", "tokens_per_s"):
        assert not s[column].isna().any(), column
    assert (s["cold_load_s"] >= 0).all()

    assert list(cmp.disagreements().index) == [10]
    assert cmp.disagreements().loc[10, "expected"] == 'You said: "yes".'


def test_models_are_warmed_run_in_turn_and_unloaded(
    runtime: Runtime, ollama_standin: StandinHandle, reviews: pd.DataFrame
) -> None:
    reviews.ollama.compare(MODELS, "{text}", expected="label", progress=False)
    log = [
        (r["path"], r["body"]) for r in ollama_standin.requests() if r["path"].startswith("/api/")
    ]
    inference = [
        (p, b.get("model"), b.get("keep_alive") == 0)
        for p, b in log
        if p in ("/api/chat", "/api/generate")
    ]
    models = [m for _, m, _ in inference]
    # One model after the other: every llama3.2 request comes before the first qwen3 one.
    assert models == ["llama3.2"] * models.count("llama3.2") + ["qwen3:0.6b"] * models.count(
        "qwen3:0.6b"
    )
    for model in ("llama3.2", "qwen3:0.6b"):
        mine = [(p, unload) for p, m, unload in inference if m == model]
        assert mine[0] == ("/api/generate", False)  # warmed before its first row
        assert [p for p, _ in mine].count("/api/chat") == 4
        assert mine[-1] == ("/api/generate", True)  # unloaded after its last row
    assert ollama_standin.stats()["loaded"] == []


def test_a_model_loaded_before_stays_loaded(
    runtime: Runtime, ollama_standin: StandinHandle, reviews: pd.DataFrame
) -> None:
    import ollama_nb

    ollama_nb.chat("hello", model="llama3.2")
    reviews.ollama.compare(MODELS, "{text}", progress=False)
    unloads = [
        r["body"]["model"]
        for r in ollama_standin.requests("/api/generate")
        if r["body"].get("keep_alive") == 0
    ]
    assert unloads == ["qwen3:0.6b"]


def test_variants_compare_settings_of_one_model(runtime: Runtime, reviews: pd.DataFrame) -> None:
    cmp = reviews.ollama.compare(
        ["llama3.2"],
        "{text}",
        expected="label",
        variants={"short": {"num_predict": 1}, "full": {"temperature": 0}},
        progress=False,
    )
    assert list(cmp.answers.columns) == ["llama3.2 short", "llama3.2 full"]
    assert set(cmp.answers["llama3.2 short"]) == {"You"}
    assert list(cmp.summary["score"]) == [0.0, 0.75]
    assert list(cmp.summary["agreement"]) == [0.0, 0.0]


def test_schema_fields_are_scored_one_by_one(runtime: Runtime) -> None:
    df = pd.DataFrame(
        {"text": ["good", "bad", "fine"], "gold": ["positive", "negative", "positive"]}
    )
    schema = {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["positive", "negative"]},
            "word": {"type": "string"},
        },
        "required": ["label", "word"],
    }
    cmp = df.ollama.compare(
        MODELS, "{text}", schema=schema, expected={"label": "gold", "word": "text"}, progress=False
    )
    # The stand-in fills the enum with its first value and strings with the prompt's words.
    assert list(cmp.summary["score_label"]) == [2 / 3, 2 / 3]
    assert list(cmp.summary["score_word"]) == [1.0, 1.0]
    assert cmp.summary.loc["llama3.2", "score"] == pytest.approx((2 / 3 + 1.0) / 2)


def test_a_custom_scorer(runtime: Runtime, reviews: pd.DataFrame) -> None:
    def contains_text(answer: str, expected: str) -> bool:
        return "said" in answer.lower() and "said" in expected.lower()

    cmp = reviews.ollama.compare(
        MODELS, "{text}", expected="label", scorer=contains_text, progress=False
    )
    assert list(cmp.summary["score"]) == [0.75, 0.75]


def test_judge_grades_free_text_and_the_caveat_is_printed_once(
    runtime: Runtime, reviews: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    cmp = reviews.ollama.compare(
        MODELS, "{text}", judge="llama3.2", rubric="Polite?", progress=False
    )
    # The stand-in fills the schema's integer with the first number in the judge's
    # prompt that is allowed: "from 1 (useless) to 5" -> 1.
    assert list(cmp.summary["judge_score"]) == [1.0, 1.0]
    assert "score" not in cmp.summary
    verdicts = cmp.verdicts()
    assert list(verdicts[("llama3.2", "score")]) == [1.0] * 4
    assert capsys.readouterr().out.count("Judge scores are one model's opinion") == 1
    assert "Judge scores" in cmp._repr_html_()


def test_sample_is_seeded(runtime: Runtime) -> None:
    df = pd.DataFrame({"text": [f"w{i}" for i in range(10)]})
    cmp = df.ollama.compare(["llama3.2"], "{text}", sample=3, seed=7, progress=False)
    assert list(cmp.answers.index) == list(df.sample(n=3, random_state=7).index)


def test_renders_summary_and_chart(runtime: Runtime, reviews: pd.DataFrame) -> None:
    cmp = reviews.ollama.compare(MODELS, "{text}", expected="label", progress=False)
    html = cmp._repr_html_()
    assert "<table" in html and "data:image/png;base64," in html
    figure = cmp.chart()
    axes = figure.axes[0]
    assert axes.get_xlabel().startswith("tokens/s") and axes.get_ylabel() == "score"
    assert len(axes.collections) == 2
    assert "qwen3:0.6b" in repr(cmp)


def test_parallel_models_say_whether_they_fit(runtime: Runtime, reviews: pd.DataFrame) -> None:
    cmp = reviews.ollama.compare(
        MODELS, "{text}", expected="label", parallel_models=True, progress=False
    )
    assert any("side by side" in n or "one after another" in n for n in cmp.notes)
    assert list(cmp.summary["score"]) == [0.75, 0.75]


def test_mistakes_fail_before_any_row(
    runtime: Runtime, ollama_standin: StandinHandle, reviews: pd.DataFrame
) -> None:
    with pytest.raises(ModelNotFoundError, match=r"llama3\.3"):
        reviews.ollama.compare(["llama3.2", "llama3.3"], "{text}", progress=False)
    with pytest.raises(InvalidInputError, match="not a column"):
        reviews.ollama.compare(MODELS, "{text}", expected="nope", progress=False)
    with pytest.raises(InvalidInputError, match="list of model names"):
        reviews.ollama.compare("llama3.2", "{text}", progress=False)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="either expected"):
        reviews.ollama.compare(MODELS, "{text}", expected="label", judge="llama3.2")
    assert ollama_standin.requests("/api/chat") == []


async def test_acompare_runs_the_same_comparison_from_an_async_cell(
    runtime: Runtime, ollama_standin: StandinHandle, reviews: pd.DataFrame
) -> None:
    import ollama_nb

    cmp = await ollama_nb.acompare(reviews, MODELS, "{text}", expected="label", progress=False)
    assert list(cmp.summary["score"]) == [0.75, 0.75]
    assert len(ollama_standin.requests("/api/chat")) == 8
    again = await reviews.ollama.acompare(MODELS, "{text}", expected="label", progress=False)
    assert list(again.summary["score"]) == [0.75, 0.75]


def test_a_rerun_of_a_deterministic_comparison_is_served_from_the_cache(
    runtime: Runtime, ollama_standin: StandinHandle, reviews: pd.DataFrame
) -> None:
    first = reviews.ollama.compare(MODELS, "{text}", deterministic=True, progress=False)
    sent = len(ollama_standin.requests("/api/chat"))
    assert sent == 8
    again = reviews.ollama.compare(MODELS, "{text}", deterministic=True, progress=False)
    assert len(ollama_standin.requests("/api/chat")) == sent
    assert again.answers.equals(first.answers)
    runs = {r.label: r for r in again.runs}
    assert all(set(r.status) == {"cached"} for r in runs.values())
