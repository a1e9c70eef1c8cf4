"""The JSON the Lab front end reads, built from the shared core's use cases.

Each collector is a coroutine that runs on the runtime's background loop (the
handlers ``await runtime.arun(...)`` it), so tornado's loop never waits on
Ollama. The shapes here are the contract with ``labextension/src/parse.ts``:
change one, change the other.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from ..application import use_cases
from ..application.use_cases import Ports
from ..domain import ModelInfo, ModelName, ModelSummary, OllamaNbError, RunningModel

Json = dict[str, Any]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def running_json(model: RunningModel) -> Json:
    return {
        "name": model.name,
        "size_bytes": model.size_bytes,
        "size_vram_bytes": model.size_vram_bytes,
        "gpu_share": round(model.gpu_share, 3),
        "expires_at": _iso(model.expires_at),
        "context_length": model.context_length,
        "parameter_size": model.details.parameter_size,
        "quantization": model.details.quantization_level,
    }


def installed_json(
    summary: ModelSummary, info: ModelInfo | None, loaded: RunningModel | None
) -> Json:
    return {
        "name": summary.name,
        "size_bytes": summary.size_bytes,
        "family": summary.details.family,
        "parameter_size": summary.details.parameter_size,
        "quantization": summary.details.quantization_level,
        "modified_at": _iso(summary.modified_at),
        # None (not []) when /api/show failed: "unknown" is not "can do nothing".
        "capabilities": list(info.capabilities) if info else None,
        "context_length": info.context_length if info else None,
        "loaded": loaded is not None,
        "size_vram_bytes": loaded.size_vram_bytes if loaded else 0,
    }


async def probe(ports: Ports) -> Json:
    """Reachability, version and loaded models, in as few round trips as possible."""
    if not await use_cases.is_alive(ports):
        return {"reachable": False, "version": None, "loaded": [], "error": None}
    try:
        version, running = await asyncio.gather(
            use_cases.server_version(ports), use_cases.running_models(ports)
        )
    except OllamaNbError as exc:
        # It answered HEAD but not the API (a proxy, a 403 on a foreign Host header...).
        return {"reachable": False, "version": None, "loaded": [], "error": str(exc)}
    return {
        "reachable": True,
        "version": version,
        "loaded": [running_json(m) for m in running],
        "error": None,
    }


async def running(ports: Ports) -> Json:
    return {"models": [running_json(m) for m in await use_cases.running_models(ports)]}


async def installed(ports: Ports) -> Json:
    """Installed models with capabilities (one ``/api/show`` each, concurrently)."""
    summaries, loaded = await asyncio.gather(
        use_cases.list_models(ports), use_cases.running_models(ports)
    )
    infos = await asyncio.gather(
        *(use_cases.show_model(ports, ModelName(s.name)) for s in summaries),
        return_exceptions=True,
    )
    by_name = {ModelName(m.name).canonical: m for m in loaded if m.name}
    models = []
    for summary, info in zip(summaries, infos, strict=True):
        if isinstance(info, BaseException) and not isinstance(info, OllamaNbError):
            raise info
        models.append(
            installed_json(
                summary,
                info if isinstance(info, ModelInfo) else None,
                by_name.get(ModelName(summary.name).canonical),
            )
        )
    return {"models": models}
