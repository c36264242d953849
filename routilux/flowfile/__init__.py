"""Flows as files: a declarative YAML/JSON format for flows, with a JSON Schema.

``Flow.from_file(path, allowed_modules=...)`` and ``flow.to_file(path)`` are the
usual entry points; ``routilux validate``, ``run``, ``graph`` and ``schema`` the
command-line ones. See the "Flow files" page of the documentation.
"""

from routilux.flowfile.dump import dump_file, flow_to_data, to_text
from routilux.flowfile.load import build, load_file
from routilux.flowfile.positions import format_of
from routilux.flowfile.problems import ERROR, WARNING, Problem
from routilux.flowfile.schema import FORMAT_VERSION, SCHEMA_ID, flow_file_schema, schema_text
from routilux.flowfile.validate import Checked, check_file, check_text

__all__ = [
    "ERROR",
    "FORMAT_VERSION",
    "SCHEMA_ID",
    "WARNING",
    "Checked",
    "Problem",
    "build",
    "check_file",
    "check_text",
    "dump_file",
    "flow_file_schema",
    "flow_to_data",
    "format_of",
    "load_file",
    "schema_text",
    "to_text",
]
