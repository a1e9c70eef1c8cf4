"""Will a model fit here: the arithmetic of ``ollama_process/fit.py`` for a named model.

Shared by ``%ollama fit`` and the model panel. The model's shape comes from
``/api/show`` when it is installed and from the registry otherwise; the budget
from this machine's profile (or the ``hardware`` asked about).
"""

from __future__ import annotations

from .application import use_cases
from .domain import InvalidInputError, ModelName
from .ollama_process.fit import FitReport, fit, machine_budget
from .ollama_process.hardware import Hardware
from .presentation.display import Sections, Table
from .runtime import Runtime


def fit_report(
    runtime: Runtime,
    model: str,
    *,
    context: int | None = None,
    parallel: int | None = None,
    hardware: Hardware | None = None,
) -> FitReport:
    """The report ``%ollama fit`` and the model panel show."""
    for flag, value in (("ctx", context), ("parallel", parallel)):
        if value is not None and value < 1:
            raise InvalidInputError(f"{flag} must be at least 1, got {value}.")
    name = ModelName(model)
    registry = runtime.registry
    shape = runtime.run(lambda ports: use_cases.model_shape(ports, name, registry))
    server = runtime.server
    profiles = server.profiles
    # The profiles' table stands in when the model's header gave no KV figure.
    listed = [s.kv_bytes_per_token for n, s in profiles.models.items() if name.matches(n)]
    known_kv = {shape.name: listed[0]} if listed else None
    machine = machine_budget(hardware or server.hardware, profiles)
    return fit(shape, machine, context=context, parallel=parallel, known_kv=known_kv)


def report_view(report: FitReport) -> Sections:
    m = report.machine
    profile = f", profile {m.profile}" if m.profile else ""
    arithmetic = Table(
        ("", ""),
        tuple(report.rows()),
        title=f"Will {report.shape.name} fit? {m.description}{profile}",
        footer=f"Model figures from {report.shape.source}.",
    )
    largest = Table(
        ("slots", "largest context that fits"),
        tuple((str(p), f"{ctx:,}" if ctx else "none") for p, ctx in report.largest()),
        title="Largest ctx x slots",
        footer=(
            f"Capped at the model's trained context ({report.shape.trained_context:,})."
            if report.shape.trained_context
            else ""
        ),
    )
    return Sections((arithmetic, largest))
