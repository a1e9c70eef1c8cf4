"""``df.ollama.compare(models, template)``: the same rows through several models, side by side.

Each model (and each option set in ``variants``) runs as an ordinary batch:
same concurrency gate, retries and checkpoint as ``df.ollama.chat``. By default
models run one after another, each warmed first (its cold-load time measured)
and unloaded afterwards if it was not loaded before, so each gets the
machine's memory to itself. ``parallel_models=True`` runs them together when
the profile's memory arithmetic says they fit, and says so either way.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..application import use_cases
from ..application.reply_schema import ReplyColumns
from ..domain import (
    GenerateRequest,
    GenerationOptions,
    InvalidInputError,
    KeepAlive,
    ModelName,
    ModelNotFoundError,
    OllamaNbError,
    Think,
    validate_think,
)
from ..domain.checks import whole_number
from ..runtime import Runtime, get_runtime
from .api import DEFAULT_RETRIES, BatchArgs, Template, _spec
from .arguments import keyword_form3
from .comparison import JUDGE_CAVEAT, Comparison, ContestantRun, Scorer
from .driver import run_blocking
from .progress import Progress
from .runner import BatchRun, BatchSpec
from .template import PromptTemplate, render_with

if TYPE_CHECKING:
    import pandas as pd

    from ..ollama_process.profiles import Budget

DEFAULT_SAMPLE = 200
DEFAULT_RUBRIC = "Is the answer correct, complete and directly responsive to the request?"
#: Variant keys besides Ollama's options.
_VARIANT_KEYS = ("think", "system")
#: When the profile has no figure for a model: f16 KV bytes per token per slot of a
#: typical 3-8B model (the middle of profiles/models.yaml).
_FALLBACK_KV_BYTES_PER_TOKEN = 131_072
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "reason": {"type": "string"},
    },
    "required": ["score", "reason"],
}


@dataclass(frozen=True, slots=True)
class Contestant:
    label: str
    spec: BatchSpec


@dataclass(frozen=True, kw_only=True, slots=True)
class CompareArgs:
    """The keywords of ``compare``, in three groups.

    What counts as right: ``expected`` names the column holding the right answer
    (or, with ``schema``, a ``{field: column}`` mapping: each field is compared
    on its own); answers match after normalising case and whitespace, or by
    ``scorer(answer, expected)``. Without an expected answer, ``judge="model"``
    grades each answer 1-5 against ``rubric``.

    What runs: ``variants={"t0": {"temperature": 0}, "think": {"think": True}}``
    compares option sets too (every model x every variant), over a seeded
    ``sample`` of the rows (``None``: all); ``parallel_models`` runs the models
    together when they fit in memory.

    How each row is sent, as ``batch`` does: ``system``, ``schema``, ``options``,
    ``concurrency``, ``retries``, ``checkpoint``, ``progress``.
    """

    expected: Hashable | Mapping[str, Hashable] | None = None
    scorer: Scorer | None = None
    judge: str | None = None
    rubric: str | None = None
    variants: Mapping[str, Mapping[str, Any]] | None = None
    sample: int | None = DEFAULT_SAMPLE
    seed: int = 0
    parallel_models: bool = False
    system: str | None = None
    schema: object = None
    options: Mapping[str, Any] | None = None
    concurrency: int | None = None
    retries: int = DEFAULT_RETRIES
    checkpoint: str | None = None
    progress: bool = True


@keyword_form3(CompareArgs)
def compare(
    df: pd.DataFrame, models: Sequence[str], template: Template, args: CompareArgs
) -> Comparison:
    """Run ``template`` over (a seeded sample of) ``df`` with each model; compare the answers.

    The keywords are ``CompareArgs``'s: what counts as right (``expected``,
    ``scorer``, ``judge``, ``rubric``), what runs (``variants``, ``sample``,
    ``seed``, ``parallel_models``) and how each row is sent (as ``batch``).
    """
    return run_compare(df, models, template, args, get_runtime())


def run_compare(
    df: pd.DataFrame,
    models: Sequence[str],
    template: Template,
    args: CompareArgs,
    runtime: Runtime,
) -> Comparison:
    """``compare`` with its keywords checked into ``CompareArgs`` (the accessor calls this)."""
    expected, scorer, judge, rubric = args.expected, args.scorer, args.judge, args.rubric
    variants, sample, seed = args.variants, args.sample, args.seed
    parallel_models, progress = args.parallel_models, args.progress
    import pandas as pd

    if isinstance(models, str) or not models:
        raise InvalidInputError(
            "models must be a list of model names, e.g. ['llama3.2', 'qwen3:4b']."
        )
    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(f"compare needs a pandas DataFrame, got {type(df).__name__}.")
    frame = _sample(df, sample, seed)
    base = BatchArgs(
        system=args.system,
        schema=args.schema,
        options=args.options,
        concurrency=args.concurrency,
        retries=args.retries,
        checkpoint=args.checkpoint,
        prefix="__compare_",  # a comparison never adds columns to the frame
    )
    contestants = _contestants(frame, template, models, variants or {}, base, runtime)
    wanted = _expected(frame, expected, contestants[0].spec.schema)
    if judge is not None and wanted:
        raise InvalidInputError(
            "Give either expected= (answers to match) or judge= (grading), not both."
        )
    judge_spec = _judge_spec(judge, base, runtime) if judge else None
    names = list(dict.fromkeys(c.spec.model for c in contestants))
    checked = [*names, *([judge_spec.model] if judge_spec else [])]
    runtime.run(functools.partial(_check_installed, models=checked))

    notes: list[str] = []
    loaded_before = {m.name for m in runtime.run(use_cases.running_models)}
    together = parallel_models and _fit_together(runtime, names, notes)
    runs: list[ContestantRun] = []
    interrupted = False
    if together:
        loads = runtime.run(functools.partial(_warm_all, models=names))
        batch = [BatchRun(frame, c.spec) for c in contestants]
        interrupted = _run(runtime, batch, "all models")
        runs = [
            _collect(c.label, b, loads.get(c.spec.model))
            for c, b in zip(contestants, batch, strict=True)
        ]
    else:
        for model in names:
            load_s = runtime.run(functools.partial(_warm, model=model))
            for contestant in (c for c in contestants if c.spec.model == model):
                batch_run = BatchRun(frame, contestant.spec)
                interrupted = _run(runtime, [batch_run], contestant.label, progress)
                runs.append(_collect(contestant.label, batch_run, load_s))
                if interrupted:
                    break
            if not any(model.matches(n) for n in loaded_before):
                runtime.run(functools.partial(_unload, model=model))
            if interrupted:
                notes.append("Interrupted: models after " + runs[-1].label + " did not run.")
                break
    if judge_spec is not None and not interrupted:
        _grade(runtime, frame, template, runs, judge_spec, rubric or DEFAULT_RUBRIC, progress)
        notes.append(JUDGE_CAVEAT)
        print(JUDGE_CAVEAT)
    return Comparison(runs, frame.index, wanted, scorer, judge, notes)


# --- building the runs ---------------------------------------------------------------


def _sample(df: pd.DataFrame, sample: int | None, seed: int) -> pd.DataFrame:
    if sample is None or len(df) <= sample:
        return df
    whole_number("sample", sample, 1, optional=True)
    return df.sample(n=sample, random_state=seed)


def _contestants(
    frame: pd.DataFrame,
    template: Template,
    models: Sequence[str],
    variants: Mapping[str, Mapping[str, Any]],
    base: BatchArgs,
    runtime: Runtime,
) -> list[Contestant]:
    out: list[Contestant] = []
    for model in models:
        spec = _spec(frame, template, replace(base, model=model), runtime)
        if not variants:
            out.append(Contestant(spec.model.value, spec))
            continue
        for name, values in variants.items():
            out.append(Contestant(f"{spec.model.value} {name}", _with_variant(spec, name, values)))
    labels = [c.label for c in out]
    if len(set(labels)) != len(labels):
        raise InvalidInputError("The same model is named twice.", hint="Give each model once.")
    return out


def _with_variant(spec: BatchSpec, name: str, values: Mapping[str, Any]) -> BatchSpec:
    if not isinstance(values, Mapping):
        raise InvalidInputError(
            f"variant {name!r} must be a dict of options, e.g. {{'temperature': 0}}."
        )
    option_values = {k: v for k, v in values.items() if k not in _VARIANT_KEYS}
    builder = spec.request
    options = builder.options.merged(GenerationOptions.from_mapping(option_values))
    think: Think | None = validate_think(values["think"]) if "think" in values else builder.think
    system = values.get("system", builder.system)
    return replace(spec, request=replace(builder, options=options, think=think, system=system))


def _expected(
    frame: pd.DataFrame,
    expected: Hashable | Mapping[str, Hashable] | None,
    schema: ReplyColumns | None,
) -> dict[str, list[object]]:
    """``{"": values}`` for whole answers, ``{field: values}`` to compare schema fields."""
    if expected is None:
        return {}
    if isinstance(expected, Mapping):
        if schema is None:
            raise InvalidInputError("expected={field: column} needs schema= (fields to compare).")
        unknown = [f for f in expected if f not in schema.fields]
        if unknown:
            raise InvalidInputError(
                f"expected names field(s) {', '.join(map(repr, unknown))} the schema does not have.",
                hint=f"Schema fields: {', '.join(schema.fields)}.",
            )
        return {str(f): _column(frame, c) for f, c in expected.items()}
    if schema is not None:
        if expected not in schema.fields:
            raise InvalidInputError(
                f"With a schema, expected={expected!r} must name one of its fields "
                f"({', '.join(schema.fields)}), or be a {{field: column}} dict."
            )
        return {str(expected): _column(frame, expected)}
    return {"": _column(frame, expected)}


def _column(frame: pd.DataFrame, column: Hashable) -> list[object]:
    if column not in frame.columns:
        raise InvalidInputError(
            f"expected={column!r} is not a column (columns: {', '.join(map(str, list(frame.columns)[:12]))})."
        )
    return list(frame[column].tolist())


def _judge_spec(judge: str, base: BatchArgs, runtime: Runtime) -> BatchSpec:
    """The judge's batch: one row per answer, a 1-5 verdict as structured output."""
    import pandas as pd

    judged = replace(base, model=judge, schema=JUDGE_SCHEMA, system=None, options=None)
    return _spec(pd.DataFrame({"question": [], "answer": []}), _judge_prompt, judged, runtime)


def _judge_prompt(row: Any) -> str:
    return (
        f"Grade an answer from 1 (useless) to 5 (excellent) against this rubric.\n"
        f"Rubric: {row['rubric']}\n\nRequest:\n{row['question']}\n\nAnswer:\n{row['answer']}\n\n"
        "Reply with the score and a one-sentence reason."
    )


# --- running -----------------------------------------------------------------------------


async def _check_installed(ports: use_cases.Ports, models: Sequence[ModelName]) -> None:
    """Every model is installed, before any row runs (with close names when one is not)."""
    for model in models:
        if await use_cases.installed_match(ports, model) is None:
            raise await use_cases.with_suggestions(
                ports, ModelNotFoundError(model.value, f"model '{model.value}' not found")
            )


async def _warm(ports: use_cases.Ports, model: ModelName) -> float:
    """Load the model before its first row, so rows measure answering, not loading."""
    request = GenerateRequest(model=model, prompt="", allow_empty=True)
    result = await use_cases.complete(ports, request, stream=False)
    return result.timings.load_s


async def _warm_all(ports: use_cases.Ports, models: Sequence[ModelName]) -> dict[ModelName, float]:
    loads = await asyncio.gather(*(_warm(ports, m) for m in models))
    return dict(zip(models, loads, strict=True))


async def _unload(ports: use_cases.Ports, model: ModelName) -> None:
    request = GenerateRequest(model=model, prompt="", allow_empty=True, keep_alive=KeepAlive(0))
    try:
        await use_cases.complete(ports, request, stream=False)
    except OllamaNbError:
        return  # unloading is a courtesy to the next model; never fail the comparison for it


def _run(runtime: Runtime, runs: Sequence[BatchRun], label: str, progress: bool = True) -> bool:
    """Run ``runs`` together on the background loop; True when the user interrupted."""
    total = sum(len(r.frame) for r in runs)
    bar = Progress(total, enabled=progress, description=f"compare {label}")

    async def together() -> None:
        ports = runtime.ports
        await asyncio.gather(*(r.run(ports) for r in runs))

    def counts() -> tuple[int, int, int]:
        return (
            sum(r.results.finished for r in runs),
            sum(r.results.failed for r in runs),
            sum(r.results.eval_token_total for r in runs),
        )

    return run_blocking(runtime.loop, together(), bar, counts).interrupted


def _collect(label: str, run: BatchRun, load_s: float | None) -> ContestantRun:
    r = run.results
    if run.stopped is not None:
        r.mark_unfinished(run.stopped)
    return ContestantRun(
        label=label,
        model=run.spec.model.value,
        answers=[
            t if s in ("ok", "cached") else None for t, s in zip(r.text, r.status, strict=True)
        ],
        status=list(r.status),
        latency_s=list(r.latency_s),
        ttft_s=list(r.ttft_s),
        tokens_per_s=list(r.tokens_per_s),
        prompt_tokens=list(r.prompt_tokens),
        eval_tokens=list(r.eval_tokens),
        fields={name: list(values) for name, values in r.fields.items()},
        cold_load_s=load_s,
    )


def _grade(
    runtime: Runtime,
    frame: pd.DataFrame,
    template: Template,
    runs: list[ContestantRun],
    judge: BatchSpec,
    rubric: str,
    progress: bool,
) -> None:
    """The judge grades every answer of every run in one batch (one judge, warm once)."""
    import pandas as pd

    questions = _questions(frame, template)
    rows = [
        {"question": q, "answer": a, "rubric": rubric}
        for run in runs
        for q, a in zip(questions, run.answers, strict=True)
    ]
    graded = BatchRun(pd.DataFrame(rows), judge)
    _run(runtime, [graded], f"judge {judge.model.value}", progress)
    scores = graded.results.fields.get("score", [])
    reasons = graded.results.fields.get("reason", [])
    n = len(frame)
    for i, run in enumerate(runs):
        chunk = slice(i * n, (i + 1) * n)
        run.judge_scores = [
            float(s) if isinstance(s, int | float) and a is not None else None
            for s, a in zip(scores[chunk], run.answers, strict=True)
        ]
        run.judge_reasons = [str(r) if r is not None else None for r in reasons[chunk]]


def _questions(frame: pd.DataFrame, template: Template) -> list[str]:
    if isinstance(template, str):
        parsed = PromptTemplate.parse(template, list(frame.columns))
        return [parsed.render(row) for row in frame.to_dict("records")]
    return [render_with(template, frame.iloc[i]) for i in range(len(frame))]


# --- memory -------------------------------------------------------------------------------


def _fit_together(runtime: Runtime, models: Sequence[ModelName], notes: list[str]) -> bool:
    """Whether the models' weights and KV caches fit the profile's memory budget at once."""
    budget = memory_budget(runtime, models)
    need, have = budget.required_bytes / 2**30, budget.budget_bytes / 2**30
    if budget.fits:
        notes.append(
            f"Models ran side by side: they need {need:.1f} GiB of the {have:.1f} GiB budget."
        )
        return True
    note = (
        f"parallel_models: the models need {need:.1f} GiB together but the budget is "
        f"{have:.1f} GiB; running them one after another instead."
    )
    print(note)
    notes.append(note)
    return False


def memory_budget(runtime: Runtime, models: Sequence[ModelName]) -> Budget:
    """The profile's arithmetic (``%ollama tune``) applied to these models' real sizes."""
    from ..ollama_process.profiles import (
        Budget,
        ModelLoad,
        choose_profile,
        model_memory,
        ollama_default_context,
    )

    # The server manager the runtime built has detected the machine and read the profiles.
    hardware = runtime.server.hardware
    profiles = runtime.server.profiles
    choice = choose_profile(hardware, profiles)
    sizes = {s.name: s.size_bytes for s in runtime.run(use_cases.list_models)}
    context = choice.budget.context_length if choice.budget else ollama_default_context(hardware)
    parallel = choice.budget.parallel if choice.budget else 1
    factor = choice.budget.kv_factor if choice.budget else 1.0
    loads = []
    for model in models:
        weights = next((size for name, size in sizes.items() if model.matches(name)), 0)
        spec = next((s for name, s in profiles.models.items() if model.matches(name)), None)
        per_token = spec.kv_bytes_per_token if spec else _FALLBACK_KV_BYTES_PER_TOKEN
        loads.append(ModelLoad(model.value, weights, int(context * parallel * per_token * factor)))
    memory, kind = model_memory(hardware)
    profile = choice.profile
    return Budget(
        memory_bytes=memory,
        memory_kind=kind,
        share=profile.memory.gpu_share if profile else 1.0,
        headroom_bytes=int(profile.memory.headroom_gb * 2**30) if profile else 0,
        context_length=context,
        parallel=parallel,
        kv_cache_type=choice.budget.kv_cache_type if choice.budget else "f16",
        kv_factor=factor,
        resident=tuple(loads),
    )
