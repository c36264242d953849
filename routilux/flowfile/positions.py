"""Reading a flow file into plain data, remembering where every key and value is.

YAML is read with PyYAML's *safe* loader down to its node tree, whose nodes carry
their marks (line, column); the tree is converted here, so that only plain data
comes out: mappings with string keys, lists, strings, numbers, booleans and null.
No tag that builds an object is honoured (nothing is ever evaluated). JSON is read
with :mod:`json` (its errors carry the position) and walked once more by a small
scanner that records positions. Both record positions by *path*: the tuple of keys
and list indexes leading to a value, e.g. ``("routines", "words", "workers")``.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from routilux.flowfile.problems import Problem

Path = tuple[Any, ...]
FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
MAX_NODES = 200_000  # guards against alias bombs ("billion laughs")

_STR, _SEQ, _MAP, _MERGE = (f"tag:yaml.org,2002:{t}" for t in ("str", "seq", "map", "merge"))


@dataclass
class Document:
    """A parsed flow file: ``data``, and where each value and key starts."""

    file: str
    data: Any = None
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path, key: bool = False) -> tuple[int, int]:
        """Line and column of the value at ``path`` (of its key with ``key=True``);
        the nearest enclosing value's when ``path`` is not in the file."""
        if key and path in self.keys:
            return self.keys[path]
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, (1, 1))

    def problem(self, path: Path, message: str, severity: str = "error", key: bool = False):
        """A :class:`Problem` located at ``path``."""
        line, column = self.where(path, key)
        return Problem(self.file, line, column, message, severity)


class ParseError(Exception):
    """The file is not well-formed; ``problem`` says where."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def format_of(file: str) -> str | None:
    """``"yaml"`` or ``"json"`` from the file name, None for other names."""
    lowered = file.lower()
    for suffix, fmt in FORMATS.items():
        if lowered.endswith(suffix):
            return fmt
    return None


def parse(text: str, file: str, fmt: str) -> Document:
    """Parse ``text`` (``fmt`` ``"yaml"`` or ``"json"``); raises :class:`ParseError`."""
    doc = Document(file)
    if not text.strip():
        raise ParseError(Problem(file, 1, 1, "the file is empty; a flow file is a mapping"))
    if fmt == "json":
        _parse_json(text, doc)
    else:
        _parse_yaml(text, doc)
    return doc


# -- YAML ------------------------------------------------------------------------------
def _parse_yaml(text: str, doc: Document) -> None:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ParseError(Problem(doc.file, 1, 1, "the file holds no document"))
        doc.data = _Converter(loader, doc).convert(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        raise ParseError(Problem(doc.file, line, column, f"malformed YAML: {what}")) from None
    except yaml.YAMLError as exc:
        raise ParseError(Problem(doc.file, 1, 1, f"malformed YAML: {exc}")) from None
    finally:
        loader.dispose()


class _Converter:
    """Node tree -> plain data, recording marks; refuses what JSON cannot hold."""

    def __init__(self, loader: yaml.SafeLoader, doc: Document) -> None:
        self.loader = loader
        self.doc = doc
        self.count = 0
        self.active: set[int] = set()  # nodes being converted: a recursive alias

    def fail(self, node: yaml.Node, message: str) -> ParseError:
        mark = node.start_mark
        return ParseError(Problem(self.doc.file, mark.line + 1, mark.column + 1, message))

    def convert(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(node, f"the file expands to more than {MAX_NODES} values")
        self.doc.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if id(node) in self.active:
            raise self.fail(node, "an alias refers to a value that contains it (anchored here)")
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ:
                    raise self.fail(node, f"unsupported YAML tag {node.tag!r}")
                return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
            if node.tag != _MAP:
                raise self.fail(node, f"unsupported YAML tag {node.tag!r}")
            explicit = {id(k) for k, _ in node.value if k.tag != _MERGE}
            self.loader.flatten_mapping(node)  # merge keys (<<): merged pairs come first
            result: dict[str, Any] = {}
            written: set[str] = set()  # keys given in this mapping itself (not merged)
            for key_node, value_node in node.value:
                key = self.scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, str):
                    raise self.fail(key_node, "mapping keys must be strings")
                if key in result and id(key_node) in explicit and key in written:
                    raise self.fail(key_node, f"duplicate key {key!r}")
                if id(key_node) in explicit:
                    written.add(key)
                mark = key_node.start_mark
                self.doc.keys[(*path, key)] = (mark.line + 1, mark.column + 1)
                result[key] = self.convert(value_node, (*path, key))
            return result
        finally:
            self.active.discard(id(node))

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _STR:
            return node.value
        value = self.loader.construct_object(node)  # the safe constructor's scalars
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise self.fail(
            node,
            f"{node.value!r} reads as a {type(value).__name__}, which JSON cannot hold; "
            "quote it to make it a string",
        )


# -- JSON ------------------------------------------------------------------------------
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_LITERALS = ("true", "false", "null")


def _parse_json(text: str, doc: Document) -> None:
    try:
        doc.data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            Problem(doc.file, exc.lineno, exc.colno, f"malformed JSON: {exc.msg}")
        ) from None
    _JsonScanner(text, doc).scan()


class _JsonScanner:
    """Walks text that :func:`json.loads` accepted, recording positions; refuses
    duplicate keys and the non-JSON constants NaN and Infinity."""

    def __init__(self, text: str, doc: Document) -> None:
        self.text = text
        self.doc = doc
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, index: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.line_starts, index)
        return line, index - self.line_starts[line - 1] + 1

    def fail(self, index: int, message: str) -> ParseError:
        return ParseError(Problem(self.doc.file, *self.position(index), message))

    def skip(self, i: int) -> int:
        return _WHITESPACE.match(self.text, i).end()

    def scan(self) -> None:
        self.value(self.skip(0), ())

    def value(self, i: int, path: Path) -> int:
        self.doc.values[path] = self.position(i)
        char = self.text[i]
        if char == "{":
            return self.mapping(i, path)
        if char == "[":
            i, n = self.skip(i + 1), 0
            if self.text[i] == "]":
                return i + 1
            while True:
                i = self.skip(self.value(i, (*path, n)))
                n += 1
                if self.text[i] == "]":
                    return i + 1
                i = self.skip(i + 1)  # ","
        if char == '"':
            return json.decoder.scanstring(self.text, i + 1)[1]
        match = _NUMBER.match(self.text, i)
        if match and match.end() > i:
            return match.end()
        for literal in _LITERALS:
            if self.text.startswith(literal, i):
                return i + len(literal)
        raise self.fail(i, "NaN and Infinity are not JSON; use a number or null")

    def mapping(self, i: int, path: Path) -> int:
        i, seen = self.skip(i + 1), set()
        if self.text[i] == "}":
            return i + 1
        while True:
            key, end = json.decoder.scanstring(self.text, i + 1)
            if key in seen:
                raise self.fail(i, f"duplicate key {key!r}")
            seen.add(key)
            self.doc.keys[(*path, key)] = self.position(i)
            i = self.skip(self.skip(end) + 1)  # past ":"
            i = self.skip(self.value(i, (*path, key)))
            if self.text[i] == "}":
                return i + 1
            i = self.skip(i + 1)  # ","
