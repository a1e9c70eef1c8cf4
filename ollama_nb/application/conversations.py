"""Named chat threads that remember the whole conversation, within a token budget.

A notebook is not a terminal: users re-run cells. Each turn is keyed by the
cell that produced it, so re-running a cell replaces that cell's turn in place
(and sends only the turns before it as context) instead of appending a
duplicate question. When the history no longer fits the token budget, the
oldest turns are left out of the request (not deleted), and the caller is told
how many.
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass, field

from ..domain import ChatMessage, ChatResult

DEFAULT_CONVERSATION = "default"
DEFAULT_TOKEN_BUDGET = 8_192
#: Rough characters per token for English text and code; only used when the
#: server has not told us the real count.
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


@dataclass(frozen=True, slots=True)
class Turn:
    """One question and its answer; ``key`` names the cell that asked."""

    key: str | None
    user: ChatMessage
    reply: ChatResult

    @property
    def assistant(self) -> ChatMessage:
        return ChatMessage("assistant", self.reply.text)

    @property
    def messages(self) -> tuple[ChatMessage, ...]:
        """The turn as sent next time: question, any tool rounds, answer."""
        return (self.user, *self.reply.exchange, self.assistant)

    @property
    def tokens(self) -> int:
        answer = self.reply.timings.eval_count or estimate_tokens(self.reply.text)
        rounds = sum(estimate_tokens(m.content) for m in self.reply.exchange)
        return estimate_tokens(self.user.content) + rounds + answer


@dataclass(frozen=True, slots=True)
class Prepared:
    """The messages to send for a new turn, and what was left out to fit."""

    messages: tuple[ChatMessage, ...]
    dropped_turns: int
    history_tokens: int


@dataclass(slots=True)
class Conversation:
    name: str
    system: str | None = None
    model: str | None = None
    turns: list[Turn] = field(default_factory=list)

    def _position(self, key: str | None) -> int:
        """Where a turn with ``key`` goes: its old place if the cell ran before, else the end."""
        if key is not None:
            for i, turn in enumerate(self.turns):
                if turn.key == key:
                    return i
        return len(self.turns)

    def prepare(self, key: str | None, user: ChatMessage, *, budget_tokens: int) -> Prepared:
        """Messages for asking ``user`` from the cell ``key``: earlier turns newest-first until the budget is spent."""
        earlier = self.turns[: self._position(key)]
        spent = estimate_tokens(user.content) + estimate_tokens(self.system or "")
        kept: list[Turn] = []
        for turn in reversed(earlier):
            if spent + turn.tokens > budget_tokens:
                break
            spent += turn.tokens
            kept.append(turn)
        kept.reverse()
        messages: list[ChatMessage] = []
        if self.system:
            messages.append(ChatMessage("system", self.system))
        for turn in kept:
            messages.extend(turn.messages)
        messages.append(user)
        return Prepared(tuple(messages), len(earlier) - len(kept), spent)

    def record(self, key: str | None, user: ChatMessage, reply: ChatResult) -> None:
        """Store the turn, replacing the one this cell made before (if any)."""
        position = self._position(key)
        turn = Turn(key, user, reply)
        if position < len(self.turns):
            self.turns[position] = turn
        else:
            self.turns.append(turn)
        self.model = reply.model or self.model

    def clear(self) -> None:
        self.turns.clear()
        self.system = None

    @property
    def tokens(self) -> int:
        return sum(t.tokens for t in self.turns)


class ConversationStore:
    """This kernel's conversations by name; thread-safe because widgets call from other threads."""

    def __init__(self, budget_tokens: int = DEFAULT_TOKEN_BUDGET) -> None:
        self.budget_tokens = budget_tokens
        self._threads: dict[str, Conversation] = {}
        self._lock = threading.Lock()

    def get(self, name: str = DEFAULT_CONVERSATION) -> Conversation:
        with self._lock:
            if name not in self._threads:
                self._threads[name] = Conversation(name)
            return self._threads[name]

    def find(self, name: str) -> Conversation | None:
        with self._lock:
            return self._threads.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._threads)

    def reset(self, name: str) -> bool:
        """Forget one conversation; False when there was none of that name."""
        with self._lock:
            return self._threads.pop(name, None) is not None

    def reset_all(self) -> int:
        with self._lock:
            count = len(self._threads)
            self._threads.clear()
            return count


#: The store ``%%chat`` and the chat panel share, per IPython shell. It lives here, below both
#: surfaces, so a panel finds the magics' threads without importing the magics.
_BY_SHELL: weakref.WeakKeyDictionary[object, ConversationStore] = weakref.WeakKeyDictionary()
_BY_SHELL_LOCK = threading.Lock()


def shell_conversations(shell: object) -> ConversationStore:
    """The conversations of ``shell``, made on first use."""
    with _BY_SHELL_LOCK:
        store = _BY_SHELL.get(shell)
        if store is None:
            store = _BY_SHELL[shell] = ConversationStore()
        return store


def forget_shell_conversations(shell: object) -> None:
    """``%unload_ext``: the next load starts with no threads, as a fresh kernel would."""
    with _BY_SHELL_LOCK:
        _BY_SHELL.pop(shell, None)
