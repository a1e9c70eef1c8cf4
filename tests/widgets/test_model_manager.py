"""ModelManager against the stand-in: table, sorting, pull with progress, delete, load/unload."""

from __future__ import annotations

import time
from typing import Any

from ollama_nb.widgets import ModelManager

from .conftest import Env, wait_for


def ready(env: Env, **kwargs: Any) -> ModelManager:
    kwargs.setdefault("refresh_interval_s", None)
    manager = ModelManager(runtime=env.runtime, **kwargs)
    wait_for(lambda: manager.refreshes >= 1, "the first refresh")
    return manager


def test_installed_models_are_a_sortable_table_with_capabilities(env: Env) -> None:
    manager = ready(env)
    names = [r.name for r in manager.rows]
    assert {"llama3.2:latest", "gemma3:4b", "qwen3:0.6b"} <= set(names)
    gemma = next(r for r in manager.rows if r.name == "gemma3:4b")
    assert "vision" in gemma.capabilities and gemma.family and gemma.quantization
    assert "gemma3:4b" in manager.installed_table.value
    assert "vision" in manager.installed_table.value
    manager.sort_by.value = "size"
    manager.descending.value = True
    biggest = max(manager.rows, key=lambda r: r.size_bytes).name
    assert manager.selected.options[0] == biggest
    manager.close()


def test_warm_loads_and_unload_frees_a_model(env: Env) -> None:
    manager = ready(env)
    manager.selected.value = "qwen3:0.6b"
    manager.warm_button.click()
    wait_for(lambda: "qwen3:0.6b" in manager.loaded_table.value, "the load")
    assert "unloads in" in manager.loaded_table.value
    body = env.requests("/api/generate")[-1]
    assert body["model"] == "qwen3:0.6b" and body["prompt"] == ""
    manager.unload_button.click()
    wait_for(lambda: "No model loaded." in manager.loaded_table.value, "the unload")
    assert env.requests("/api/generate")[-1]["keep_alive"] == 0
    manager.close()


def test_set_default_changes_the_shared_setting(env: Env) -> None:
    manager = ready(env)
    manager.selected.value = "gemma3:4b"
    manager.default_button.click()
    assert env.runtime.settings.default_model == "gemma3:4b"
    manager.close()


def test_pull_shows_progress_per_layer_and_adds_the_model(env: Env) -> None:
    manager = ready(env)
    manager.pull_name.value = "moondream"
    manager.pull_button.click()
    wait_for(lambda: "Pulled moondream" in manager.banner.text, "the pull")
    assert manager.progress and all(v == 1.0 for v in manager.progress.values())
    assert not manager.pull_button.disabled and manager.cancel_pull_button.disabled
    wait_for(lambda: any(r.name.startswith("moondream") for r in manager.rows), "the new row")
    manager.close()


def test_pull_of_an_unknown_model_shows_the_servers_error(env: Env) -> None:
    manager = ready(env)
    manager.pull("no-such-model-anywhere")
    wait_for(lambda: manager.banner.level == "error", "the error")
    assert "no-such-model-anywhere" in manager.banner.text
    assert not manager.pull_button.disabled
    manager.close()


def test_a_pull_can_be_cancelled(slow_env: Env) -> None:
    manager = ready(slow_env)
    manager.pull("phi4-mini")
    wait_for(lambda: manager.progress, "the first layer")
    manager.cancel_pull_button.click()
    wait_for(lambda: "cancelled" in manager.banner.text, "the cancellation")
    assert not manager.pull_button.disabled
    assert not any(r.name.startswith("phi4-mini") for r in manager.rows)
    manager.close()


def test_delete_asks_first_and_deleting_the_default_clears_it(env: Env) -> None:
    env.runtime.configure(default_model="qwen3:0.6b")
    manager = ready(env)
    manager.selected.value = "qwen3:0.6b"
    manager.delete_button.click()
    assert manager.confirm_box.layout.display == ""
    assert "default model" in manager.confirm_text.value
    manager.cancel_delete_button.click()
    assert manager.confirm_box.layout.display == "none"
    assert env.standin.requests("/api/delete") == []
    manager.delete_button.click()
    manager.confirm_button.click()
    wait_for(lambda: "which was the default model" in manager.banner.text, "the delete")
    assert env.runtime.settings.default_model is None
    assert env.requests("/api/delete")[-1]["model"] == "qwen3:0.6b"
    wait_for(lambda: "qwen3:0.6b" not in manager.selected.options, "the refreshed table")
    manager.close()


def test_with_no_models_the_profiles_recommended_models_are_offered(empty_env: Env) -> None:
    manager = ready(empty_env)
    wait_for(lambda: manager.recommendations.children, "the recommendations")
    profile = empty_env.runtime.server.plan().choice.profile
    assert profile is not None
    assert manager.recommended == list(dict.fromkeys([profile.models.text, profile.models.vision]))
    descriptions = [getattr(b, "description", "") for b in manager.recommendations.children]
    assert f"Pull {profile.models.text}" in descriptions
    manager.close()


def test_the_refresh_timer_runs_until_close(env: Env) -> None:
    manager = ready(env, refresh_interval_s=0.05)
    wait_for(lambda: manager.refreshes >= 3, "three refreshes")
    manager.close()
    assert manager._background.active == 0
    count = manager.refreshes
    seen = len(env.standin.requests("/api/tags"))
    time.sleep(0.3)
    assert manager.refreshes == count
    assert len(env.standin.requests("/api/tags")) == seen


def test_will_it_fit_shows_the_arithmetic_before_pulling(env: Env) -> None:
    manager = ready(env)
    manager.pull_name.value = "llama3.2"
    manager.fit_button.click()
    wait_for(lambda: "verdict" in manager.fit_view.value, "the fit report")
    view = manager.fit_view.value
    assert "Will llama3.2:latest fit?" in view and "= budget" in view and "+ KV cache" in view
    assert "114,688 B/token" in view  # from /api/show: 28 layers x 8 KV heads x 256 x 2
    # A model the registry cannot tell about (unreachable here): one line in the banner.
    env.runtime.configure(registry_url="http://127.0.0.1:9")
    manager.check_fit("not-installed-model")
    wait_for(lambda: manager.banner.level == "error", "the error")
    assert "registry" in manager.banner.text
    manager.close()
