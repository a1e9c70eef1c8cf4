"""A small synchronous client for a running stand-in's admin endpoints.

The pytest fixtures hand one of these to tests; users driving a stand-in from a notebook
or CI script can build one from a URL too.
"""

from __future__ import annotations

from typing import Any

import httpx

from .faults import parse_fault


class StandinHandle:
    """``url``/``host`` of a stand-in plus ``inject``, ``requests``, ``reset``, ``stats``."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.host = self.url.split("://", 1)[-1]
        self._timeout = timeout
        self._client: httpx.Client | None = None

    def _call(self, method: str, path: str, json: object = None) -> Any:
        # One pooled client: building an httpx.Client per call costs ~0.1 s (TLS context).
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=self._timeout)
        response = self._client.request(method, path, json=json)
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        """Close the pooled admin connection (the server keeps running)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def inject(
        self,
        fault: str,
        count: int = 1,
        path: str | None = None,
        after: int = 0,
        seconds: float | None = None,
    ) -> None:
        """Arm ``fault`` for the next ``count`` requests (to ``path`` if given)."""
        spec: dict[str, object] = {
            "fault": parse_fault(fault).value, "count": count, "path": path, "after": after,
        }  # fmt: skip
        if seconds is not None:
            spec["seconds"] = seconds
        self._call("POST", "/_standin/faults", spec)

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """Logged requests, oldest first (optionally only those to ``path``)."""
        query = f"?path={path}" if path else ""
        entries: list[dict[str, Any]] = self._call("GET", f"/_standin/requests{query}")["requests"]
        return entries

    def reset(self) -> None:
        """Clear faults, the log and loaded models; restore the installed models."""
        self._call("POST", "/_standin/reset")

    def stats(self) -> dict[str, Any]:
        """Running/waiting counts, their peaks and the loaded models."""
        stats: dict[str, Any] = self._call("GET", "/_standin/stats")
        return stats

    def __repr__(self) -> str:
        return f"StandinHandle({self.url!r})"
