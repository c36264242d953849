"""ResultExtractor: pull structured results out of free text (e.g. model output)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from routilux.builtin_routines._base import BuiltinRoutine, type_name
from routilux.exceptions import ConfigurationError

_TAG = re.compile(r"<(/?)([A-Za-z_][\w.-]*)(?:\s[^<>]*)?\s*>")
_JSON_CANDIDATES = 200  # at most this many '{' / '[' positions are tried per text


class Extraction(NamedTuple):
    """One candidate result found in a text.

    ``position``/``end`` are character offsets of the matched span (used by the
    ``first_match`` and ``all`` strategies). Custom extractors may return these.
    """

    result: Any
    format: str
    confidence: float
    position: int = 0
    end: int = 0
    metadata: dict[str, Any] | None = None


Extractor = Callable[[str], Any]


# -- built-in extractors ---------------------------------------------------------------
def _fences(text: str) -> list[tuple[str, str, int, int]]:
    """Fenced blocks as ``(language, body, start, end)``, found in one linear pass.

    Fences pair up in order; the rest of the opening fence's line names the language.
    A fence closed on its own line (```` ```code``` ````) has no language.
    """
    found = []
    pos = 0
    while True:
        start = text.find("```", pos)
        if start < 0:
            break
        close = text.find("```", start + 3)
        if close < 0:
            break
        line_end = text.find("\n", start + 3)
        if 0 <= line_end < close:
            header = text[start + 3 : line_end].split()
            lang = header[0].lower() if header else ""
            body = text[line_end + 1 : close]
        else:
            lang, body = "", text[start + 3 : close]
        found.append((lang, body, start, close + 3))
        pos = close + 3
    return found


def extract_json_block(text: str) -> list[Extraction]:
    """JSON inside fenced ```json blocks."""
    found = []
    for lang, body, start, end in _fences(text):
        if lang != "json":
            continue
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            continue
        found.append(Extraction(value, "json", 0.95, start, end, {"source": "json_block"}))
    return found


def extract_yaml_block(text: str) -> list[Extraction]:
    """YAML inside fenced ```yaml / ```yml blocks (needs PyYAML; skipped without it)."""
    blocks = [f for f in _fences(text) if f[0] in ("yaml", "yml")]
    if not blocks:
        return []
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is optional
        return []
    found = []
    for _lang, body, start, end in blocks:
        try:
            value = yaml.safe_load(body)
        except (yaml.YAMLError, RecursionError):
            continue
        if value is not None:
            found.append(Extraction(value, "yaml", 0.9, start, end, {"source": "yaml_block"}))
    return found


def extract_json(text: str) -> list[Extraction]:
    """A JSON object or array: the whole text, or the first one embedded in it."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            value = json.loads(stripped)
        except (ValueError, RecursionError):
            pass
        else:
            start = text.index(stripped[0])
            return [
                Extraction(
                    value, "json", 0.9, start, start + len(stripped), {"source": "whole_text"}
                )
            ]
    decoder = json.JSONDecoder()
    tried = 0
    for match in re.finditer(r"[\[{]", text):
        tried += 1
        if tried > _JSON_CANDIDATES:
            break
        try:
            value, end = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):
            continue
        if isinstance(value, (dict, list)) and value:
            return [Extraction(value, "json", 0.75, match.start(), end, {"source": "embedded"})]
    return []


def extract_xml(text: str) -> list[Extraction]:
    """Top-level ``<tag>content</tag>`` pairs, as a dict (a repeated tag gives a list).

    Tags are paired with a stack in one pass (linear time on any input); a tag never
    closed is treated as empty and ignored.
    """
    stack: list[tuple[str, int, int]] = []  # (name, start, content start)
    open_counts: dict[str, int] = {}
    result: dict[str, Any] = {}
    repeated: set[str] = set()
    first = last = 0
    for match in _TAG.finditer(text):
        closing, name = match.group(1), match.group(2)
        if not closing:
            stack.append((name, match.start(), match.end()))
            open_counts[name] = open_counts.get(name, 0) + 1
            continue
        if not open_counts.get(name):
            continue  # a stray closing tag
        while True:  # pop up to the matching opening tag (unclosed ones are dropped)
            top, top_start, content_start = stack.pop()
            open_counts[top] -= 1
            if top == name:
                break
        if stack:
            continue  # nested inside another element: part of its content
        content = text[content_start : match.start()].strip()
        if not result:
            first = top_start
        if name not in result:
            result[name] = content
        elif name in repeated:
            result[name].append(content)
        else:
            result[name] = [result[name], content]
            repeated.add(name)
        last = match.end()
    if not result:
        return []
    meta = {"source": "tags", "tags": list(result), "repeated": sorted(repeated)}
    return [Extraction(result, "xml", 0.7, first, last, meta)]


def extract_interpreter(text: str) -> list[Extraction]:
    """A Python interpreter session: ``>>>`` inputs with the output printed after them."""
    lines = text.splitlines(keepends=True)
    entries: list[dict[str, Any]] = []
    offset = 0
    start = end = None
    current: dict[str, Any] | None = None
    for line in lines:
        bare = line.rstrip("\r\n")
        if bare.startswith(">>>"):
            current = {"input": bare[4:] if bare.startswith(">>> ") else bare[3:], "output": ""}
            entries.append(current)
            start = offset if start is None else start
            end = offset + len(line)
        elif current is not None and bare.startswith("..."):
            current["input"] += "\n" + (bare[4:] if bare.startswith("... ") else bare[3:])
            end = offset + len(line)
        elif current is not None and bare.strip():
            current["output"] += bare + "\n"
            end = offset + len(line)
        elif current is not None:
            current = None  # a blank line ends the output of the last input
        offset += len(line)
    if not entries:
        return []
    for entry in entries:
        entry["output"] = entry["output"].rstrip("\n")
    has_traceback = any("Traceback (most recent call last):" in e["output"] for e in entries)
    meta = {"source": "interpreter", "has_traceback": has_traceback}
    return [Extraction(entries, "interpreter_output", 0.65, start or 0, end or 0, meta)]


def extract_code_block(text: str) -> list[Extraction]:
    """Any fenced code block, as its source text (``metadata['language']``)."""
    return [
        Extraction(
            body, "code", 0.6, start, end, {"source": "code_block", "language": lang or None}
        )
        for lang, body, start, end in _fences(text)
    ]


BUILTIN_EXTRACTORS: dict[str, Callable[[str], list[Extraction]]] = {
    "json_block": extract_json_block,
    "yaml_block": extract_yaml_block,
    "json": extract_json,
    "xml": extract_xml,
    "interpreter": extract_interpreter,
    "code_block": extract_code_block,
}
STRATEGIES = ("auto", "priority", "all", "first_match")


class ResultExtractor(BuiltinRoutine):
    """Finds structured results in free text.

    Built-in extractors, in default priority order: ``json_block`` (fenced
    ```` ```json ````), ``yaml_block`` (fenced ```` ```yaml ````, needs PyYAML),
    ``json`` (a JSON object/array, whole or embedded), ``xml`` (``<tag>..</tag>``
    pairs), ``interpreter`` (``>>>`` sessions) and ``code_block`` (any fence).
    ``register_extractor(name, fn)`` adds one; custom extractors come first.

    Strategies: ``auto`` runs every extractor and keeps the most confident result;
    ``priority`` keeps the first extractor (in ``extractors`` order) that finds
    anything; ``first_match`` keeps the result that starts earliest in the text;
    ``all`` returns every result (overlapping lower-confidence duplicates dropped)
    in text order. With nothing found and ``fallback_to_text`` the stripped text
    itself is the result (format ``"text"``, confidence 0.1); an empty text gives
    ``None`` (format ``"none"``, confidence 0.0).

    Config: ``strategy`` (default ``"auto"``), ``extractors`` (names in priority
    order; None: all), ``fallback_to_text`` (default True), ``input_key`` (default
    ``"text"``).

    Slot ``input``: a message with a ``text`` str.
    Event ``output(extracted_result, format, metadata, confidence, extraction_path)``:
    ``metadata`` includes ``extractor`` and ``position``; ``extraction_path`` lists the
    extractors tried, in order. With ``all``, ``extracted_result`` is a list, ``format``
    is ``"multiple"`` and ``metadata["results"]`` describes each result.
    """

    CONFIG_DEFAULTS = {
        "strategy": "auto",
        "extractors": None,
        "fallback_to_text": True,
        "input_key": "text",
    }

    def __init__(self, **config: Any) -> None:
        self._custom: dict[str, tuple[Extractor, str, float]] = {}
        super().__init__(**config)

    def _setup(self) -> None:
        self.define_slot("input", handler=self._on_input)
        self.define_event(
            "output", ["extracted_result", "format", "metadata", "confidence", "extraction_path"]
        )

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "strategy":
            return self._check_choice(key, value, STRATEGIES)
        if key == "extractors":
            if value is None:
                return None
            if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
                raise self._bad_config(key, "a non-empty list of extractor names or None", value)
            known = self.extractor_names()
            unknown = [name for name in value if name not in known]
            if unknown:
                raise ConfigurationError(
                    f"ResultExtractor: unknown extractor(s) {unknown}; known: {known} "
                    "(register custom extractors before naming them)"
                )
            return list(value)
        if key == "fallback_to_text":
            return self._check_bool(key, value)
        if key == "input_key":
            return self._check_str(key, value)
        return value

    def register_extractor(
        self, name: str, fn: Extractor, *, format: str | None = None, confidence: float = 0.8
    ) -> None:
        """Add an extractor ``fn(text)``.

        ``fn`` returns None (nothing found), an :class:`Extraction`, a list of them, or
        any other value (the result, with ``format`` - default ``name`` - and
        ``confidence``, found at position 0).
        """
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"extractor name must be a non-empty str, got {name!r}")
        if name in BUILTIN_EXTRACTORS:
            raise ConfigurationError(f"{name!r} is a built-in extractor and cannot be replaced")
        if not callable(fn):
            raise ConfigurationError(f"extractor {name!r} must be callable, got {type_name(fn)}")
        if (
            isinstance(confidence, bool)
            or not isinstance(confidence, (int, float))
            or not (0.0 <= confidence <= 1.0)
        ):
            raise ConfigurationError(f"confidence must be in [0, 1], got {confidence!r}")
        self._custom[name] = (fn, format or name, float(confidence))

    def extractor_names(self) -> list[str]:
        """Every extractor in default priority order (custom ones first)."""
        return [*self._custom, *BUILTIN_EXTRACTORS]

    # -- extraction ------------------------------------------------------------------
    def _run(self, name: str, text: str) -> list[Extraction]:
        custom = self._custom.get(name)
        if custom is None:
            return BUILTIN_EXTRACTORS[name](text)
        fn, fmt, confidence = custom
        value = fn(text)
        if value is None:
            return []
        if isinstance(value, Extraction):
            return [value]
        if isinstance(value, list) and value and all(isinstance(v, Extraction) for v in value):
            return list(value)
        return [Extraction(value, fmt, confidence, 0, len(text), {"source": name})]

    def extract(self, text: str) -> dict[str, Any]:
        """The output keys for ``text`` (what the ``output`` event carries)."""
        if not isinstance(text, str):
            raise TypeError(f"ResultExtractor needs a str, got {type_name(text)}")
        order = self._config["extractors"] or self.extractor_names()
        strategy = self._config["strategy"]
        path: list[str] = []
        found: list[tuple[int, str, Extraction]] = []  # (rank, extractor, extraction)
        for rank, name in enumerate(order):
            path.append(name)
            hits = self._run(name, text)
            found.extend((rank, name, hit) for hit in hits)
            if strategy == "priority" and hits:
                break
        if not found:
            return self._fallback(text, path)
        if strategy == "all":
            return self._all(found, path)
        if strategy == "auto":
            rank, name, best = min(found, key=lambda f: (-f[2].confidence, f[0], f[2].position))
        else:  # priority (only the first successful extractor ran) and first_match
            rank, name, best = min(found, key=lambda f: (f[2].position, -f[2].confidence, f[0]))
        metadata = dict(best.metadata or {})
        metadata.update(extractor=name, position=best.position)
        return {
            "extracted_result": best.result,
            "format": best.format,
            "metadata": metadata,
            "confidence": best.confidence,
            "extraction_path": path,
        }

    def _fallback(self, text: str, path: list[str]) -> dict[str, Any]:
        stripped = text.strip()
        if stripped and self._config["fallback_to_text"]:
            return {
                "extracted_result": stripped,
                "format": "text",
                "metadata": {"extractor": "text", "position": 0},
                "confidence": 0.1,
                "extraction_path": [*path, "text"],
            }
        return {
            "extracted_result": None,
            "format": "none",
            "metadata": {"extractor": None, "position": None},
            "confidence": 0.0,
            "extraction_path": path,
        }

    def _all(self, found: list[tuple[int, str, Extraction]], path: list[str]) -> dict[str, Any]:
        kept: list[tuple[int, str, Extraction]] = []
        for item in sorted(found, key=lambda f: (-f[2].confidence, f[0], f[2].position)):
            hit = item[2]
            overlapped = any(
                k[2].position <= hit.position and hit.end <= k[2].end and k[2].end > k[2].position
                for k in kept
            )
            if not overlapped:
                kept.append(item)
        kept.sort(key=lambda f: (f[2].position, f[0]))
        results = [
            {
                "extractor": name,
                "format": hit.format,
                "confidence": hit.confidence,
                "position": hit.position,
                "metadata": dict(hit.metadata or {}),
            }
            for _rank, name, hit in kept
        ]
        return {
            "extracted_result": [hit.result for _r, _n, hit in kept],
            "format": "multiple",
            "metadata": {"results": results, "count": len(kept)},
            "confidence": max(hit.confidence for _r, _n, hit in kept),
            "extraction_path": path,
        }

    def _on_input(self, /, **message: Any) -> None:
        text = self._input_value(message)
        self.emit("output", **self.extract(text))
