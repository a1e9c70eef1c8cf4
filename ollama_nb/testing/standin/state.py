"""What a stand-in remembers on top of a server's state: armed faults and the request log."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping

from ...serving.engine import Engine
from ...serving.images import ImageDecodeError, decode_image
from ...serving.state import ServerState
from ...serving.wire import JsonObject, now_rfc3339
from .config import StandinConfig
from .faults import FaultBook, FaultPlan

REQUEST_LOG_SIZE = 1000
_LOGGED_HEADERS = (
    "content-type",
    "user-agent",
    "accept",
    "x-standin-fault",
    "x-standin-fault-after",
)


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


class StandinState(ServerState):
    """The shared state behind every handler of one stand-in."""

    config: StandinConfig

    def __init__(self, config: StandinConfig, engines: Mapping[str, Engine]) -> None:
        super().__init__(config, engines)
        self.faults = FaultBook()
        self.log: deque[JsonObject] = deque(maxlen=REQUEST_LOG_SIZE)
        self._ids = itertools.count(1)

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
        await self.unload_all()

    async def unload_idle(self, name: str) -> None:
        """Unload ``name`` unless a request is using it (so the next request loads cold)."""
        entry = self.residency.get(name)
        if entry is not None and not entry.in_use:
            await self.unload(name)
