"""``%ollama fit``: weights + KV cache + overhead against the machine's budget, before a pull.

The registry is served from loopback: a constructed manifest and a GGUF header built
here with the real models' shapes (Gemma 3 270M, Llama 3.3 70B), so the client's
ranged download, the header parsing and the arithmetic are all exercised for real.
"""

from __future__ import annotations

import json
import re
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ollama_nb.domain import ModelName
from ollama_nb.domain.shape import ModelShape
from ollama_nb.ollama_process.fit import fit, machine_budget
from ollama_nb.ollama_process.hardware import GIB, Hardware
from ollama_nb.ollama_process.profiles import load_profiles
from ollama_nb.ollama_process.registry import RegistryClient, RegistryError

from .conftest import Shell

MODEL_LAYER = "application/vnd.ollama.image.model"


def gguf_header(arch: str, values: dict[str, int], vocabulary: int = 2000) -> bytes:
    """A GGUF v3 header: the architecture keys plus a vocabulary, as real files start."""

    def string(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<Q", len(data)) + data

    entries = [string("general.architecture") + struct.pack("<I", 8) + string(arch)]
    for key, value in values.items():
        entries.append(string(f"{arch}.{key}") + struct.pack("<I", 4) + struct.pack("<I", value))
    tokens = b"".join(string(f"tok{i}") for i in range(vocabulary))
    entries.append(string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, vocabulary) + tokens)
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, len(entries))
    return head + b"".join(entries)


@dataclass
class RegistryModel:
    weights: int
    header: bytes
    digest: str


GEMMA_270M = RegistryModel(
    weights=291_548_288,
    header=gguf_header(
        "gemma3",
        {
            "block_count": 18,
            "context_length": 32_768,
            "embedding_length": 640,
            "attention.head_count": 4,
            "attention.head_count_kv": 1,
            "attention.key_length": 256,
            "attention.value_length": 256,
        },
    ),
    digest="sha256:" + "1" * 64,
)
LLAMA_70B = RegistryModel(
    weights=42_520_412_800,
    header=gguf_header(
        "llama",
        {
            "block_count": 80,
            "context_length": 131_072,
            "embedding_length": 8192,
            "attention.head_count": 64,
            "attention.head_count_kv": 8,
        },
    ),
    digest="sha256:" + "7" * 64,
)


class FakeRegistry(ThreadingHTTPServer):
    models: dict[str, RegistryModel]
    ranges: list[str]
    ignore_range: bool = False

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that stops reading (as ours does past the header) is not an error."""
        return


class RegistryHandler(BaseHTTPRequestHandler):
    server: FakeRegistry

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def do_GET(self) -> None:
        manifest = re.fullmatch(r"/v2/library/([^/]+)/manifests/([^/]+)", self.path)
        blob = re.fullmatch(r"/v2/library/([^/]+)/blobs/(sha256:[0-9a-f]{64})", self.path)
        if manifest:
            model = self.server.models.get(f"{manifest[1]}:{manifest[2]}")
            if model is None:
                self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                return
            body = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": "sha256:" + "c" * 64, "size": 490},
                "layers": [
                    {"mediaType": MODEL_LAYER, "digest": model.digest, "size": model.weights},
                    {"mediaType": "application/vnd.ollama.image.license",
                     "digest": "sha256:" + "d" * 64, "size": 8_432},
                    {"mediaType": "application/vnd.ollama.image.template",
                     "digest": "sha256:" + "e" * 64, "size": 358},
                    {"mediaType": MODEL_LAYER, "digest": "not-a-digest", "size": 10**15},
                ],
            }  # fmt: skip
            self._send(200, json.dumps(body).encode())
        elif blob:
            model = next(m for m in self.server.models.values() if m.digest == blob[2])
            wanted = self.headers.get("Range", "")
            self.server.ranges.append(wanted)
            if self.server.ignore_range:  # a whole 'file': far more than the header
                self._send(200, model.header + b"\0" * (4 * 1024 * 1024))
                return
            end = int(wanted.rpartition("-")[2]) + 1
            self._send(206, model.header[:end])
        else:
            self._send(404, b"{}")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    server = FakeRegistry(("127.0.0.1", 0), RegistryHandler)
    server.models = {"gemma3:270m": GEMMA_270M, "llama3.3:70b": LLAMA_70B}
    server.ranges = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def url(server: FakeRegistry) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


async def test_the_registry_gives_weights_and_kv_size_from_a_ranged_header(
    registry: FakeRegistry,
) -> None:
    client = RegistryClient(url(registry))
    small = await client.shape(ModelName("gemma3:270m"))
    assert small.weights_bytes == GEMMA_270M.weights  # the malformed layer is ignored
    assert small.kv_bytes_per_token == 18 * 1 * (256 + 256) * 2
    assert small.trained_context == 32_768 and "registry manifest" in small.source
    big = await client.shape(ModelName("llama3.3:70b"))
    assert big.kv_bytes_per_token == 80 * 8 * (128 + 128) * 2 == 327_680
    assert registry.ranges and all(r.startswith("bytes=0-") for r in registry.ranges)
    with pytest.raises(RegistryError, match="not in the registry"):
        await client.shape(ModelName("nosuch:1b"))


async def test_a_header_too_long_or_a_server_ignoring_range_leaves_kv_unknown(
    registry: FakeRegistry,
) -> None:
    cut = await RegistryClient(url(registry), header_bytes=4096).shape(ModelName("gemma3:270m"))
    assert cut.kv_bytes_per_token is None and "header unreadable" in cut.source
    registry.ignore_range = True
    capped = RegistryClient(url(registry), header_bytes=64 * 1024)
    whole = await capped.shape(ModelName("gemma3:270m"))  # read stops at 64 KiB
    assert whole.kv_bytes_per_token == 18_432


async def test_an_unreachable_registry_is_one_clear_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RegistryError, match="cannot be reached"):
        await RegistryClient(f"http://127.0.0.1:{port}", timeout_s=2).shape(ModelName("x:1b"))


@pytest.mark.parametrize(
    ("memory_gb", "model", "fits"),
    [
        (16, GEMMA_270M, True),
        (128, GEMMA_270M, True),
        (16, LLAMA_70B, False),
        (128, LLAMA_70B, True),
    ],
)
def test_the_arithmetic_on_16_and_128_gb_macs(
    memory_gb: int, model: RegistryModel, fits: bool
) -> None:
    import io

    from ollama_nb.embedded.gguf import read_metadata

    shape = ModelShape.from_metadata(
        "m", model.weights, read_metadata(io.BytesIO(model.header)), "test"
    )
    machine = machine_budget(Hardware.apple(memory_gb=memory_gb), load_profiles())
    report = fit(shape, machine)
    assert report.fits is fits
    assert report.required_bytes == shape.weights_bytes + report.kv_bytes + report.overhead_bytes
    assert report.kv_bytes == int(
        report.context * report.parallel * shape.kv_bytes_per_token * report.kv_factor  # type: ignore[operator]
    )
    largest = dict(report.largest())
    if fits:
        assert largest[report.parallel] >= min(report.context, shape.trained_context or 0)
    else:  # 70B on 16 GB: the weights alone are over budget, at any context
        assert set(largest.values()) == {0} and "weights alone" in report.verdict()


def test_fit_prints_the_arithmetic_for_a_270m_and_a_70b_model(
    shell: Shell, registry: FakeRegistry
) -> None:
    shell.runtime.configure(registry_url=url(registry))
    for memory in (16, 128):
        for model in ("gemma3:270m", "llama3.3:70b"):
            text = repr(shell.run(f"%ollama fit {model} --machine apple:{memory}"))
            print(text)
            assert f"Will {model} fit? Apple M3, {memory} GB unified memory" in text
            assert "= budget" in text and "+ KV cache" in text and "verdict" in text
    small_on_16 = repr(shell.run("%ollama fit gemma3:270m --machine apple:16 --ctx 32768"))
    assert "32768 ctx x 2 slots x 18,432 B/token" in small_on_16 and "fits:" in small_on_16
    big_on_16 = repr(shell.run("%ollama fit llama3.3:70b --machine apple:16"))
    assert "DOES NOT FIT: the weights alone" in big_on_16
    big_on_128 = repr(shell.run("%ollama fit llama3.3:70b --machine apple:128 --parallel 1"))
    assert "fits:" in big_on_128 and "1 slots" in big_on_128


def test_an_installed_model_is_measured_from_api_show(shell: Shell) -> None:
    text = repr(shell.run("%ollama fit llama3.2 --machine apple:16 --ctx 8192 --parallel 2"))
    # 28 layers x 8 KV heads x (128 + 128) x 2 bytes, from /api/show's model_info.
    assert "8192 ctx x 2 slots x 114,688 B/token" in text
    assert "/api/show" in text and "typical figure" not in text


def test_fit_usage_errors_are_one_line(shell: Shell) -> None:
    from IPython.core.error import UsageError

    from ollama_nb.domain import InvalidInputError

    with pytest.raises(UsageError, match="expected apple:GB"):
        shell.run("%ollama fit llama3.2 --machine mac:16")
    with pytest.raises(InvalidInputError, match="ctx must be at least 1"):
        shell.run("%ollama fit llama3.2 --ctx 0")
    with pytest.raises(UsageError, match="the following arguments are required"):
        shell.run("%ollama fit")


def test_budget_uses_metal_share_on_apple_and_vram_on_nvidia() -> None:
    profiles = load_profiles()
    mac = machine_budget(Hardware.apple(memory_gb=16), profiles)
    assert mac.memory_kind == "unified memory" and mac.share < 1
    assert mac.budget_bytes == int(16 * GIB * mac.share) - mac.headroom_bytes
    gpu = machine_budget(Hardware.linux(memory_gb=64, gpu_memory_gb=24), profiles)
    assert gpu.memory_kind == "GPU memory" and gpu.memory_bytes == 24 * GIB
