"""Where to listen and whom to answer, decided the way Ollama decides.

``OLLAMA_HOST`` accepts ``host``, ``host:port``, ``scheme://host:port`` and bracketed IPv6;
the parser mirrors ``envconfig.Host`` so a value that works for ``ollama serve`` works here.
The Host-header check mirrors Ollama's ``allowedHostsMiddleware``: a server bound to a
loopback address refuses requests that name a non-local host (DNS-rebinding protection),
and a client that talks to the real server must cope with that 403.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

DEFAULT_PORT = 11434
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal")


@dataclass(frozen=True, slots=True)
class HostPort:
    """A parsed ``OLLAMA_HOST``: ``scheme`` is kept for printing, only host and port bind."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{format_host(self.host)}:{self.port}"


def format_host(host: str) -> str:
    """Bracket IPv6 literals so ``host:port`` stays unambiguous."""
    return f"[{host}]" if ":" in host else host


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """Go's ``net.SplitHostPort``: ``None`` when there is no well-formed port part."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or not hostport[end + 1 :].startswith(":"):
            return None
        return hostport[1:end], hostport[end + 2 :]
    if hostport.count(":") != 1:
        return None
    host, port = hostport.split(":")
    return host, port


def parse_ollama_host(value: str | None) -> HostPort:
    """Parse an ``OLLAMA_HOST`` value; empty or missing means ``127.0.0.1:11434``."""
    raw = (value or "").strip().strip("\"'").strip()
    scheme, sep, hostport = raw.partition("://")
    default_port = DEFAULT_PORT
    if not sep:
        scheme, hostport = "http", raw
    elif scheme == "http":
        default_port = 80
    elif scheme == "https":
        default_port = 443
    hostport = hostport.rstrip("/")

    split = _split_host_port(hostport)
    if split is None:
        host, port_text = "127.0.0.1", str(default_port)
        candidate = hostport.strip("[]")
        try:
            host = str(ipaddress.ip_address(candidate))
        except ValueError:
            if hostport:
                host = hostport
    else:
        host, port_text = split
    try:
        port = int(port_text)
    except ValueError:
        port = default_port
    if not 0 <= port <= 65535:
        port = default_port
    # An empty host (``":11434"``) makes Go listen on every interface.
    return HostPort(scheme=scheme, host=host or "0.0.0.0", port=port)


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
    split = _split_host_port(host)
    if split is not None:
        host = split[0]
    host = host.strip("[]").lower()
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
