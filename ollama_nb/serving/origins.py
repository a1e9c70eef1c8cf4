"""Which web pages may call the server: Ollama's ``Origin`` rule and its CORS answers.

A browser sends ``Origin`` with every cross-site request, and a ``text/plain`` POST needs
no preflight, so without this check any page a user visits could drive a local server
(copy or delete models, burn CPU). Ollama allows the origins in ``OLLAMA_ORIGINS`` plus
localhost, 127.0.0.1 and 0.0.0.0 on any port over http or https and the schemes of
desktop shells and editors (``app://``, ``file://``, ``tauri://``, ``vscode-webview://``,
``vscode-file://``); any other origin gets 403 before the request is looked at. Patterns
may hold one ``*`` (a prefix and a suffix), and ``*`` alone allows every origin, as in
gin's CORS middleware that Ollama uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ORIGINS_ENV = "OLLAMA_ORIGINS"
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0")
_SHELL_SCHEMES = ("app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*")

ALLOW_METHODS = "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"
ALLOW_HEADERS = ",".join(
    (
        "Authorization", "Content-Type", "User-Agent", "Accept", "X-Requested-With",
        # what the OpenAI SDKs send from a browser
        "OpenAI-Beta", "x-stainless-arch", "x-stainless-async",
        "x-stainless-custom-poll-interval", "x-stainless-helper-method", "x-stainless-lang",
        "x-stainless-os", "x-stainless-package-version", "x-stainless-poll-helper",
        "x-stainless-retry-count", "x-stainless-runtime", "x-stainless-runtime-version",
        "x-stainless-timeout",
    )
)  # fmt: skip
MAX_AGE_SECONDS = 12 * 3600


def default_origins() -> tuple[str, ...]:
    """The origins Ollama allows without any configuration."""
    local = tuple(
        f"{scheme}://{host}{port}"
        for host in _LOCAL_HOSTS
        for port in ("", ":*")
        for scheme in ("http", "https")
    )
    return (*local, *_SHELL_SCHEMES)


def origins_from_env(env: Mapping[str, str]) -> tuple[str, ...]:
    """``OLLAMA_ORIGINS`` (comma-separated) followed by the defaults."""
    extra = [o.strip() for o in env.get(ORIGINS_ENV, "").split(",") if o.strip()]
    return (*extra, *default_origins())


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """The allowed origins, split into exact values and one-``*`` patterns once."""

    exact: frozenset[str]
    patterns: tuple[tuple[str, str], ...]
    allow_all: bool

    @classmethod
    def of(cls, origins: Iterable[str]) -> OriginPolicy:
        """Compile ``origins``; a value with more than one ``*`` is ignored (gin refuses it)."""
        exact: set[str] = set()
        patterns: list[tuple[str, str]] = []
        allow_all = False
        for origin in origins:
            if origin == "*":
                allow_all = True
            elif origin.count("*") == 1:
                prefix, _, suffix = origin.partition("*")
                patterns.append((prefix, suffix))
            elif "*" not in origin:
                exact.add(origin)
        return cls(frozenset(exact), tuple(patterns), allow_all)

    def allows(self, origin: str) -> bool:
        """Whether a page at ``origin`` may call the server."""
        if self.allow_all or origin in self.exact:
            return True
        return any(
            len(origin) >= len(p) + len(s) and origin.startswith(p) and origin.endswith(s)
            for p, s in self.patterns
        )


def same_origin(origin: str, host_header: str) -> bool:
    """A page served by this very host (not a cross-origin request at all)."""
    return origin in (f"http://{host_header}", f"https://{host_header}")
