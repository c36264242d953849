"""ResultExtractor: pull structured results out of model or tool output (routilux 0.10)."""

from __future__ import annotations

import logging
from typing import Any

from routilux.builtin_routines._base import AUTO, BuiltinRoutine, is_plain_callable
from routilux.builtin_routines.text_processing.extractors import (
    GENERIC,
    SPECIALIZED,
    Extractor,
    builtin_extractors,
)
from routilux.exceptions import ConfigurationError

logger = logging.getLogger(__name__)

FIRST_RESULT_STRATEGIES = ("auto", "priority", "first_match")


def confidence_of(result: Any, fmt: str, metadata: dict[str, Any]) -> float:
    """0.10's confidence: 0.5, +0.2 structured, +0.1 code block, +0.1 json/yaml,
    -0.3 empty; clamped to [0, 1] (the order of the sums is 0.10's, floats included)."""
    confidence = 0.5
    if isinstance(result, (dict, list)):
        confidence += 0.2
    if "code_block" in str(metadata.get("extraction_method", "")):
        confidence += 0.1
    if fmt in ("json", "yaml"):
        confidence += 0.1
    if not result or (isinstance(result, str) and not result.strip()):
        confidence -= 0.3
    return max(0.0, min(1.0, confidence))


class ResultExtractor(BuiltinRoutine):
    """Finds the result in model or tool output, as routilux 0.10's ResultExtractor.

    The input (the 0.10 input rule; an empty message gives ``""``) may be of any
    type. Extractors ``fn(data, config) -> None | (result, format, metadata)`` are
    tried in order: ``interpreter_output`` (a list of ``{"format": "output",
    "content": ...}`` items), ``json_code_block`` (the last fenced json block that
    parses), ``json_string`` (a str that is JSON), ``yaml_code_block`` and
    ``yaml_string`` (with PyYAML, off by default), ``xml_code_block`` (off by
    default), ``code_block`` (the last block of the first language of
    ``code_block_languages``; the format is the language), ``dict_extractor`` and
    ``list_extractor`` (the value itself), then custom extractors in registration
    order. ``extractor_priority=[names]`` puts those first. ``register_extractor(name,
    fn)`` adds one (or replaces a built-in in place). Opt-in extras live in
    :mod:`routilux.builtin_routines.text_processing.extractors`.

    ``strategy``: ``auto``, ``priority`` and ``first_match`` keep the first result;
    ``all`` returns every result (``format="multi"``, the list of results, their
    dicts in ``metadata["extractions"]``); any other value keeps the most confident.
    An extractor that raises is listed in the errors (logged at WARNING with
    ``log_errors``); ``continue_on_error=False`` stops there. Nothing found: the
    original data with ``format`` its type name and confidence 0.0
    (``return_original_on_failure``), else ``ValueError``.

    Config (0.10's): ``strategy`` (``"auto"``), ``extractor_priority`` (``[]``),
    ``extract_json_blocks`` (True), ``extract_code_blocks`` (True),
    ``extract_yaml_blocks`` (False), ``extract_xml_blocks`` (False),
    ``code_block_languages`` (``["json", "python", "output", "yaml", "xml"]``),
    ``format_interpreter_output`` (True), ``parse_json_strings`` (True),
    ``parse_yaml_strings`` (False), ``detect_nested_structures`` (True; no effect),
    ``continue_on_error`` (True), ``return_original_on_failure`` (True),
    ``log_errors`` (True), plus ``input_key`` (``"auto"``).

    Slot ``input`` (``input_slot``).
    Event ``output(extracted_result, format, metadata, confidence, extraction_path)``
    (``output_event``): ``metadata`` holds the extractor's keys plus ``extractor``
    and ``strategy``; ``extraction_path`` lists the extractor names used.
    """

    CONFIG_DEFAULTS = {
        "strategy": "auto",
        "extractor_priority": [],
        "extract_json_blocks": True,
        "extract_code_blocks": True,
        "extract_yaml_blocks": False,
        "extract_xml_blocks": False,
        "code_block_languages": ["json", "python", "output", "yaml", "xml"],
        "format_interpreter_output": True,
        "parse_json_strings": True,
        "parse_yaml_strings": False,
        "detect_nested_structures": True,
        "continue_on_error": True,
        "return_original_on_failure": True,
        "log_errors": True,
        "input_key": AUTO,
    }

    def __init__(self, **config: Any) -> None:
        self._extractors: dict[str, Extractor] = builtin_extractors()
        super().__init__(**config)

    def _setup(self) -> None:
        self.input_slot = self.define_slot("input", handler=self._on_input)
        self.output_event = self.define_event(
            "output", ["extracted_result", "format", "metadata", "confidence", "extraction_path"]
        )

    def _check_config(self, key: str, value: Any) -> Any:
        if key in ("extractor_priority", "code_block_languages") and (
            isinstance(value, str) or not isinstance(value, (list, tuple))
        ):
            raise self._bad_config(key, "a list of names", value)
        if key == "input_key":
            return self._check_str(key, value, allow_none=True)
        return value

    def register_extractor(self, name: str, extractor: Extractor) -> None:
        """Add (or replace) the extractor ``name``: ``fn(data, config)`` returning None
        or ``(result, format, metadata)``."""
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"extractor name must be a non-empty str, got {name!r}")
        if not is_plain_callable(extractor):
            raise ConfigurationError(f"extractor {name!r} must be callable, got {extractor!r}")
        self._extractors[name] = extractor

    def extractor_names(self) -> list[str]:
        """The extractors in the order they are tried under the current config."""
        return [name for name, _fn in self._ordered()]

    def _ordered(self) -> list[tuple[str, Extractor]]:
        items = list(self._extractors.items())
        priority = list(self._config.get("extractor_priority") or ())
        if priority:
            rank = {name: index for index, name in enumerate(priority)}
            return sorted(items, key=lambda item: rank.get(item[0], len(rank)))

        def default_rank(item: tuple[str, Extractor]) -> int:
            if item[0] in SPECIALIZED:
                return SPECIALIZED.index(item[0])
            if item[0] in GENERIC:
                return 50 + GENERIC.index(item[0])
            return 150

        return sorted(items, key=default_rank)

    def extract(self, data: Any) -> dict[str, Any]:
        """The output keys for ``data`` (what the ``output`` event carries)."""
        config = self._config
        strategy = config.get("strategy", "auto")
        results: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        for name, extractor in self._ordered():
            try:
                found = extractor(data, config)
                if found is None:
                    continue
                result, fmt, metadata = found
                metadata = dict(metadata or {})
                metadata.update(extractor=name, strategy=strategy)
                entry = {
                    "extracted_result": result,
                    "format": fmt,
                    "metadata": metadata,
                    "confidence": confidence_of(result, fmt, metadata),
                    "extraction_path": [name],
                }
            except Exception as exc:
                message = f"Extractor '{name}' failed: {exc}"
                errors.append({"extractor": name, "error": message})
                if config.get("log_errors", True):
                    logger.warning(message)
                if not config.get("continue_on_error", True):
                    break
                continue
            if strategy in FIRST_RESULT_STRATEGIES:
                return entry
            results.append(entry)
        if results:
            if strategy == "all":
                return {
                    "extracted_result": [r["extracted_result"] for r in results],
                    "format": "multi",
                    "metadata": {"extractions": results, "count": len(results), "errors": errors},
                    "confidence": max(r["confidence"] for r in results),
                    "extraction_path": [r["extraction_path"][0] for r in results],
                }
            return max(results, key=lambda r: r["confidence"])
        if not config.get("return_original_on_failure", True):
            raise ValueError(f"All extractors failed. Errors: {errors}")
        return {
            "extracted_result": data,
            "format": type(data).__name__.lower(),
            "metadata": {
                "extraction_method": "none",
                "errors": errors,
                "original_type": type(data).__name__,
            },
            "confidence": 0.0,
            "extraction_path": [],
        }

    def _on_input(self, /, **message: Any) -> None:
        data = self._input_value(message)
        if isinstance(data, dict) and not data:
            data = ""  # an empty message (or data={}) is an empty text, as in 0.10
        self.emit("output", **self.extract(data))
