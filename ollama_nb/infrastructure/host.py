"""``OLLAMA_HOST`` read the way Ollama itself reads it (envconfig.Host), for both sides.

The client uses it to know where to connect, our server (``ollama_nb.serving``) where to
listen and which ``Host`` headers to answer, so a value works the same for both.

Accepted: ``host``, ``host:port``, ``[::1]:port``, ``scheme://host[:port][/path]``.
Without a scheme the port defaults to 11434; ``http://host`` means port 80 and
``https://host`` port 443, exactly as in Ollama; an empty host (``:11434``) listens on
every interface and is reached on loopback. Unlike Ollama we refuse a value
that is clearly broken (a bad port, an unknown scheme) instead of silently
falling back, because a silent fallback here sends requests (or a server) to the wrong
place.

The Host-header rule mirrors Ollama's ``allowedHostsMiddleware``: a server bound to a
loopback address refuses requests naming a non-local host (DNS-rebinding protection).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from ..domain import ConfigurationError

DEFAULT_PORT = 11434
_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::"}
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal")


@dataclass(frozen=True, slots=True)
class OllamaHost:
    scheme: str
    hostname: str
    port: int
    path: str = ""

    @property
    def netloc(self) -> str:
        return f"{format_host(self.hostname)}:{self.port}"

    @property
    def base_url(self) -> str:
        path = f"/{self.path.strip('/')}" if self.path.strip("/") else ""
        return f"{self.scheme}://{self.connect_netloc}{path}"

    @property
    def connect_netloc(self) -> str:
        """Where a client connects: a server bound to 0.0.0.0 or :: is reached on loopback."""
        if self.hostname in ("0.0.0.0", "::"):
            return f"127.0.0.1:{self.port}"
        return self.netloc

    @property
    def is_local(self) -> bool:
        """Whether a server for this host could be started on this machine."""
        if self.hostname.lower() in _LOCAL_NAMES or self.hostname.lower().endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(self.hostname).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return self.base_url


def parse_ollama_host(value: str | None, *, variable: str = "OLLAMA_HOST") -> OllamaHost:
    text = (value or "").strip().strip("\"'").strip()
    default_port = DEFAULT_PORT
    scheme, sep, hostport = text.partition("://")
    if not sep:
        scheme, hostport = "http", text
    else:
        scheme = scheme.lower()
        if scheme == "http":
            default_port = 80
        elif scheme == "https":
            default_port = 443
        else:
            raise ConfigurationError(
                f"{variable}={value!r} has scheme {scheme!r}; Ollama speaks http or https.",
                hint="Use a form like 127.0.0.1:11434 or http://host:11434.",
            )
    hostport, _, path = hostport.partition("/")
    if any(c.isspace() for c in hostport) or "@" in hostport:
        raise ConfigurationError(
            f"{variable}={value!r} is not a host.", hint="Use a form like 127.0.0.1:11434."
        )
    hostname, port_text = _split_host_port(hostport)
    if port_text is None:
        port = default_port
    else:
        if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
            raise ConfigurationError(
                f"{variable}={value!r} has an invalid port {port_text!r}.",
                hint="Ports are whole numbers from 1 to 65535, e.g. 127.0.0.1:11434.",
            )
        port = int(port_text)
    if not hostname:
        hostname = "0.0.0.0" if port_text is not None else "127.0.0.1"
    return OllamaHost(scheme=scheme, hostname=hostname, port=port, path=path)


def _split_host_port(hostport: str) -> tuple[str, str | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ConfigurationError(f"Unclosed '[' in host {hostport!r}.")
        host, rest = hostport[1:end], hostport[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ConfigurationError(f"Unexpected text after ']' in host {hostport!r}.")
        return host, rest[1:]
    if hostport.count(":") > 1:
        # A bare IPv6 address without brackets: Ollama accepts it as a host with the default port.
        try:
            ipaddress.ip_address(hostport)
        except ValueError:
            raise ConfigurationError(
                f"Host {hostport!r} has more than one ':'.",
                hint="Put IPv6 addresses in brackets: [::1]:11434.",
            ) from None
        return hostport, None
    host, sep, port = hostport.partition(":")
    return host, (port if sep else None)


def format_host(host: str) -> str:
    """Bracket IPv6 literals so ``host:port`` stays unambiguous."""
    return f"[{host}]" if ":" in host else host


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (where Ollama enforces the Host check)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_header_allowed(host_header: str) -> bool:
    """Ollama's rule for the Host header of a request to a loopback-bound server."""
    host = host_header.strip()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    host = host.lower()
    if host in ("", "localhost"):
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return addr.is_loopback or addr.is_private or addr.is_unspecified
    if host == socket.gethostname().lower():
        return True
    return host.endswith(_LOCAL_SUFFIXES)
