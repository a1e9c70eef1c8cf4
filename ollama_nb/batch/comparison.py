"""What a comparison found: answers side by side, a summary per model, a chart.

Scores are plain arithmetic on the answers, kept here apart from running the
models so they can be checked by hand: exact match after normalising case and
whitespace (or the user's ``scorer``), per field with a schema, agreement as
the mean share of rows on which a model gives the same normalised answer as
each other model, and a judge's 1-5 grades averaged.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..presentation.replies import frame_html

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

Scorer = Callable[[Any, Any], object]
JUDGE_CAVEAT = (
    "Judge scores are one model's opinion of another's answers: read a sample of "
    "the verdicts before trusting them."
)


def normalise(value: object) -> str | None:
    """Case and whitespace do not make an answer different; a missing one stays missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return " ".join(str(value).split()).casefold()


@dataclass(slots=True)
class ContestantRun:
    """One model (or one model with one option set) after its rows ran."""

    label: str
    model: str
    answers: list[str | None]
    status: list[str]
    latency_s: list[float | None]
    ttft_s: list[float | None]
    tokens_per_s: list[float | None]
    prompt_tokens: list[int | None]
    eval_tokens: list[int | None]
    fields: dict[str, list[object]] = field(default_factory=dict)
    cold_load_s: float | None = None
    judge_scores: list[float | None] | None = None
    judge_reasons: list[str | None] | None = None

    @property
    def errors(self) -> int:
        return sum(1 for s in self.status if s == "failed")


def exact_scores(
    answers: Sequence[object], expected: Sequence[object], scorer: Scorer | None
) -> list[float | None]:
    """Per row: 1.0/0.0 (or the scorer's number); None where nothing is expected.

    A row that failed (no answer) counts as wrong: a model that errors is not a good choice.
    """
    out: list[float | None] = []
    for answer, wanted in zip(answers, expected, strict=True):
        if normalise(wanted) is None:
            out.append(None)
        elif scorer is not None:
            out.append(float(scorer(answer, wanted)) if answer is not None else 0.0)  # type: ignore[arg-type]
        else:
            out.append(1.0 if normalise(answer) == normalise(wanted) else 0.0)
    return out


def mean(values: Sequence[float | None]) -> float:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return sum(present) / len(present) if present else math.nan


def percentile(values: Sequence[float | None], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    present = sorted(v for v in values if v is not None and not math.isnan(v))
    if not present:
        return math.nan
    position = (len(present) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(present) - 1)
    return present[low] + (present[high] - present[low]) * (position - low)


def agreement(runs: Sequence[ContestantRun]) -> dict[str, float]:
    """For each run, the mean over the others of the share of rows answered the same."""
    result: dict[str, float] = {}
    for run in runs:
        shares: list[float | None] = []
        for other in runs:
            if other is run:
                continue
            same = [
                normalise(a) == normalise(b)
                for a, b in zip(run.answers, other.answers, strict=True)
                if normalise(a) is not None and normalise(b) is not None
            ]
            shares.append(sum(same) / len(same) if same else None)
        result[run.label] = mean(shares)
    return result


@dataclass(slots=True)
class Comparison:
    """``df.ollama.compare(...)``: ``answers``, ``summary``, ``chart()``, ``disagreements()``."""

    runs: list[ContestantRun]
    index: pd.Index
    expected: Mapping[str, Sequence[object]] = field(default_factory=dict)
    scorer: Scorer | None = None
    judge: str | None = None
    notes: list[str] = field(default_factory=list)
    summary: pd.DataFrame = field(init=False)
    answers: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        import pandas as pd

        self.answers = pd.DataFrame(
            {run.label: pd.array(run.answers, dtype="str") for run in self.runs},
            index=self.index,
        )
        self.summary = self._summary()

    # --- scoring -----------------------------------------------------------------

    def _scores(self, run: ContestantRun) -> dict[str, float]:
        """``score`` overall, plus ``score_<field>`` when fields are compared one by one."""
        if not self.expected:
            return {}
        if "" in self.expected:  # one expected column, compared with the whole answer
            return {"score": mean(exact_scores(run.answers, self.expected[""], self.scorer))}
        per_field = {
            name: mean(
                exact_scores(run.fields.get(name, [None] * len(run.answers)), wanted, self.scorer)
            )
            for name, wanted in self.expected.items()
        }
        scores = {f"score_{name}": value for name, value in per_field.items()}
        scores["score"] = mean(list(per_field.values()))
        return scores

    def _summary(self) -> pd.DataFrame:
        import pandas as pd

        agreeing = agreement(self.runs) if len(self.runs) > 1 else {}
        rows: list[dict[str, object]] = []
        for run in self.runs:
            row: dict[str, object] = {"model": run.label}
            row.update(self._scores(run))
            if run.judge_scores is not None:
                row["judge_score"] = mean(run.judge_scores)
            row["agreement"] = agreeing.get(run.label, math.nan)
            row["errors"] = run.errors
            row["median_latency_s"] = percentile(run.latency_s, 0.5)
            row["p95_latency_s"] = percentile(run.latency_s, 0.95)
            row["median_ttft_s"] = percentile(run.ttft_s, 0.5)
            row["tokens_per_s"] = percentile(run.tokens_per_s, 0.5)
            row["tokens"] = sum(
                (p or 0) + (e or 0) for p, e in zip(run.prompt_tokens, run.eval_tokens, strict=True)
            )
            row["cold_load_s"] = math.nan if run.cold_load_s is None else run.cold_load_s
            rows.append(row)
        frame = pd.DataFrame(rows).set_index("model")
        frame["errors"] = frame["errors"].astype("int64")
        frame["tokens"] = frame["tokens"].astype("int64")
        return frame

    # --- looking at it -------------------------------------------------------------

    def disagreements(self) -> pd.DataFrame:
        """The rows where the models' normalised answers differ (with the expected answer)."""
        normalised = self.answers.map(normalise)
        differ = normalised.nunique(axis=1, dropna=False) > 1
        out = self.answers[differ].copy()
        if "" in self.expected:
            wanted: list[Any] = [v for v, d in zip(self.expected[""], differ, strict=True) if d]
            out["expected"] = wanted
        return out

    def verdicts(self) -> pd.DataFrame:
        """The judge's score and reason for every answer (empty without a judge)."""
        import pandas as pd

        columns: dict[Hashable, Any] = {}
        for run in self.runs:
            if run.judge_scores is not None and run.judge_reasons is not None:
                columns[(run.label, "score")] = run.judge_scores
                columns[(run.label, "reason")] = run.judge_reasons
        return pd.DataFrame(columns, index=self.index)

    def chart(self) -> Figure:
        """Score (or judge score) against tokens/s: one point per model."""
        from matplotlib.figure import Figure

        y_column = (
            "score"
            if "score" in self.summary
            else "judge_score"
            if "judge_score" in self.summary
            else "agreement"
        )
        figure = Figure(figsize=(5.5, 3.5))
        axes = figure.add_subplot()
        for label, row in self.summary.iterrows():
            x, y = row["tokens_per_s"], row[y_column]
            axes.scatter([x], [y], s=60)
            axes.annotate(str(label), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
        axes.set_xlabel("tokens/s (median per row)")
        axes.set_ylabel(y_column.replace("_", " "))
        axes.set_title("Which model for this job?")
        axes.grid(alpha=0.3)
        figure.tight_layout()
        return figure

    def _chart_png(self) -> str:
        buffer = io.BytesIO()
        self.chart().savefig(buffer, format="png", dpi=90)
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    def _repr_html_(self) -> str:
        notes = "".join(f"<p><small>{html.escape(n)}</small></p>" for n in self.notes)
        table = frame_html(self.summary)
        image = f'<img alt="score vs tokens/s" src="data:image/png;base64,{self._chart_png()}"/>'
        return f"<div>{table}{image}{notes}</div>"

    def __repr__(self) -> str:
        text = self.summary.to_string(float_format=lambda v: f"{v:.3g}", na_rep="-")
        return "\n".join([text, *self.notes])
