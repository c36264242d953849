"""Checking plain data against the flow file schema, reporting every violation.

A small validator for the part of JSON Schema that :mod:`routilux.flowfile.schema`
uses (``$ref`` to ``$defs``, ``type``, ``const``, ``enum``, ``properties``,
``required``, ``additionalProperties``, ``propertyNames``, ``minProperties``,
``items``, ``minLength``, ``pattern``, ``minimum``, ``exclusiveMinimum``,
``anyOf``), so that reading a flow file needs no extra dependency and each message
can say in plain words what is wrong and where.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from routilux.flowfile.positions import Document, Path
from routilux.flowfile.problems import Problem

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def type_of(value: Any) -> str:
    """The JSON type name of a parsed value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def has_type(value: Any, expected: str) -> bool:
    """JSON Schema's type test (an integral float is an integer, a bool is no number)."""
    actual = type_of(value)
    if expected == "number":
        return actual in ("integer", "number")
    if expected == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    return actual == expected


def dotted(path: Path) -> str:
    """``("connections", 2, "from")`` -> ``"connections[2].from"``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the top level"


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else _TYPE_NAMES[type_of(value)]
    return text if len(text) <= 60 else text[:57] + "..."


class SchemaChecker:
    """Checks a :class:`Document` against ``schema``; :meth:`check` returns problems."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.root = schema

    def check(self, doc: Document) -> list[Problem]:
        """Every schema problem of ``doc``, with its position."""
        problems: list[Problem] = []
        self._check(doc.data, self.root, (), doc, problems)
        return problems

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"only local $ref are supported, got {ref!r}")
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target[part]
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def _check(
        self, value: Any, schema: dict[str, Any], path: Path, doc: Document, out: list[Problem]
    ) -> None:
        schema = self._resolve(schema)
        where = dotted(path)
        if "anyOf" in schema:
            self._any_of(value, schema, path, doc, out)
            return
        expected = schema.get("type")
        if expected is not None:
            names = expected if isinstance(expected, list) else [expected]
            if not any(has_type(value, name) for name in names):
                wanted = " or ".join(_TYPE_NAMES[n] for n in names)
                out.append(doc.problem(path, f"{where} must be {wanted}, got {_shown(value)}"))
                return
        if "const" in schema and value != schema["const"]:
            out.append(doc.problem(path, f"{where} must be {schema['const']!r}"))
        if "enum" in schema and value not in schema["enum"]:
            choices = ", ".join(repr(c) for c in schema["enum"])
            out.append(doc.problem(path, f"{where} must be one of {choices}, got {_shown(value)}"))
        if isinstance(value, str):
            self._string(value, schema, path, doc, out)
        elif type_of(value) in ("integer", "number"):
            self._number(value, schema, path, doc, out)
        elif isinstance(value, dict):
            self._mapping(value, schema, path, doc, out)
        elif isinstance(value, list) and "items" in schema:
            for i, item in enumerate(value):
                self._check(item, schema["items"], (*path, i), doc, out)

    def _any_of(
        self, value: Any, schema: dict[str, Any], path: Path, doc: Document, out: list[Problem]
    ) -> None:
        branches = [self._resolve(b) for b in schema["anyOf"]]
        results = []
        for branch in branches:
            found: list[Problem] = []
            self._check(value, branch, path, doc, found)
            if not found:
                return
            results.append((branch, found))
        typed = [found for branch, found in results if has_type(value, branch.get("type", ""))]
        if len(typed) == 1:
            out.extend(typed[0])
            return
        what = schema.get("description", "a valid value")
        out.append(doc.problem(path, f"{dotted(path)} must be {what[0].lower()}{what[1:]}"))

    def _string(
        self, value: str, schema: dict[str, Any], path: Path, doc: Document, out: list[Problem]
    ) -> None:
        where = dotted(path)
        if len(value) < schema.get("minLength", 0):
            out.append(doc.problem(path, f"{where} must not be empty"))
        elif "pattern" in schema and not re.search(schema["pattern"], value):
            hint = schema.get("description", f"text matching {schema['pattern']}")
            out.append(doc.problem(path, f"{where} {value!r} is not valid: expected {hint}"))

    def _number(
        self, value: float, schema: dict[str, Any], path: Path, doc: Document, out: list[Problem]
    ) -> None:
        where = dotted(path)
        if "minimum" in schema and value < schema["minimum"]:
            out.append(doc.problem(path, f"{where} must be >= {schema['minimum']}, got {value}"))
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            limit = schema["exclusiveMinimum"]
            out.append(doc.problem(path, f"{where} must be > {limit}, got {value}"))

    def _mapping(
        self,
        value: dict[str, Any],
        schema: dict[str, Any],
        path: Path,
        doc: Document,
        out: list[Problem],
    ) -> None:
        where = dotted(path)
        properties = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                out.append(doc.problem(path, f"{where}: the key {key!r} is missing"))
        if len(value) < schema.get("minProperties", 0):
            out.append(doc.problem(path, f"{where} must not be empty"))
        extra = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        for key, item in value.items():
            if names is not None and len(key) < names.get("minLength", 0):
                out.append(doc.problem((*path, key), f"{where}: a key is empty", key=True))
            if key in properties:
                self._check(item, properties[key], (*path, key), doc, out)
            elif extra is False:
                message = self._unknown(where, key, properties)
                out.append(doc.problem((*path, key), message, key=True))
            elif isinstance(extra, dict):
                self._check(item, extra, (*path, key), doc, out)

    @staticmethod
    def _unknown(where: str, key: str, properties: dict[str, Any]) -> str:
        allowed = [k for k in properties if not k.startswith("$")]
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{where}: unknown key {key!r}; {hint}allowed keys: {', '.join(allowed)}"
