"""The ``ollama serve`` process: start it, find it again, share it, stop only our own.

Everything that must survive the kernel lives in the data directory, one set of
files per port::

    server/11434.lock   held (flock) while a kernel starts, adopts or stops the server
    server/11434.json   who started it: pid, start stamp, command line, env, profile, clients
    server/11434.log    the server's stdout/stderr (rotated at each start past 5 MB)

The files are private (0600 in a 0700 folder). The pid, its start stamp and its
command line identify our process (see ``identity``): a recycled pid, a clock
step, or a state file naming some other program never gets the wrong process
signalled, and a record we cannot judge is kept and reported, never deleted.
Kernels that use the server register as clients in the state
file; the last one to exit stops it (when ``stop_at_exit`` is on). The server runs
in its own session, so a crashed kernel leaves it running and the next start
adopts it instead of launching a second one.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Literal

import httpx
import psutil

from ..domain import OllamaNbError
from ..infrastructure.host import OllamaHost
from ..infrastructure.private_files import open_private, private_dir, write_private_text
from .identity import CannotJudge, ProcessStamp, Verdict, command_of, judge, stamp_of

Progress = Callable[[float, float], None]

LOG_ROTATE_BYTES = 5 * 1024 * 1024
LOG_KEEP = 3
TAIL_LINES = 12


class ServerStartError(OllamaNbError):
    """``ollama serve`` did not come up; the message carries the end of its log."""

    def __init__(self, message: str, *, log_path: Path | None = None, tail: str = "") -> None:
        self.log_path = log_path
        self.tail = tail
        hint = None
        if tail:
            indented = "\n".join(f"    {line}" for line in tail.splitlines())
            hint = f"Last lines of {log_path}:\n{indented}"
        super().__init__(message, hint=hint)


class PortInUseError(ServerStartError):
    """Something that is not Ollama holds the port."""


class NotOwnedError(OllamaNbError):
    """Refusing to stop a server ollama_nb did not start."""


class UnclearOwnerError(NotOwnedError):
    """A live process is recorded as our server, but we cannot tell whether it is."""


class LockTimeoutError(OllamaNbError, TimeoutError):
    """Another kernel held the server lock for too long."""


@dataclass(frozen=True, slots=True)
class Client:
    """A process using the server, known by pid and start stamp (not wall-clock time)."""

    pid: int
    start: float
    boot: str = ""

    @property
    def stamp(self) -> ProcessStamp:
        return ProcessStamp(self.start, self.boot)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Client | None:
        pid, start = data.get("pid"), data.get("start")
        if not isinstance(pid, int) or not isinstance(start, int | float):
            return None  # an entry from before start stamps: that client cannot be confirmed
        return cls(pid, float(start), str(data.get("boot", "")))


@dataclass(frozen=True, slots=True)
class ServerState:
    """What the state file remembers about a server we started."""

    pid: int
    host: str
    binary: str
    env: dict[str, str]
    profile: str | None
    started_at: float  # wall-clock time, for people; never used to identify the process
    log: str
    clients: tuple[Client, ...] = ()
    started_by: int = 0
    start: float | None = None  # the start stamp (``identity``); None in old records
    boot: str = ""
    command: tuple[str, ...] = ()  # the server's command line once it answered

    @property
    def stamp(self) -> ProcessStamp | None:
        return None if self.start is None else ProcessStamp(self.start, self.boot)

    @property
    def parallel(self) -> int:
        value = self.env.get("OLLAMA_NUM_PARALLEL", "")
        return int(value) if value.isdigit() and int(value) > 0 else 1

    def to_json(self) -> str:
        data = asdict(self)
        data["clients"] = [asdict(c) for c in self.clients]
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ServerState:
        data = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        data = {k: v for k, v in data.items() if k in known}  # e.g. an old ``create_time``
        clients = (Client.from_dict(c) for c in data.get("clients", ()) if isinstance(c, dict))
        data["clients"] = tuple(c for c in clients if c is not None)
        data["command"] = tuple(str(part) for part in data.get("command", ()))
        return cls(**data)


@dataclass(frozen=True, slots=True)
class StartOutcome:
    action: Literal["started", "adopted", "foreign"]
    host: str
    state: ServerState | None = None
    owner: str = ""
    stale_state_removed: bool = False
    elapsed_s: float = 0.0
    note: str = ""  # why a record was removed, or kept although it could not be judged


@dataclass(frozen=True, slots=True)
class StopOutcome:
    action: Literal["stopped", "not-running"]
    host: str
    pid: int | None = None
    stale_state_removed: bool = False
    note: str = ""


@dataclass(frozen=True, slots=True)
class Observation:
    """What is at the host right now, without changing anything."""

    host: str
    answering: bool
    state: ServerState | None  # only when the recorded process is really alive
    owner: str
    stale_state: bool = False
    note: str = ""  # a record kept because its process could not be judged


#: Popen objects of servers this process spawned, kept so they are reaped, not leaked.
_children: dict[int, subprocess.Popen[bytes]] = {}
_registered: dict[tuple[Path, int], ServerProcess] = {}
_registered_lock = threading.Lock()


def _me() -> Client:
    stamp = stamp_of(os.getpid())
    assert stamp is not None  # this process is running
    return Client(os.getpid(), stamp.start, stamp.boot)


class ServerProcess:
    """The server for one local host, with its files in ``data_dir/server``."""

    def __init__(
        self,
        host: OllamaHost,
        data_dir: Path,
        *,
        stop_at_exit: bool = True,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.stop_at_exit = stop_at_exit
        self.data_dir = data_dir
        self.wall_clock = wall_clock  # only for ``started_at`` and log stamps, never identity
        self.folder = data_dir / "server"
        self.state_path = self.folder / f"{host.port}.json"
        self.lock_path = self.folder / f"{host.port}.lock"
        self.log_path = self.folder / f"{host.port}.log"

    # --- looking ------------------------------------------------------------------

    def answering(self, timeout: float = 1.0) -> bool:
        """``HEAD /`` answers: the health check Ollama's own clients use."""
        try:
            response = httpx.head(self.host.base_url + "/", timeout=timeout)
        except httpx.HTTPError:
            return False
        return response.status_code < 400

    def port_taken(self) -> bool:
        host, _, port = self.host.connect_netloc.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=0.5):
                return True
        except OSError:
            return False

    def read_state(self) -> ServerState | None:
        try:
            return ServerState.from_json(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError):
            # A torn or foreign file cannot describe a server we could safely stop.
            return None

    def verdict(self, state: ServerState) -> tuple[Verdict, str]:
        """Is ``state``'s process our server: ``ours``, ``gone``, ``other`` or ``unknown``?"""
        child = _children.get(state.pid)
        if child is not None and child.poll() is not None:
            _children.pop(state.pid, None)
            return "gone", f"process {state.pid} has exited"
        verdict, why = judge(state.pid, state.stamp, state.command)
        if verdict == "unknown":
            why = (
                f"Keeping {self.state_path}: {why}, so ollama_nb cannot tell whether it is the "
                "server it started; delete the file if it is not."
            )
        elif verdict != "ours":
            why = f"Removed a stale record of a server ({self.state_path}): {why}."
        return verdict, why

    def owned_process(self, state: ServerState) -> psutil.Process | None:
        """The live process ``state`` describes, only if it is certainly our server."""
        if self.verdict(state)[0] != "ours":
            return None
        try:
            return psutil.Process(state.pid)
        except psutil.Error:
            return None

    def observe(self) -> Observation:
        """A read-only look (no lock: a status check must not wait for a starting kernel)."""
        state = self.read_state()
        stale, note = False, ""
        if state is not None:
            verdict, why = self.verdict(state)
            if verdict != "ours":
                state, stale = None, verdict != "unknown"
                note = why if verdict == "unknown" else ""
        answering = self.answering()
        if state is not None:
            owner = _our_owner(state)
        elif answering or self.port_taken():
            owner = describe_listener(self.host.port)
        else:
            owner = ""
        return Observation(self.host.base_url, answering, state, owner, stale, note)

    # --- starting -----------------------------------------------------------------

    def start(
        self,
        binary: Callable[[], Path],
        env: Mapping[str, str],
        *,
        profile: str | None = None,
        timeout_s: float = 30.0,
        progress: Progress | None = None,
    ) -> StartOutcome:
        """Adopt our running server, use a foreign one, or spawn ``ollama serve``."""
        began = time.monotonic()
        with self._locked(timeout_s + 10):
            state = self.read_state()
            stale, note = False, ""
            if state is not None:
                verdict, note = self.verdict(state)
                if verdict == "unknown" and not self.answering():
                    raise UnclearOwnerError(note)
                if verdict in ("gone", "other"):
                    self._remove_state()
                if verdict != "ours":
                    state, stale = None, verdict != "unknown"
            if state is not None:
                self._wait_healthy(state, None, timeout_s, progress, began)
                state = self._add_client(state)
                self._register()
                return StartOutcome(
                    "adopted", self.host.base_url, state, _our_owner(state), stale,
                    time.monotonic() - began, note,
                )  # fmt: skip
            if self.answering():
                owner = describe_listener(self.host.port)
                return StartOutcome(
                    "foreign", self.host.base_url, None, owner, stale,
                    time.monotonic() - began, note,
                )  # fmt: skip
            if self.port_taken():
                raise PortInUseError(
                    f"Port {self.host.port} is taken by {describe_listener(self.host.port)}, "
                    "which does not answer as an Ollama server.",
                )
            state = self._spawn(binary(), env, profile)
            try:
                self._wait_healthy(state, _children.get(state.pid), timeout_s, progress, began)
            except ServerStartError:
                self._terminate(state.pid)
                self._remove_state()
                raise
            state = self._record_command(state)
            self._register()
            return StartOutcome(
                "started", self.host.base_url, state, _our_owner(state), stale,
                time.monotonic() - began, note,
            )  # fmt: skip

    def _record_command(self, state: ServerState) -> ServerState:
        """The command line as the answering server shows it (a launcher script has exec'd)."""
        try:
            command = command_of(state.pid)
        except CannotJudge:  # keep the launch argv; judged "other" later at worst
            return state
        if command and command != state.command:
            state = replace(state, command=command)
            self._write_state(state)
        return state

    def _spawn(self, binary: Path, env: Mapping[str, str], profile: str | None) -> ServerState:
        private_dir(self.folder, within=self.data_dir)
        _rotate(self.log_path)
        full_env = {**os.environ, **env, "OLLAMA_HOST": self.host.netloc}
        argv = [str(binary), "serve"]
        with os.fdopen(open_private(self.log_path, os.O_WRONLY | os.O_APPEND), "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.wall_clock()))
            log.write(f"--- {stamp} ollama_nb: {binary} serve on {self.host.netloc}\n".encode())
            log.flush()
            try:
                popen = subprocess.Popen(
                    argv,
                    env=full_env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Its own session/group: a kernel interrupt or crash does not kill it.
                    start_new_session=sys.platform != "win32",
                    creationflags=_NEW_GROUP,
                )
            except OSError as exc:
                raise ServerStartError(f"Could not run {binary}: {exc.strerror or exc}.") from None
        _children[popen.pid] = popen
        # Our own child cannot be reaped before we wait for it, so its stamp is readable.
        started = stamp_of(popen.pid)
        state = ServerState(
            pid=popen.pid,
            host=self.host.base_url,
            binary=str(binary),
            env=dict(env),
            profile=profile,
            started_at=self.wall_clock(),
            log=str(self.log_path),
            clients=(_me(),),
            started_by=os.getpid(),
            start=None if started is None else started.start,
            boot="" if started is None else started.boot,
            command=tuple(argv),
        )
        self._write_state(state)
        return state

    def _wait_healthy(
        self,
        state: ServerState,
        popen: subprocess.Popen[bytes] | None,
        timeout_s: float,
        progress: Progress | None,
        began: float,
    ) -> None:
        while True:
            elapsed = time.monotonic() - began
            if popen is not None and popen.poll() is not None:
                _children.pop(popen.pid, None)
                raise ServerStartError(
                    f"`ollama serve` exited with code {popen.returncode} while starting.",
                    log_path=self.log_path,
                    tail=self.log_tail(),
                )
            if popen is None and self.verdict(state)[0] != "ours":
                raise ServerStartError(
                    f"The ollama server (pid {state.pid}) stopped while we waited for it.",
                    log_path=self.log_path,
                    tail=self.log_tail(),
                )
            if self.answering(timeout=min(1.0, max(0.2, timeout_s - elapsed))):
                return
            if elapsed >= timeout_s:
                raise ServerStartError(
                    f"`ollama serve` did not answer at {self.host.base_url} within {timeout_s:g} s.",
                    log_path=self.log_path,
                    tail=self.log_tail(),
                )
            if progress is not None:
                progress(elapsed, timeout_s)
            time.sleep(0.1)

    # --- stopping -----------------------------------------------------------------

    def stop(self, *, grace_s: float = 10.0) -> StopOutcome:
        """Stop the server if we started it; refuse (NotOwnedError) if someone else did."""
        with self._locked():
            state = self.read_state()
            stale, note = False, ""
            if state is not None:
                verdict, note = self.verdict(state)
                if verdict == "ours":
                    self._terminate(state.pid, grace_s)
                    self._remove_state()
                    return StopOutcome("stopped", self.host.base_url, state.pid)
                if verdict == "unknown":
                    raise UnclearOwnerError(f"Not stopping anything. {note}")
                self._remove_state()
                stale = True
            if self.answering() or self.port_taken():
                owner = describe_listener(self.host.port)
                raise NotOwnedError(
                    f"Not stopping the server at {self.host.base_url}: ollama_nb did not start it "
                    f"(it belongs to {owner}).",
                    hint=_stop_hint(owner),
                )
            return StopOutcome("not-running", self.host.base_url, None, stale, note)

    def release(self) -> None:
        """This process is done with the server; the last client out stops it."""
        try:
            with self._locked(5.0):
                state = self.read_state()
                if state is None or self.owned_process(state) is None:
                    return
                me = _me()
                clients = tuple(c for c in state.clients if c != me and _alive(c))
                if not clients and self.stop_at_exit:
                    self._terminate(state.pid)
                    self._remove_state()
                else:
                    self._write_state(replace(state, clients=clients))
        except (OSError, LockTimeoutError):
            return

    def _terminate(self, pid: int, grace_s: float = 10.0) -> None:
        popen = _children.pop(pid, None)
        try:
            proc = psutil.Process(pid)
            proc.terminate()
            if popen is not None:
                popen.wait(grace_s)
            else:
                proc.wait(grace_s)
        except (psutil.TimeoutExpired, subprocess.TimeoutExpired):
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
            if popen is not None:
                popen.wait(5)
        except psutil.NoSuchProcess:
            if popen is not None:
                popen.poll()

    # --- files ----------------------------------------------------------------------

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 16384))
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _write_state(self, state: ServerState) -> None:
        private_dir(self.folder, within=self.data_dir)
        write_private_text(self.state_path, state.to_json())

    def _remove_state(self) -> None:
        self.state_path.unlink(missing_ok=True)

    def _add_client(self, state: ServerState) -> ServerState:
        me = _me()
        clients = (*(c for c in state.clients if _alive(c) and c != me), me)
        state = replace(state, clients=clients)
        self._write_state(state)
        return state

    def _register(self) -> None:
        with _registered_lock:
            first = not _registered
            _registered[(self.folder, self.host.port)] = self
        if first:
            atexit.register(release_all)

    @contextlib.contextmanager
    def _locked(self, timeout_s: float = 30.0) -> Iterator[None]:
        private_dir(self.folder, within=self.data_dir)
        with os.fdopen(open_private(self.lock_path, os.O_RDWR), "r+b") as handle:
            _acquire(handle, timeout_s)
            try:
                yield
            finally:
                _release(handle)


def release_all() -> None:
    """atexit: give up every server this process used (the last user stops it)."""
    with _registered_lock:
        servers = list(_registered.values())
        _registered.clear()
    for server in servers:
        server.release()


def forget(server: ServerProcess) -> None:
    """Stop tracking ``server`` as used by this process (after an explicit stop)."""
    with _registered_lock:
        _registered.pop((server.folder, server.host.port), None)


# --- helpers -------------------------------------------------------------------------


def _alive(client: Client) -> bool:
    try:
        now = stamp_of(client.pid)
    except CannotJudge:  # cannot inspect it: keep it as a client, to be safe
        return True
    return now is not None and now.same_as(client.stamp)


def _our_owner(state: ServerState) -> str:
    if state.started_by == os.getpid():
        who = "this kernel"
    else:
        who = f"another kernel (pid {state.started_by})"
    return f"ollama_nb, started by {who}"


_PARENTS = {
    "ollama": "the Ollama app",
    "launchd": "launchd (the Ollama app or `brew services`)",
    "systemd": "systemd (the ollama service)",
}


def describe_listener(port: int) -> str:
    """Who listens on ``port``, as well as the OS lets us see."""
    pid = _listener_pid(port)
    if pid is None:
        return "another program (its process is not visible to us)"
    try:
        proc = psutil.Process(pid)
        name = proc.name()
        parent = proc.parent()
        parent_name = parent.name() if parent is not None else ""
    except psutil.Error:
        return f"process {pid}"
    for key, label in _PARENTS.items():
        if parent_name.lower().startswith(key) and parent_name != name:
            return f"'{name}' (pid {pid}), run by {label}"
    return f"'{name}' (pid {pid})"


def _listener_pid(port: int) -> int | None:
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None  # macOS needs root for other processes' sockets
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid
    return None


def _stop_hint(owner: str) -> str:
    if "Ollama app" in owner:
        return "Quit Ollama from its menu-bar icon to stop it."
    if "systemd" in owner:
        return "Stop it with `sudo systemctl stop ollama`."
    return "Stop it where it was started, or point OLLAMA_HOST at another port for your own server."


def _rotate(log: Path) -> None:
    try:
        if log.stat().st_size < LOG_ROTATE_BYTES:
            return
    except FileNotFoundError:
        return
    for n in range(LOG_KEEP - 1, 0, -1):
        older = log.with_name(f"{log.name}.{n}")
        if older.exists():
            os.replace(older, log.with_name(f"{log.name}.{n + 1}"))
    os.replace(log, log.with_name(f"{log.name}.1"))


if sys.platform == "win32":
    import msvcrt

    _NEW_GROUP = subprocess.CREATE_NEW_PROCESS_GROUP

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _release(handle: IO[bytes]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    _NEW_GROUP = 0

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _release(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _acquire(handle: IO[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not _try_lock(handle):
        if time.monotonic() >= deadline:
            raise LockTimeoutError(
                f"Another kernel has been starting or stopping the server for {timeout_s:g} s.",
                hint="Wait for it to finish, then try again.",
            )
        time.sleep(0.05)
