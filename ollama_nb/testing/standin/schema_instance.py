"""Build a JSON value that validates against a JSON schema.

Ollama constrains decoding with the schema given as ``format``, so a client may parse the
reply straight into a pydantic model. The stand-in has no grammar sampler; instead it
constructs one valid instance, filling strings and numbers from the prompt so a test can
still see that its input reached the server. Covers what pydantic emits: ``$ref`` into
``$defs``, ``anyOf`` for optionals, ``enum``/``const``, bounds, ``minItems``, formats.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

JsonValue = object
_MAX_DEPTH = 12
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_FORMAT_SAMPLES: dict[str, str] = {
    "date-time": "2025-01-01T12:00:00Z",
    "date": "2025-01-01",
    "time": "12:00:00Z",
    "duration": "P1D",
    "email": "someone@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "hostname": "example.com",
}


class SchemaInstanceBuilder:
    """Walks one schema; ``text`` seeds strings and numbers."""

    def __init__(self, root: Mapping[str, JsonValue], text: str) -> None:
        self._root = root
        self._words = text.split() or ["text"]
        self._numbers = [float(n) for n in _NUMBER.findall(text)]

    def build(self) -> JsonValue:
        """An instance of the root schema."""
        return self._value(self._root, 0, "value")

    def _resolve(self, ref: str) -> Mapping[str, JsonValue]:
        if not ref.startswith("#"):
            return {}
        node: JsonValue = self._root
        for part in ref.lstrip("#").strip("/").split("/"):
            if not part:
                continue
            key = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or key not in node:
                return {}
            node = node[key]
        return node if isinstance(node, Mapping) else {}

    def _value(self, schema: JsonValue, depth: int, name: str) -> JsonValue:
        if schema is True or not isinstance(schema, Mapping):
            return self._string({}, name)
        if "$ref" in schema and isinstance(schema["$ref"], str):
            merged = {
                **self._resolve(schema["$ref"]),
                **{k: v for k, v in schema.items() if k != "$ref"},
            }
            return self._value(merged, depth + 1, name)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, Sequence) and not isinstance(enum, str) and enum:
            return enum[0]
        for key in ("allOf",):
            parts = schema.get(key)
            if isinstance(parts, Sequence) and parts:
                combined: dict[str, JsonValue] = {k: v for k, v in schema.items() if k != key}
                for part in parts:
                    if isinstance(part, Mapping):
                        target = self._resolve(str(part["$ref"])) if "$ref" in part else part
                        combined.update(target)
                return self._value(combined, depth + 1, name)
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, Sequence) and options:
                return self._value(self._pick(options, depth), depth + 1, name)
        kind = schema.get("type")
        if isinstance(kind, list):
            non_null = [k for k in kind if k != "null"]
            if depth > _MAX_DEPTH and "null" in kind:
                return None
            kind = non_null[0] if non_null else "null"
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else None
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth, name)
        if kind == "integer":
            return int(self._number(schema, integer=True))
        if kind == "number":
            return self._number(schema, integer=False)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self._string(schema, name)

    def _pick(self, options: Sequence[JsonValue], depth: int) -> JsonValue:
        """First non-null branch, unless we are deep in a recursive schema."""
        non_null = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
        if depth > _MAX_DEPTH and len(non_null) < len(options):
            return {"type": "null"}
        return non_null[0] if non_null else options[0]

    def _object(self, schema: Mapping[str, JsonValue], depth: int) -> dict[str, JsonValue]:
        props = schema.get("properties")
        properties = props if isinstance(props, Mapping) else {}
        req = schema.get("required")
        required = [r for r in req if isinstance(r, str)] if isinstance(req, list) else []
        names = list(required) if depth > _MAX_DEPTH else [*properties, *required]
        result: dict[str, JsonValue] = {}
        for key in names:
            if key not in result:
                result[key] = self._value(properties.get(key, {}), depth + 1, key)
        return result

    def _array(self, schema: Mapping[str, JsonValue], depth: int, name: str) -> list[JsonValue]:
        min_items = schema.get("minItems")
        max_items = schema.get("maxItems")
        count = int(min_items) if isinstance(min_items, int) else 0
        if count == 0 and depth <= _MAX_DEPTH:
            count = 1
        if isinstance(max_items, int):
            count = min(count, max_items)
        prefix = schema.get("prefixItems")
        prefix_items = list(prefix) if isinstance(prefix, list) else []
        items = schema.get("items", {})
        out: list[JsonValue] = [self._value(p, depth + 1, name) for p in prefix_items]
        while len(out) < count:
            out.append(self._value(items, depth + 1, name))
        return out

    def _number(self, schema: Mapping[str, JsonValue], *, integer: bool) -> float:
        def bound(key: str) -> float | None:
            value = schema.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            return float(value)

        lo, hi = bound("minimum"), bound("maximum")
        xlo, xhi = bound("exclusiveMinimum"), bound("exclusiveMaximum")
        step = 1.0 if integer else 0.5
        if xlo is not None:
            lo = max(lo if lo is not None else -math.inf, xlo + step)
        if xhi is not None:
            hi = min(hi if hi is not None else math.inf, xhi - step)
        candidates = [*self._numbers, 0.0]
        for value in candidates:
            v = float(math.floor(value)) if integer else value
            if integer and lo is not None:
                v = max(v, float(math.ceil(lo))) if v < lo else v
            if (lo is None or v >= lo) and (hi is None or v <= hi):
                return self._multiple(schema, v, integer)
        v = lo if lo is not None else hi if hi is not None else 0.0
        if integer:
            v = float(math.ceil(v)) if lo is not None else float(math.floor(v))
        return self._multiple(schema, v, integer)

    @staticmethod
    def _multiple(schema: Mapping[str, JsonValue], value: float, integer: bool) -> float:
        step = schema.get("multipleOf")
        if isinstance(step, int | float) and not isinstance(step, bool) and step > 0:
            value = math.ceil(value / step) * step
        return float(int(value)) if integer else value

    def _string(self, schema: Mapping[str, JsonValue], name: str) -> str:
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMAT_SAMPLES:
            return _FORMAT_SAMPLES[fmt]
        text = " ".join(self._words[:6])
        max_len = schema.get("maxLength")
        min_len = schema.get("minLength")
        if isinstance(max_len, int):
            text = text[:max_len]
        if isinstance(min_len, int) and len(text) < min_len:
            text = text + "x" * (min_len - len(text))
        return text


def instance_for(schema: Mapping[str, JsonValue], text: str) -> JsonValue:
    """A value valid under ``schema`` whose strings and numbers come from ``text``."""
    return SchemaInstanceBuilder(schema, text).build()
