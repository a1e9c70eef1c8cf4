"""Notebook functions offered to a model as Ollama tools.

A user names functions they already wrote; each becomes one entry of
``/api/chat``'s ``tools`` list, its JSON schema read from the signature, the
type hints and the docstring. When the model asks for a call, only a function
the user named can run, and only with arguments that validate against that
same signature: anything else is answered to the model as an error, never
executed. An exception inside the function is the tool's result too, so the
model can react to it, and the user is told in one line.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from ..domain import InvalidInputError, ToolCall

ToolStatus = Literal["ok", "error", "refused", "limited"]
#: Longest tool result sent back to the model, in characters.
MAX_RESULT_CHARS = 8_000
#: Longest arguments (as JSON text) a call may carry; checked before they are parsed.
DEFAULT_MAX_ARGUMENT_CHARS = 64_000
#: How much of a name or of the arguments one line shows the user.
_SHOWN_NAME = 64
_SHOWN_ARGS = 200
_PARAM_HEADINGS = {"args", "arguments", "parameters", "params"}
_SPHINX_PARAM = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_GOOGLE_PARAM = re.compile(r"^\s*(\*{0,2}\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")


@dataclass(frozen=True, slots=True)
class Tool:
    """One callable the model may use, with its wire description and argument model."""

    name: str
    function: Callable[..., Any]
    description: str
    parameters: Mapping[str, Any]
    arguments: type[BaseModel]

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What happened to one call: sent back to the model as a ``tool`` message."""

    name: str
    arguments: Mapping[str, Any]
    status: ToolStatus
    content: str

    def line(self) -> str:
        """The one line a notebook shows under the answer (bounded: a model wrote the call)."""
        if self.status == "limited":
            return f"🔧 {self.content}"
        args = _cut(", ".join(f"{k}={v!r}" for k, v in self.arguments.items()), _SHOWN_ARGS)
        shown = _cut(self.content, 120)
        arrow = {"ok": "→", "error": "raised", "refused": "refused:"}[self.status]
        return f"🔧 {_cut(self.name, _SHOWN_NAME) or '(no name)'}({args}) {arrow} {shown}"


def _cut(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def tool_from_function(function: Callable[..., Any], name: str | None = None) -> Tool:
    """Describe ``function`` for the model; refuse shapes JSON arguments cannot fill."""
    if not callable(function):
        raise InvalidInputError(f"A tool must be a function, got {type(function).__name__}.")
    tool_name = str(name or getattr(function, "__name__", ""))
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", tool_name):
        raise InvalidInputError(f"{tool_name!r} cannot be a tool name: use a named function.")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"Cannot read the signature of {tool_name}: {exc}.") from None
    try:
        hints = _type_hints(function)
    except Exception as exc:  # an unresolvable annotation: say which function
        raise InvalidInputError(f"Cannot read the type hints of {tool_name}: {exc}.") from None
    summary, described = _parse_docstring(inspect.getdoc(function) or "")
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise InvalidInputError(
                f"{tool_name} takes *{param.name}: a tool needs named parameters the model can fill."
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise InvalidInputError(
                f"{tool_name} has positional-only parameter {param.name!r}; a model passes "
                "arguments by name."
            )
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, default)
    try:
        model = create_model(
            f"{tool_name}_arguments",
            __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
            **fields,
        )
        schema = _clean(model.model_json_schema())
    except Exception as exc:  # pydantic cannot express a parameter's type as JSON
        raise InvalidInputError(
            f"{tool_name}: a parameter's type cannot be sent to a model as JSON ({exc})."
        ) from None
    properties = schema.setdefault("properties", {})
    for param_name, text in described.items():
        if param_name in properties and text:
            properties[param_name].setdefault("description", text)
    schema.setdefault("type", "object")
    return Tool(tool_name, function, summary or f"Call {tool_name}.", schema, model)


class ToolSet:
    """The functions one request may call, by name."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise InvalidInputError(f"Two tools are called {tool.name!r}.")
            self._tools[tool.name] = tool

    @classmethod
    def from_functions(cls, functions: Sequence[Callable[..., Any] | Tool]) -> ToolSet:
        return cls(f if isinstance(f, Tool) else tool_from_function(f) for f in functions)

    def __bool__(self) -> bool:
        return bool(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def to_wire(self) -> tuple[dict[str, Any], ...]:
        return tuple(tool.to_wire() for tool in self._tools.values())

    def invoke(
        self, call: ToolCall, *, max_argument_chars: int = DEFAULT_MAX_ARGUMENT_CHARS
    ) -> ToolOutcome:
        """Run ``call`` if it names one of these tools with valid arguments; never raises.

        Checked in order, cheapest first: the call's shape, the function's name, the
        arguments' size (before any parsing), their JSON, then the signature.
        """
        name = _cut(call.name, _SHOWN_NAME)
        if call.malformed is not None:
            return _refused(call.name, {}, f"{call.malformed}.")
        tool = self._tools.get(call.name)
        if tool is None:
            known = ", ".join(self._tools) or "none"
            what = f"there is no tool called {name!r}" if call.name else "the call names no tool"
            shown = dict(call.arguments) if isinstance(call.arguments, Mapping) else {}
            return _refused(call.name, shown, f"{what}. Available tools: {known}.")
        parsed = _arguments(call, max_argument_chars)
        if isinstance(parsed, str):
            return _refused(call.name, {}, parsed)
        try:
            validated = tool.arguments.model_validate(parsed)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            return _refused(call.name, parsed, f"invalid arguments ({_cut(problems, 2_000)}).")
        values = {field: getattr(validated, field) for field in type(validated).model_fields}
        try:
            value = tool.function(**values)
        except Exception as exc:  # the user's function failed: the model hears why
            return ToolOutcome(call.name, parsed, "error", f"Error: {type(exc).__name__}: {exc}")
        return ToolOutcome(call.name, parsed, "ok", result_text(value))


def _refused(name: str, arguments: Mapping[str, Any], problem: str) -> ToolOutcome:
    return ToolOutcome(name, arguments, "refused", f"Error: {problem}")


def _arguments(call: ToolCall, limit: int) -> dict[str, Any] | str:
    """The call's arguments as a dict, or why not; the size is checked before parsing."""
    if call.raw_arguments is not None:
        size = len(call.raw_arguments)
        if size > limit:
            return f"arguments are {size:,} characters; the limit is {limit:,}."
        try:
            decoded = json.loads(call.raw_arguments)
        except json.JSONDecodeError:
            return "arguments are not valid JSON."
        if not isinstance(decoded, dict):
            return "arguments must be a JSON object."
        return decoded
    if not isinstance(call.arguments, Mapping):
        return "arguments must be a JSON object."
    arguments = dict(call.arguments)
    size = len(json.dumps(arguments, ensure_ascii=False, default=str))
    if size > limit:
        return f"arguments are {size:,} characters; the limit is {limit:,}."
    return arguments


def result_text(value: object) -> str:
    """How a return value reads to the model: text as is, JSON when it is JSON, else text."""
    if isinstance(value, str):
        text = value
    else:
        to_string = getattr(value, "to_string", None)
        if callable(to_string) and not isinstance(value, type):
            text = str(to_string())
        else:
            try:
                text = json.dumps(value, ensure_ascii=False, default=str)
            except (TypeError, ValueError):
                text = repr(value)
    if len(text) > MAX_RESULT_CHARS:
        cut = len(text) - MAX_RESULT_CHARS
        text = text[:MAX_RESULT_CHARS] + f"\n…[{cut:,} characters left out]"
    return text


def _type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations of a function, a method or a callable object's ``__call__``."""
    import typing

    if inspect.isfunction(function) or inspect.ismethod(function):
        return typing.get_type_hints(function)
    return typing.get_type_hints(type(function).__call__)


def _clean(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's generated titles: noise in every prompt the model reads."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: walk(v)
                for k, v in node.items()
                if not (k == "title" and isinstance(v, str))
                and not (k == "additionalProperties" and v is False)
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    cleaned: dict[str, Any] = walk(schema)
    return cleaned


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and parameter descriptions in Google or Sphinx style."""
    lines = doc.splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or line.lstrip().startswith(":"):
            break
        summary.append(line.strip())
    params: dict[str, str] = {}
    in_section = False
    entry_indent: int | None = None
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        sphinx = _SPHINX_PARAM.match(line)
        if sphinx:
            current = sphinx.group(1)
            params[current] = sphinx.group(2).strip()
            continue
        if stripped.endswith(":") and stripped[:-1].lower() in _PARAM_HEADINGS:
            in_section, entry_indent, current = True, None, None
            continue
        if not in_section or not stripped:
            continue
        if indent == 0:
            in_section = False  # the next section (Returns:, Raises:)
            continue
        google = _GOOGLE_PARAM.match(line)
        if google and (entry_indent is None or indent <= entry_indent):
            entry_indent = indent
            current = google.group(1).lstrip("*")
            params[current] = google.group(3).strip()
        elif current is not None:
            params[current] = f"{params[current]} {stripped}".strip()
    return " ".join(summary), params
