"""Utility routines: the current time, flattening nested data."""

from routilux.builtin_routines.utils.data_flattener import DataFlattener
from routilux.builtin_routines.utils.time_provider import TimeProvider

__all__ = ["DataFlattener", "TimeProvider"]
