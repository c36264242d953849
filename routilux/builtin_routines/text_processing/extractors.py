"""The built-in extractors of ResultExtractor (routilux 0.10's), and opt-in extras.

An extractor is ``fn(data, config) -> None | (result, format, metadata)``; ``config``
is the routine's config dict. The built-ins below honour the 0.10 config keys.
The extras (:func:`embedded_json`, :func:`xml_tags`, :func:`python_session`) are
not in the default set; add one with ``register_extractor(name, fn)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

try:  # PyYAML is optional: without it the YAML extractors are not registered
    import yaml
except ImportError:  # pragma: no cover - the test extras install PyYAML
    yaml = None

ExtractorResult = tuple[Any, str, dict[str, Any]] | None
Extractor = Callable[[Any, dict[str, Any]], ExtractorResult]

FENCE = "```"
_JSON_CANDIDATES = 200  # at most this many '{' / '[' positions are tried per text
_TAG = re.compile(r"<(/?)([A-Za-z_][\w.-]*)(?:\s[^<>]*)?\s*>")


def _fenced(text: str, opener: str) -> list[str]:
    """Bodies of the blocks opened by ``FENCE + opener`` (case-insensitive), then
    whitespace ending in a line break; a body runs to the next fence. Found in one
    left-to-right pass (linear time), as ``re.findall`` of that pattern finds them."""
    bodies: list[str] = []
    pos = 0
    for match in re.finditer(re.escape(FENCE + opener), text, re.IGNORECASE):
        if match.start() < pos:
            continue  # inside the block found last
        end = match.end()
        while end < len(text) and text[end].isspace():
            end += 1
        newline = text.rfind("\n", match.end(), end)
        if newline < 0:
            continue
        close = text.find(FENCE, newline + 1)
        if close < 0:
            break
        bodies.append(text[newline + 1 : close])
        pos = close + len(FENCE)
    return bodies


def code_blocks(text: str, language: str) -> list[str]:
    """Blocks fenced as ```` ```<language> ```` then as ```` ```{<language>} ````."""
    return _fenced(text, language) + _fenced(text, "{" + language + "}")


def interpreter_output(data: Any, config: dict[str, Any]) -> ExtractorResult:
    """A code interpreter's output list: ``[{"format": "output", "content": ...}]``."""
    if not isinstance(data, list) or not config.get("format_interpreter_output", True):
        return None
    structured = False
    lines: list[str] = []
    for item in data:
        if isinstance(item, dict):
            if "format" in item or "content" in item:
                structured = True
                content = item.get("content")
                if item.get("format") == "output" and content and str(content).strip():
                    lines.append(str(content))
        elif isinstance(item, str) and item.strip():
            lines.append(item)
    if not (structured and lines):
        return None
    meta = {
        "extraction_method": "interpreter_output",
        "output_count": len(lines),
        "line_count": len(lines),
    }
    return "\n".join(lines), "interpreter_output", meta


def json_code_block(data: Any, config: dict[str, Any]) -> ExtractorResult:
    """The last fenced json block that parses."""
    if not isinstance(data, str) or not config.get("extract_json_blocks", True):
        return None
    blocks = code_blocks(data, "json")
    for block in reversed(blocks):
        try:
            result = json.loads(block.strip())
        except (ValueError, RecursionError):
            continue
        meta = {
            "extraction_method": "json_code_block",
            "block_count": len(blocks),
            "block_index": blocks.index(block),  # the first equal block, as 0.10 reports
        }
        return result, "json", meta
    return None


def json_string(data: Any, config: dict[str, Any]) -> ExtractorResult:
    """A str that is a JSON object or array as a whole."""
    if not isinstance(data, str) or not config.get("parse_json_strings", True):
        return None
    stripped = data.strip()
    if stripped[:1] in ("{", "[") and len(stripped) > 2:
        try:
            return json.loads(stripped), "json", {"extraction_method": "json_string"}
        except (ValueError, RecursionError):
            return None
    return None


def code_block(data: Any, config: dict[str, Any]) -> ExtractorResult:
    """The last block of the first language of ``code_block_languages`` (json
    skipped) that has blocks; the format is the language name."""
    if not isinstance(data, str) or not config.get("extract_code_blocks", True):
        return None
    for language in config.get("code_block_languages", ["json", "python", "output"]):
        if language == "json":
            continue
        blocks = code_blocks(data, language)
        if blocks:
            meta = {"extraction_method": f"{language}_code_block", "block_count": len(blocks)}
            return blocks[-1], language, meta
    return None


def yaml_code_block(data: Any, config: dict[str, Any]) -> ExtractorResult:
    """The last fenced yaml (else yml) block that parses."""
    if not isinstance(data, str) or not config.get("extract_yaml_blocks", False):
        return None
    blocks = code_blocks(data, "yaml") or code_blocks(data, "yml")
    for block in reversed(blocks):
        try:
            result = yaml.safe_load(block.strip())
        except (yaml.YAMLError, RecursionError):
            continue
        return result, "yaml", {"extraction_method": "yaml_code_block", "block_count": len(blocks)}
    return None


def yaml_string(data: Any, config: dict[str, Any]) -> ExtractorResult:
    """A str that is YAML as a whole (not None once parsed)."""
    if not isinstance(data, str) or not config.get("parse_yaml_strings", False):
        return None
    try:
        result = yaml.safe_load(data.strip())
    except (yaml.YAMLError, RecursionError):
        return None
    return None if result is None else (result, "yaml", {"extraction_method": "yaml_string"})


def xml_code_block(data: Any, config: dict[str, Any]) -> ExtractorResult:
    """The last fenced xml block, as text."""
    if not isinstance(data, str) or not config.get("extract_xml_blocks", False):
        return None
    blocks = code_blocks(data, "xml")
    if not blocks:
        return None
    return blocks[-1], "xml", {"extraction_method": "xml_code_block", "block_count": len(blocks)}


def dict_extractor(data: Any, config: dict[str, Any]) -> ExtractorResult:
    """A dict, as it is."""
    if isinstance(data, dict):
        return data, "dict", {"extraction_method": "direct", "key_count": len(data)}
    return None


def list_extractor(data: Any, config: dict[str, Any]) -> ExtractorResult:
    """A list, as it is."""
    if isinstance(data, list):
        return data, "list", {"extraction_method": "direct", "item_count": len(data)}
    return None


def builtin_extractors() -> dict[str, Extractor]:
    """The built-ins in registration order (the YAML ones only with PyYAML)."""
    found: dict[str, Extractor] = {
        "interpreter_output": interpreter_output,
        "json_code_block": json_code_block,
        "json_string": json_string,
        "code_block": code_block,
    }
    if yaml is not None:
        found["yaml_code_block"] = yaml_code_block
        found["yaml_string"] = yaml_string
    found["xml_code_block"] = xml_code_block
    found["dict_extractor"] = dict_extractor
    found["list_extractor"] = list_extractor
    return found


#: Default order: these first (in this order), then dict/list, then custom ones.
SPECIALIZED = (
    "interpreter_output",
    "json_code_block",
    "json_string",
    "yaml_code_block",
    "yaml_string",
    "xml_code_block",
    "code_block",
)
GENERIC = ("dict_extractor", "list_extractor")


# -- opt-in extras ---------------------------------------------------------------------
def embedded_json(data: Any, config: dict[str, Any]) -> ExtractorResult:
    """The first non-empty JSON object or array embedded in a str."""
    if not isinstance(data, str):
        return None
    decoder = json.JSONDecoder()
    for tried, match in enumerate(re.finditer(r"[\[{]", data)):
        if tried >= _JSON_CANDIDATES:
            break
        try:
            value, end = decoder.raw_decode(data, match.start())
        except (ValueError, RecursionError):
            continue
        if isinstance(value, (dict, list)) and value:
            meta = {"extraction_method": "embedded_json", "position": match.start(), "end": end}
            return value, "json", meta
    return None


def xml_tags(data: Any, config: dict[str, Any]) -> ExtractorResult:
    """Top-level ``<tag>content</tag>`` pairs of a str, as a dict (a repeated tag
    gives a list). Tags are paired with a stack in one pass (linear time)."""
    if not isinstance(data, str):
        return None
    stack: list[tuple[str, int]] = []  # (name, content start)
    open_counts: dict[str, int] = {}
    result: dict[str, Any] = {}
    repeated: set[str] = set()
    for match in _TAG.finditer(data):
        closing, name = match.group(1), match.group(2)
        if not closing:
            stack.append((name, match.end()))
            open_counts[name] = open_counts.get(name, 0) + 1
            continue
        if not open_counts.get(name):
            continue  # a stray closing tag
        while True:  # pop up to the matching opening tag (unclosed ones are dropped)
            top, content_start = stack.pop()
            open_counts[top] -= 1
            if top == name:
                break
        if stack:
            continue  # nested inside another element: part of its content
        content = data[content_start : match.start()].strip()
        if name not in result:
            result[name] = content
        elif name in repeated:
            result[name].append(content)
        else:
            result[name] = [result[name], content]
            repeated.add(name)
    if not result:
        return None
    return result, "xml", {"extraction_method": "xml_tags", "repeated": sorted(repeated)}


def python_session(data: Any, config: dict[str, Any]) -> ExtractorResult:
    """A ``>>>`` interpreter session in a str: ``[{"input", "output"}, ...]``."""
    if not isinstance(data, str):
        return None
    entries: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in data.splitlines():
        if line.startswith(">>>"):
            current = {"input": line[4:] if line.startswith(">>> ") else line[3:], "output": ""}
            entries.append(current)
        elif current is not None and line.startswith("..."):
            current["input"] += "\n" + (line[4:] if line.startswith("... ") else line[3:])
        elif current is not None and line.strip():
            current["output"] += line + "\n"
        else:
            current = None  # a blank line ends the output of the last input
    if not entries:
        return None
    for entry in entries:
        entry["output"] = entry["output"].rstrip("\n")
    return entries, "python_session", {"extraction_method": "python_session"}
