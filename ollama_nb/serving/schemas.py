"""Which JSON schemas a ``format`` may carry: the part a grammar can enforce, bounded.

A schema becomes a grammar that constrains sampling. llama.cpp spells a count such as
``maxLength: 2000`` as that many nested optional rules and recurses through them when it
parses the grammar, so a large count overflows its stack and kills the whole process
(SIGSEGV) with every request in flight. Counts, pattern repetitions, nesting depth and
size are therefore bounded here, before anything reaches the engine, and constraint
keywords that a grammar cannot express (``not``, ``uniqueItems``, ``if``/``then``...) are
refused by name instead of being silently ignored, so a client never believes an answer
was checked against a rule that was dropped. Annotations (``title``, ``description``,
``default``, ``examples``...) and unknown extension keys are ignored, as JSON Schema
says they should be. ``$ref`` must point into the schema itself: a grammar builder that
follows a URL would fetch it from the network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


class SchemaError(ValueError):
    """A schema this server refuses (the HTTP layer answers 400 with the message)."""


MAX_REPEAT = 256
"""The largest count (``minLength``, ``maxItems``, a pattern's ``{n,m}``) accepted.

llama.cpp 0.3.36 crashed on one ``maxLength`` between 1,000 and 1,500; 256 leaves room."""
MAX_DEPTH = 24
MAX_NODES = 2_000
MAX_PATTERN_CHARS = 500

_UNSUPPORTED = frozenset(
    {
        "not", "if", "then", "else", "patternProperties", "dependentRequired",
        "dependentSchemas", "dependencies", "uniqueItems", "multipleOf", "contains",
        "minContains", "maxContains", "propertyNames", "unevaluatedProperties",
        "unevaluatedItems", "minProperties", "maxProperties",
    }
)  # fmt: skip
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems")
_SCHEMA_MAPS = ("properties", "$defs", "definitions")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_VALUES = ("additionalProperties", "items")
_QUANTIFIER = re.compile(r"\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")


def _refuse(keyword: str, why: str) -> SchemaError:
    return SchemaError(f'invalid format schema: "{keyword}" {why}')


def check_schema(schema: Mapping[str, object]) -> None:
    """Raise :class:`SchemaError` naming the first keyword this server cannot enforce safely."""
    nodes = 0

    def walk(node: object, depth: int) -> None:
        nonlocal nodes
        if isinstance(node, bool):
            return
        if not isinstance(node, Mapping):
            raise SchemaError("invalid format schema: a schema must be an object")
        nodes += 1
        if nodes > MAX_NODES:
            raise SchemaError(f"invalid format schema: more than {MAX_NODES} subschemas")
        if depth > MAX_DEPTH:
            raise SchemaError(f"invalid format schema: nested deeper than {MAX_DEPTH}")
        for key in node:
            if key in _UNSUPPORTED:
                raise _refuse(key, "is not supported: a grammar cannot enforce it")
        for key in _COUNTS:
            if key in node:
                value = node[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise _refuse(key, "must be a non-negative integer")
                if value > MAX_REPEAT:
                    raise _refuse(key, f"of {value} is more than this server enforces "
                                       f"(at most {MAX_REPEAT})")  # fmt: skip
        if "pattern" in node:
            _check_pattern(node["pattern"])
        ref = node.get("$ref")
        if ref is not None and (not isinstance(ref, str) or not ref.startswith("#")):
            raise _refuse("$ref", "must point inside the schema (#/...), not to a URL")
        for key in _SCHEMA_MAPS:
            children = node.get(key)
            if isinstance(children, Mapping):
                for child in children.values():
                    walk(child, depth + 1)
            elif children is not None:
                raise _refuse(key, "must be an object of schemas")
        for key in _SCHEMA_LISTS:
            children = node.get(key)
            if isinstance(children, list):
                for child in children:
                    walk(child, depth + 1)
            elif children is not None:
                raise _refuse(key, "must be an array of schemas")
        for key in _SCHEMA_VALUES:
            child = node.get(key)
            if isinstance(child, list):  # draft-4 tuple items
                for item in child:
                    walk(item, depth + 1)
            elif child is not None:
                walk(child, depth + 1)

    walk(schema, 0)


def _check_pattern(pattern: object) -> None:
    if not isinstance(pattern, str):
        raise _refuse("pattern", "must be a string")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise _refuse("pattern", f"is longer than {MAX_PATTERN_CHARS} characters")
    for match in _QUANTIFIER.finditer(pattern):
        low, high = match.group(1), match.group(2)
        for count in (low, high):
            if count and int(count) > MAX_REPEAT:
                raise _refuse("pattern", f"repeats {match.group(0)}, more than this server "
                                         f"enforces (at most {MAX_REPEAT})")  # fmt: skip
