"""Profile choice for simulated machines, the memory budget, and bad profile files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ollama_nb.domain import ConfigurationError
from ollama_nb.ollama_process import Hardware, ProfileError, choose_profile, load_profiles
from ollama_nb.ollama_process.hardware import detect_hardware
from ollama_nb.ollama_process.profiles import compute_budget, default_profile_dirs, resolve_env

PROFILES = load_profiles()

# machine -> (profile, parallel, context, max loaded, kv cache, text model, vision model)
TABLE: list[tuple[Hardware, tuple[str, str, str, str, str, str, str]]] = [
    (Hardware.apple("M1", memory_gb=8), ("apple-8gb", "1", "4096", "1", "q8_0", "llama3.2:3b", "gemma3:4b")),
    (Hardware.apple("M2", memory_gb=16), ("apple-16gb", "2", "8192", "1", "q8_0", "qwen3:8b", "gemma3:4b")),
    (Hardware.apple("M3", memory_gb=24), ("apple-24gb", "2", "16384", "2", "q8_0", "qwen3:8b", "gemma3:4b")),
    (Hardware.apple("M3", "Pro", memory_gb=36), ("apple-36gb", "2", "16384", "2", "q8_0", "qwen3:14b", "gemma3:4b")),
    (Hardware.apple("M4", "Max", memory_gb=64), ("apple-64gb", "4", "16384", "2", "q8_0", "qwen3:32b", "qwen2.5vl:7b")),
    (Hardware.apple("M4", "Max", memory_gb=128), ("apple-128gb", "4", "32768", "2", "q8_0", "qwen3:32b", "gemma3:27b")),
    (Hardware.apple("M2", "Ultra", memory_gb=192), ("apple-192gb", "4", "32768", "2", "q8_0", "llama3.3:70b", "gemma3:27b")),
    (Hardware.linux(memory_gb=32, cpu_count=16), ("cpu-large", "2", "8192", "2", "f16", "qwen3:8b", "gemma3:4b")),
    (Hardware.linux(memory_gb=64, gpu_memory_gb=24), ("nvidia-24gb", "2", "16384", "2", "q8_0", "qwen3:14b", "gemma3:4b")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("hardware", "expected"), TABLE, ids=lambda v: getattr(v, "describe", lambda: "")()
)
def test_profile_table(hardware: Hardware, expected: tuple[str, ...]) -> None:
    choice = choose_profile(hardware, PROFILES)
    assert choice.profile is not None and choice.budget is not None
    env = choice.profile.server.as_env()
    got = (
        choice.profile.name,
        env["OLLAMA_NUM_PARALLEL"],
        env["OLLAMA_CONTEXT_LENGTH"],
        env["OLLAMA_MAX_LOADED_MODELS"],
        env["OLLAMA_KV_CACHE_TYPE"],
        choice.profile.models.text,
        choice.profile.models.vision,
    )
    assert got == expected
    assert choice.budget.fits
    assert not {"OLLAMA_METAL", "OLLAMA_NUM_GPU", "OLLAMA_MAX_RAM"} & set(env)


def test_too_small_machine_gets_ollama_defaults() -> None:
    choice = choose_profile(Hardware.linux(memory_gb=2), PROFILES)
    assert choice.profile is None and "Ollama's own defaults" in choice.reason


def test_tier_falls_back_when_the_models_do_not_fit() -> None:
    choice = choose_profile(Hardware.linux(memory_gb=64, gpu_memory_gb=12), PROFILES)
    assert choice.profile is not None and choice.profile.name == "nvidia-8gb"
    assert "largest profile whose models fit" in choice.reason


machines = st.one_of(
    st.builds(lambda gb: Hardware.apple("M3", memory_gb=gb), st.integers(1, 512)),
    st.builds(lambda gb, c: Hardware.linux(memory_gb=gb, cpu_count=c), st.integers(1, 1024), st.integers(1, 256)),
    st.builds(
        lambda gb, vram: Hardware.linux(memory_gb=gb, gpu_memory_gb=vram),
        st.integers(4, 1024),
        st.integers(1, 192),
    ),
)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(machines)
def test_no_chosen_profile_exceeds_its_budget(hardware: Hardware) -> None:
    choice = choose_profile(hardware, PROFILES)
    if choice.profile is not None:
        assert choice.budget is not None
        assert choice.budget.required_bytes <= choice.budget.budget_bytes
        assert choice.profile.match.platform == hardware.platform


def test_q8_0_halves_the_kv_cache_and_needs_flash_attention() -> None:
    hw = Hardware.apple("M3", memory_gb=36)
    profile = PROFILES.named("apple-36gb")
    env = profile.server.as_env()
    q8 = compute_budget(hw, profile, PROFILES.models, env)
    f16 = compute_budget(hw, profile, PROFILES.models, {**env, "OLLAMA_KV_CACHE_TYPE": "f16"})
    no_fa = compute_budget(hw, profile, PROFILES.models, {**env, "OLLAMA_FLASH_ATTENTION": "0"})
    assert [m.kv_bytes * 2 for m in q8.resident] == [m.kv_bytes for m in f16.resident]
    assert [m.kv_bytes for m in no_fa.resident] == [m.kv_bytes for m in f16.resident]


def test_override_beats_environment_beats_profile() -> None:
    profile = PROFILES.named("apple-16gb")
    env = resolve_env(
        profile,
        {"OLLAMA_NUM_PARALLEL": 4, "OLLAMA_ORIGINS": "*"},
        {"OLLAMA_NUM_PARALLEL": "3", "OLLAMA_CONTEXT_LENGTH": "2048"},
    )
    assert (env["OLLAMA_NUM_PARALLEL"].value, env["OLLAMA_NUM_PARALLEL"].source) == (
        "4",
        "override",
    )
    assert (env["OLLAMA_CONTEXT_LENGTH"].value, env["OLLAMA_CONTEXT_LENGTH"].source) == (
        "2048",
        "environment",
    )
    assert env["OLLAMA_KEEP_ALIVE"].source == "profile"
    assert env["OLLAMA_ORIGINS"].value == "*"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("OLLAMA_NUM_PARALLEL", "four", "whole number"),
        ("OLLAMA_NUM_PARALLEL", [4], "expected text or a number"),
        ("OLLAMA_FLASH_ATTENTION", "yes please", "1 or 0"),
        ("OLLAMA_KV_CACHE_TYPE", "q5", "f16, q8_0, q4_0"),
        ("OLLAMA_KEEP_ALIVE", "soon", "duration"),
        ("OLLAMA_METAL", "1", "does not read"),
        ("OLLAMA_NUM_GPU", "99", "does not read"),
        ("OLLAMA_MAX_RAM", "8g", "does not read"),
        ("OLLAMA_HOST", "0.0.0.0", "host setting"),
        ("not a name", "1", "not an environment variable name"),
    ],
)
def test_bad_override_values(name: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        resolve_env(None, {name: value}, {})


def _copy_profiles(tmp_path: Path) -> Path:
    target = tmp_path / "profiles"
    shutil.copytree(default_profile_dirs()[0], target)
    return target


def test_malformed_yaml_names_the_file(tmp_path: Path) -> None:
    folder = _copy_profiles(tmp_path)
    (folder / "broken.yaml").write_text("name: broken\nmatch: [unclosed\n")
    with pytest.raises(ProfileError, match=r"profiles/broken.yaml: not valid YAML \(line"):
        load_profiles([folder])


def test_wrong_field_names_the_file_and_the_field(tmp_path: Path) -> None:
    folder = _copy_profiles(tmp_path)
    text = (folder / "apple-16gb.yaml").read_text().replace("num_parallel: 2", "num_parallel: two")
    (folder / "apple-16gb.yaml").write_text(text)
    with pytest.raises(ProfileError, match=r"profiles/apple-16gb.yaml: server.num_parallel: "):
        load_profiles([folder])


def test_unknown_model_and_unknown_key(tmp_path: Path) -> None:
    folder = _copy_profiles(tmp_path)
    path = folder / "cpu-small.yaml"
    original = path.read_text()
    path.write_text(original.replace("text: llama3.2:3b", "text: nosuch:1b"))
    with pytest.raises(ProfileError, match=r"cpu-small.yaml: models.text: 'nosuch:1b' is not in"):
        load_profiles([folder])
    path.write_text(original + "OLLAMA_METAL: 1\n")
    with pytest.raises(ProfileError, match=r"cpu-small.yaml: OLLAMA_METAL: Extra inputs"):
        load_profiles([folder])


# --- hardware detection, with the probes injected --------------------------------------

_SYSCTL = """machdep.cpu.brand_string: Apple M3 Max
hw.memsize: 68719476736
hw.ncpu: 16
hw.perflevel0.physicalcpu: 12
hw.perflevel1.physicalcpu: 4
"""


class _Memory:
    total = 32 * 1024**3


def _runner(outputs: dict[str, str]) -> Any:
    def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        key = Path(args[0]).name
        if key not in outputs:
            raise FileNotFoundError(args[0])
        return subprocess.CompletedProcess(args, 0, stdout=outputs[key], stderr="")

    return run


def test_detects_an_apple_chip_from_sysctl() -> None:
    hw = detect_hardware(
        run=_runner({"sysctl": _SYSCTL}), system="Darwin", machine="arm64",
        virtual_memory=_Memory, which=lambda name: None,
    )  # fmt: skip
    assert (hw.platform, hw.chip_family, hw.chip_variant) == ("apple-silicon", "M3", "Max")
    assert (hw.memory_gb, hw.performance_cores, hw.efficiency_cores) == (64, 12, 4)
    assert hw.describe() == "Apple M3 Max, 64 GB unified memory, 12P+4E cores"


def test_detects_linux_with_and_without_nvidia() -> None:
    cpu = detect_hardware(
        run=_runner({}), system="Linux", machine="x86_64", virtual_memory=_Memory,
        which=lambda name: None, cpu_count=lambda: 12,
    )  # fmt: skip
    assert (cpu.platform, cpu.memory_gb, cpu.cpu_count) == ("cpu", 32, 12)
    gpu = detect_hardware(
        run=_runner({"nvidia-smi": "24576\n24576\n"}), system="Linux", machine="x86_64",
        virtual_memory=_Memory, which=lambda name: "/usr/bin/nvidia-smi",
    )  # fmt: skip
    assert gpu.platform == "nvidia" and gpu.gpu_memory_bytes == 48 * 1024**3
    no_driver = detect_hardware(
        run=_runner({"nvidia-smi": ""}), system="Linux", machine="x86_64",
        virtual_memory=_Memory, which=lambda name: "/usr/bin/nvidia-smi",
    )  # fmt: skip
    assert no_driver.platform == "cpu"
