"""Will the prompt fit? Estimate before sending, check the server's count after.

Ollama does not refuse a prompt longer than the context window: it keeps the
end and silently drops the start, so a summary of a long document can be a
summary of its last pages. Ollama has no tokenizer endpoint, so before sending
we estimate (about 4 characters per token for English text and code, plus a
few tokens of template per message) and compare with the context the request
will really get:

1. ``num_ctx`` in the request's options;
2. else ``num_ctx`` in the model's Modelfile parameters (``/api/show``);
3. else the server's default (``OLLAMA_CONTEXT_LENGTH`` when known, else Ollama's
   4096), never more than the model's own maximum (``<arch>.context_length``).

The context of the model as loaded now (``/api/ps``) is not used: a request
without ``num_ctx`` reloads a model that was loaded with another one, so it
gets the default, not what is loaded.

After the reply, ``prompt_eval_count`` is the server's own count. A prompt we
expected not to fit, for which the server counted clearly fewer tokens than
estimated while filling between half and all of the window, was probably cut
(more than the window means our idea of the window was wrong, and nothing was).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from ..domain import ChatRequest, GenerateRequest, ModelName, OllamaNbError
from .conversations import estimate_tokens
from .use_cases import Ports, model_info

#: Ollama's default context length on machines under 24 GB (docs/faq.md).
OLLAMA_DEFAULT_CONTEXT = 4096
#: Template tokens around each message (role markers, separators).
TOKENS_PER_MESSAGE = 4
#: Prompt tokens a vision model spends per image (roughly; gemma3 uses 256).
TOKENS_PER_IMAGE = 256
#: Below this estimate no window in practice is too small: no server call at all.
CHECK_FLOOR_TOKENS = 2048
#: The server counted fewer than this share of our estimate: something was dropped.
TRUNCATION_SHARE = 0.9
_NUM_CTX_PARAMETER = re.compile(r"^\s*num_ctx\s+(\d+)\s*$", re.MULTILINE)


def server_context_length() -> int | None:
    """``OLLAMA_CONTEXT_LENGTH`` as a server started from this environment reads it."""
    raw = os.environ.get("OLLAMA_CONTEXT_LENGTH", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


class ContextLengthWarning(UserWarning):
    """The prompt may not fit the context window the request gets."""


def estimate_request_tokens(request: ChatRequest | GenerateRequest) -> int:
    """Our estimate of the prompt's tokens, as the server will count them."""
    if isinstance(request, GenerateRequest):
        texts = [request.prompt, request.system or ""]
        images = len(request.images)
        messages = 1 + (request.system is not None)
    else:
        texts = [m.content for m in request.messages]
        texts += [str(dict(tool)) for tool in request.tools]
        images = request.image_count
        messages = len(request.messages)
    return (
        sum(estimate_tokens(t) for t in texts)
        + TOKENS_PER_MESSAGE * messages
        + TOKENS_PER_IMAGE * images
    )


@dataclass(frozen=True, slots=True)
class ContextCheck:
    """The estimate, the window the request gets, and where that window comes from."""

    model: str
    estimate: int
    window: int
    source: str  # says which setting decides, so the warning can name it

    @property
    def may_not_fit(self) -> bool:
        return self.estimate > self.window

    def warning(self) -> str:
        """One line: what, why, which setting to raise."""
        suggested = 2 ** math.ceil(math.log2(self.estimate * 1.25))
        return (
            f"This prompt is about {self.estimate:,} tokens but {self.model} gets a "
            f"{self.window:,}-token context ({self.source}): the start may be cut. "
            f"Raise num_ctx (e.g. options num_ctx={suggested}) or the server's "
            "OLLAMA_CONTEXT_LENGTH."
        )

    def truncated(self, prompt_eval_count: int) -> bool:
        """The server's count says the prompt was probably cut to fit."""
        return (
            self.may_not_fit
            and self.window // 2 <= prompt_eval_count <= self.window
            and prompt_eval_count < self.estimate * TRUNCATION_SHARE
        )

    def truncation_note(self, prompt_eval_count: int) -> str:
        return (
            f"The server read {prompt_eval_count:,} prompt tokens of about {self.estimate:,}: "
            f"it probably dropped the start to fit {self.window:,} (raise num_ctx)."
        )


def needs_check(request: ChatRequest | GenerateRequest) -> bool:
    """Cheap, local: only a long prompt (or a small ``num_ctx``) is worth asking the server."""
    num_ctx = request.options.num_ctx
    floor = CHECK_FLOOR_TOKENS if num_ctx is None else min(num_ctx, CHECK_FLOOR_TOKENS)
    return estimate_request_tokens(request) > floor


async def context_window(
    ports: Ports, model: ModelName, num_ctx: int | None, server_default: int | None
) -> tuple[int, str]:
    """The context length the request will get, and what decided it (see the module doc)."""
    if num_ctx is not None:
        return num_ctx, "num_ctx option"
    try:
        info = await model_info(ports, model)
    except OllamaNbError:
        return server_default or OLLAMA_DEFAULT_CONTEXT, "server default"
    found = _NUM_CTX_PARAMETER.search(info.parameters)
    if found:
        return int(found.group(1)), "num_ctx in the model's Modelfile"
    default = server_default or OLLAMA_DEFAULT_CONTEXT
    source = "OLLAMA_CONTEXT_LENGTH" if server_default else "Ollama's default"
    maximum = info.context_length
    if maximum is not None and maximum < default:
        return maximum, "the model's maximum"
    return default, source


async def check_context(
    ports: Ports, request: ChatRequest | GenerateRequest, server_default: int | None = None
) -> ContextCheck:
    window, source = await context_window(
        ports, request.model, request.options.num_ctx, server_default
    )
    return ContextCheck(request.model.value, estimate_request_tokens(request), window, source)
