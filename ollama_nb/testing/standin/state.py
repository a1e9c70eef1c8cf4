"""Everything one running stand-in remembers: models, slots, faults, the request log."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Mapping

from .catalogue import Catalogue, ModelCard
from .config import StandinConfig
from .engine import Engine
from .faults import FaultBook, FaultPlan
from .images import ImageDecodeError, decode_image
from .scheduler import Loaded, Residency, Slots, load_options
from .wire import JsonObject, now_rfc3339

REQUEST_LOG_SIZE = 1000
_LOGGED_HEADERS = (
    "content-type",
    "user-agent",
    "accept",
    "x-standin-fault",
    "x-standin-fault-after",
)
_DEFAULT_NUM_CTX = 4096


def describe_images(value: object) -> object:
    """Replace base64 images by what they decode to, so the log stays small and useful."""
    if not isinstance(value, list):
        return value
    out: list[object] = []
    for item in value:
        try:
            info = decode_image(item)
        except ImageDecodeError as exc:
            out.append({"error": str(exc)})
        else:
            out.append(
                {"format": info.format, "width": info.width, "height": info.height,
                 "bytes": len(info.data)}
            )  # fmt: skip
    return out


def summarize_body(body: object) -> object:
    """The body as logged: images described, everything else as received."""
    if not isinstance(body, dict):
        return body
    out = dict(body)
    if "images" in out:
        out["images"] = describe_images(out["images"])
    messages = out.get("messages")
    if isinstance(messages, list):
        out["messages"] = [
            {**m, "images": describe_images(m["images"])}
            if isinstance(m, dict) and "images" in m
            else m
            for m in messages
        ]
    return out


class StandinState:
    """The shared state behind every handler of one server."""

    def __init__(self, config: StandinConfig, engines: Mapping[str, Engine]) -> None:
        self.config = config
        self.engines = dict(engines)
        self.catalogue = Catalogue(config.models, config.registry)
        self.slots = Slots(config.num_parallel, config.max_queue)
        self.residency = Residency()
        self.faults = FaultBook()
        self.log: deque[JsonObject] = deque(maxlen=REQUEST_LOG_SIZE)
        self._ids = itertools.count(1)

    def engine_for(self, card: ModelCard) -> Engine:
        """The engine named by the card (a misconfigured catalogue fails loudly)."""
        try:
            return self.engines[card.engine]
        except KeyError:
            raise LookupError(f"no engine {card.engine!r} for model {card.name}") from None

    def memory_bytes(self, card: ModelCard) -> int:
        """What a loaded model occupies: the engine's estimate if it makes one, else its size."""
        measure = getattr(self.engines.get(card.engine), "memory_bytes", None)
        size = measure(card) if callable(measure) else None
        return size if isinstance(size, int) else card.size_bytes

    def record(
        self, method: str, path: str, headers: Mapping[str, str], body: object,
        fault: FaultPlan | None,
    ) -> None:  # fmt: skip
        """Append one request to the log that ``GET /_standin/requests`` returns."""
        self.log.append(
            {
                "id": next(self._ids),
                "time": now_rfc3339(),
                "method": method,
                "path": path,
                "headers": {k: headers[k] for k in _LOGGED_HEADERS if k in headers},
                "body": summarize_body(body),
                "fault": fault.fault.value if fault else None,
            }
        )

    async def reset(self) -> None:
        """Forget faults, the log, loaded models, peaks, and restore the installed models."""
        self.faults.clear()
        self.log.clear()
        self.catalogue.reset()
        self.slots.reset_peaks()
        for entry in self.residency.clear():
            await self.engine_for(entry.card).unload(entry.card)

    async def evict_expired(self) -> None:
        """Unload every model whose keep-alive ran out."""
        for entry in self.residency.evict_expired():
            await self.engine_for(entry.card).unload(entry.card)

    async def unload(self, name: str) -> None:
        """Unload a model now (``keep_alive: 0`` with no prompt, or delete)."""
        entry = self.residency.pop(name)
        if entry is not None:
            await self.engine_for(entry.card).unload(entry.card)

    async def acquire_model(
        self, card: ModelCard, options: Mapping[str, object], keep_alive_s: float,
        extra_load_s: float | None,
    ) -> Loaded:  # fmt: skip
        """Make sure ``card`` is loaded (cold-loading it if needed) and mark it in use.

        Concurrent requests for a model that is loading wait for that one load.
        ``extra_load_s`` (the ``slow_load`` fault) forces a cold load that long slower.
        """
        await self.evict_expired()
        wanted = load_options(options)
        entry = self.residency.get(card.name)
        if (
            entry is not None
            and not entry.in_use
            and (entry.load_options != wanted or extra_load_s is not None)
        ):
            await self.unload(card.name)
            entry = None
        if entry is None:
            num_ctx = wanted.get("num_ctx")
            ctx = (
                int(num_ctx)
                if isinstance(num_ctx, int | float) and num_ctx > 0
                else min(_DEFAULT_NUM_CTX, card.context_length)
            )
            entry = Loaded(card=card, load_options=wanted, keep_alive_s=keep_alive_s,
                           context_length=ctx)  # fmt: skip
            self.residency.put(entry)
        entry.in_use += 1
        entry.keep_alive_s = keep_alive_s
        try:
            async with entry.lock:
                if extra_load_s:
                    await asyncio.sleep(extra_load_s)
                if not entry.ready:
                    await self.engine_for(card).load(card, options)
                    entry.ready = True
        except BaseException:
            await self.release_model(entry, keep_alive_s)
            raise
        return entry

    async def release_model(self, entry: Loaded, keep_alive_s: float) -> None:
        """A request is done with the model: start its keep-alive clock (0 unloads now)."""
        entry.in_use -= 1
        entry.keep_alive_s = keep_alive_s
        if entry.in_use:
            return
        if keep_alive_s <= 0 or not entry.ready:
            if self.residency.get(entry.card.name) is entry:
                await self.unload(entry.card.name)
        else:
            entry.expires_at = time.monotonic() + keep_alive_s
