"""Everything one running server remembers: installed and loaded models, slots, engines."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from .catalogue import Catalogue, ModelCard
from .config import ServerConfig
from .engine import Engine
from .origins import OriginPolicy
from .scheduler import Loaded, Residency, Slots, load_options

_DEFAULT_NUM_CTX = 4096
log = logging.getLogger("ollama_nb.serving")


def fit_context(card: ModelCard, options: Mapping[str, object]) -> dict[str, object]:
    """``options`` with ``num_ctx`` clamped to what the model was trained for.

    A larger context cannot help (positions past training are noise) and costs memory in
    proportion (200,000 tokens of KV cache is gigabytes), so, like Ollama, we log a warning
    and load the trained length instead.
    """
    out = dict(options)
    num_ctx = out.get("num_ctx")
    limit = card.context_length
    if isinstance(num_ctx, int | float) and not isinstance(num_ctx, bool) and num_ctx > limit > 0:
        log.warning(
            "requested context size too large for model: num_ctx=%d, using the trained "
            "context of %s (%d)", int(num_ctx), card.name, limit,
        )  # fmt: skip
        out["num_ctx"] = limit
    return out


class ServerState:
    """The shared state behind every handler of one server."""

    def __init__(self, config: ServerConfig, engines: Mapping[str, Engine]) -> None:
        self.config = config
        self.engines = dict(engines)
        self.catalogue = Catalogue(config.models, config.registry)
        self.slots = Slots(config.num_parallel, config.max_queue)
        self.residency = Residency()
        self.origins = OriginPolicy.of(config.origins)

    def engine_for(self, card: ModelCard) -> Engine:
        """The engine named by the card (a misconfigured catalogue fails loudly)."""
        try:
            return self.engines[card.engine]
        except KeyError:
            raise LookupError(f"no engine {card.engine!r} for model {card.name}") from None

    def memory_bytes(self, card: ModelCard) -> int:
        """What a loaded model occupies: the engine's estimate if it makes one, else its size."""
        size = self.engine_for(card).memory_bytes(card)
        return card.size_bytes if size is None else size

    async def unload_all(self) -> None:
        """Unload every model (shutdown)."""
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
        self, card: ModelCard, options: Mapping[str, object], keep_alive_s: float
    ) -> Loaded:
        """Make sure ``card`` is loaded (cold-loading it if needed) and mark it in use.

        Concurrent requests for a model that is loading wait for that one load; a request
        whose load-time options differ from the loaded ones reloads the model once it is idle.
        """
        await self.evict_expired()
        wanted = load_options(options)
        entry = self.residency.get(card.name)
        if entry is not None and not entry.in_use and entry.load_options != wanted:
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
