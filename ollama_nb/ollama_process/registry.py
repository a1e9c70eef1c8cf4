"""What a model in Ollama's registry weighs, read before it is pulled.

The registry speaks the OCI distribution API: ``/v2/<repo>/manifests/<tag>``
lists the model's layers (weights, projector, template, params) with their
sizes, and ``/v2/<repo>/blobs/<digest>`` serves each layer. The weights layer
is a GGUF file whose header holds the layer and head counts the KV cache
depends on, so a ranged download of its first megabytes is enough; the rest
is never fetched.

Everything read here is hostile: the manifest is size-capped and checked field
by field, the header download is capped at ``header_bytes``, and a header that
ends early or is not GGUF leaves the KV figure unknown rather than failing.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import httpx

from ..domain import ModelName, OllamaNbError
from ..domain.shape import ModelShape
from ..embedded.gguf import read_metadata

DEFAULT_REGISTRY = "https://registry.ollama.ai"
MAX_MANIFEST_BYTES = 1024 * 1024
#: Enough for every header in the library we checked (vocabularies dominate: ~3 MB).
DEFAULT_HEADER_BYTES = 16 * 1024 * 1024
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_WEIGHT_LAYERS = (
    "application/vnd.ollama.image.model",
    "application/vnd.ollama.image.projector",
    "application/vnd.ollama.image.adapter",
)
_MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.manifest.v1+json"
)


class RegistryError(OllamaNbError):
    """The registry could not say what the model weighs (unreachable, unknown, malformed)."""


def repository(model: ModelName) -> tuple[str, str]:
    """``(repo, tag)`` on the registry: ``llama3.2`` -> ``("library/llama3.2", "latest")``."""
    name, _, tag = model.canonical.partition(":")
    elsewhere = name.count("/") > 1 or ("/" in name and "." in name.split("/", 1)[0])
    if elsewhere:
        raise RegistryError(
            f"{model.value} is not on Ollama's registry (another host is named).",
            hint="Pull it first; `%ollama fit` then reads /api/show.",
        )
    return (name if "/" in name else f"library/{name}"), tag or "latest"


class RegistryClient:
    """Reads manifests and GGUF headers; ``transport`` lets tests serve recorded ones."""

    def __init__(
        self,
        base_url: str = DEFAULT_REGISTRY,
        *,
        timeout_s: float = 10.0,
        header_bytes: int = DEFAULT_HEADER_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = httpx.Timeout(timeout_s)
        self._header_bytes = header_bytes
        self._transport = transport

    async def shape(self, model: ModelName) -> ModelShape:
        repo, tag = repository(model)
        async with httpx.AsyncClient(
            timeout=self._timeout, transport=self._transport, follow_redirects=True
        ) as client:
            manifest = await self._manifest(client, model, repo, tag)
            layers = _layers(manifest, model)
            weights = sum(size for kind, _, size in layers if kind in _WEIGHT_LAYERS)
            model_layer = next((d for kind, d, _ in layers if kind == _WEIGHT_LAYERS[0]), None)
            if model_layer is None:
                raise RegistryError(f"The registry's manifest for {model.value} has no weights.")
            metadata = await self._header(client, repo, model_layer)
        source = f"registry manifest ({self.base_url})"
        if metadata is None:
            return ModelShape(model.value, weights, None, None, source + ", header unreadable")
        return ModelShape.from_metadata(model.value, weights, metadata, source + " + GGUF header")

    async def _manifest(
        self, client: httpx.AsyncClient, model: ModelName, repo: str, tag: str
    ) -> dict[str, Any]:
        url = f"{self.base_url}/v2/{repo}/manifests/{tag}"
        try:
            async with client.stream("GET", url, headers={"Accept": _MANIFEST_TYPES}) as response:
                if response.status_code == 404:
                    raise RegistryError(f"{model.value} is not in the registry.")
                if response.status_code != 200:
                    raise RegistryError(
                        f"The registry answered {response.status_code} for {model.value}."
                    )
                body = await _read_capped(response, MAX_MANIFEST_BYTES)
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"The model registry ({self.base_url}) cannot be reached: {type(exc).__name__}.",
                hint="Installed models are read from /api/show instead; pull first to check offline.",
            ) from exc
        if body is None:
            raise RegistryError(f"The registry's manifest for {model.value} is too large.")
        try:
            data = json.loads(body)
        except ValueError:
            raise RegistryError(f"The registry's manifest for {model.value} is not JSON.") from None
        if not isinstance(data, dict):
            raise RegistryError(f"The registry's manifest for {model.value} is not an object.")
        return data

    async def _header(
        self, client: httpx.AsyncClient, repo: str, digest: str
    ) -> dict[str, object] | None:
        """The GGUF header's keys, from the first ``header_bytes`` of the weights; None if unreadable."""
        url = f"{self.base_url}/v2/{repo}/blobs/{digest}"
        headers = {"Range": f"bytes=0-{self._header_bytes - 1}"}
        try:
            async with client.stream("GET", url, headers=headers) as response:
                if response.status_code not in (200, 206):
                    return None
                data = await _read_prefix(response, self._header_bytes)
        except httpx.HTTPError:
            return None
        try:
            return read_metadata(io.BytesIO(data))
        except (EOFError, ValueError, UnicodeDecodeError, AssertionError):
            return None


def _layers(manifest: dict[str, Any], model: ModelName) -> list[tuple[str, str, int]]:
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise RegistryError(f"The registry's manifest for {model.value} lists no layers.")
    out = []
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        kind, digest, size = layer.get("mediaType"), layer.get("digest"), layer.get("size")
        if (
            isinstance(kind, str)
            and isinstance(digest, str)
            and _DIGEST.match(digest)
            and isinstance(size, int)
            and not isinstance(size, bool)
            and size >= 0
        ):
            out.append((kind, digest, size))
    return out


async def _read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The whole body, or None when it is longer than ``limit``."""
    parts: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


async def _read_prefix(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes (a server that ignores ``Range`` is cut off there)."""
    parts: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        parts.append(chunk[: limit - total])
        total += len(parts[-1])
        if total >= limit:
            break
    return b"".join(parts)
