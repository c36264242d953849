"""The JSON Schema of flow files (``routilux schema`` prints it).

Editors that know JSON Schema complete and check flow files with it (for YAML, e.g.
a ``# yaml-language-server: $schema=...`` comment). routilux checks files against
the same document (:mod:`routilux.flowfile.schema_check`) before anything else.
"""

from __future__ import annotations

import copy
import json
from typing import Any

SCHEMA_ID = "https://routilux.readthedocs.io/en/latest/_static/flowfile.schema.json"
FORMAT_VERSION = 1

_MODULE = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
# ``package.module:ClassName`` (a dotted qualname is allowed) or a built-in's short name.
CLASS_PATTERN = rf"^({_MODULE}:{_MODULE}|[A-Za-z_][A-Za-z0-9_]*)$"
ENDPOINT_PATTERN = r"^.+\.[^.]+$"  # "routine.name": split at the last dot

_NUMBER_OR_NULL = ["number", "null"]


def _endpoint(name: str) -> dict[str, Any]:
    return {
        "description": f"'routine.{name}' or an object naming the routine and the {name}.",
        "anyOf": [
            {
                "type": "string",
                "pattern": ENDPOINT_PATTERN,
                "description": f"'routine.{name}': a routine id, a dot and the {name}'s name",
            },
            {
                "type": "object",
                "properties": {
                    "routine": {"type": "string", "minLength": 1},
                    name: {"type": "string", "minLength": 1},
                },
                "required": ["routine", name],
                "additionalProperties": False,
            },
        ],
    }


_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "routilux flow file",
    "description": "A flow of routines: what runs, how it is wired, and how it runs.",
    "type": "object",
    "properties": {
        "$schema": {"type": "string", "description": "Where editors find this schema."},
        "version": {"const": FORMAT_VERSION, "description": "The flow file format version."},
        "flow_id": {
            "type": "string",
            "minLength": 1,
            "description": "The flow's id; give one to make its jobs resumable.",
        },
        "description": {"type": "string"},
        "execution_strategy": {"enum": ["sequential", "concurrent"]},
        "max_workers": {"type": "integer", "minimum": 1},
        "execution_timeout": {"type": _NUMBER_OR_NULL, "exclusiveMinimum": 0},
        "max_queued_per_routine": {"type": "integer", "minimum": 1},
        "record_history": {"type": "boolean"},
        "keep_finished_jobs": {"type": "integer", "minimum": 0},
        "restart": {"$ref": "#/$defs/restart"},
        "error_handler": {"$ref": "#/$defs/error_handler"},
        "checkpoint": {
            "type": "object",
            "description": "Where checkpoints go; a relative store path is relative to "
            "the flow file's directory.",
            "properties": {
                "store": {"type": "string", "minLength": 1},
                "interval": {"type": "number", "exclusiveMinimum": 0},
            },
            "additionalProperties": False,
        },
        "entry": {
            **_endpoint("slot"),
            "description": "The routine and slot a job starts at ('routine.slot').",
        },
        "routines": {
            "type": "object",
            "description": "Routine id -> routine.",
            "minProperties": 1,
            "propertyNames": {"minLength": 1},
            "additionalProperties": {"$ref": "#/$defs/routine"},
        },
        "connections": {"type": "array", "items": {"$ref": "#/$defs/connection"}},
    },
    "required": ["routines"],
    "additionalProperties": False,
    "$defs": {
        "class": {
            "type": "string",
            "pattern": CLASS_PATTERN,
            "description": "'package.module:ClassName' (its module must be allowed) or "
            "the name of a built-in routine such as 'Mapper'.",
        },
        "routine": {
            "type": "object",
            "properties": {
                "class": {"$ref": "#/$defs/class"},
                "config": {
                    "type": "object",
                    "description": "Config keys and values, given to set_config().",
                },
                "execution": {"enum": ["thread", "process", "ray"]},
                "workers": {"type": "integer", "minimum": 1},
                "restart": {"$ref": "#/$defs/restart"},
                "timeout": {
                    "type": _NUMBER_OR_NULL,
                    "exclusiveMinimum": 0,
                    "description": "Seconds one step may take (process routines).",
                },
                "ray_options": {
                    "type": "object",
                    "description": "Ray placement options (execution: ray): num_cpus, "
                    "num_gpus, memory, resources, scheduling_strategy, runtime_env.",
                },
                "error_handler": {"$ref": "#/$defs/error_handler"},
                "description": {"type": "string"},
            },
            "required": ["class"],
            "additionalProperties": False,
        },
        "connection": {
            "type": "object",
            "properties": {
                "from": _endpoint("event"),
                "to": _endpoint("slot"),
                "param_mapping": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Renames keys: {source_key: target_key}.",
                },
            },
            "required": ["from", "to"],
            "additionalProperties": False,
        },
        "restart": {
            "type": "object",
            "description": "RestartPolicy of crashed routine actors.",
            "properties": {
                "max_restarts": {"type": "integer", "minimum": 0},
                "within": {"type": "number", "exclusiveMinimum": 0},
                "backoff": {"type": "number", "minimum": 0},
                "backoff_max": {"type": "number", "minimum": 0},
                "warm_spare": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
        "error_handler": {
            "type": "object",
            "properties": {
                "strategy": {"enum": ["stop", "continue", "retry", "skip"]},
                "max_retries": {"type": "integer", "minimum": 0},
                "retry_delay": {"type": "number", "minimum": 0},
                "retry_backoff": {"type": "number", "exclusiveMinimum": 0},
                "is_critical": {"type": "boolean"},
                "retryable_exceptions": {
                    "type": "array",
                    "description": "Built-in exception names (e.g. 'ConnectionError') or "
                    "'package.module:ClassName' of an allowed module.",
                    "items": {"$ref": "#/$defs/class"},
                },
            },
            "additionalProperties": False,
        },
    },
}


def flow_file_schema() -> dict[str, Any]:
    """The JSON Schema of flow files (a copy: change it freely)."""
    return copy.deepcopy(_SCHEMA)


def schema_text() -> str:
    """The schema as indented JSON text, as ``routilux schema`` prints it."""
    return json.dumps(_SCHEMA, indent=2) + "\n"
