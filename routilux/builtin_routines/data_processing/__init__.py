"""Data routines: flatten, transform and validate structured data."""

from routilux.builtin_routines.data_processing.data_flattener import DataFlattener
from routilux.builtin_routines.data_processing.data_transformer import DataTransformer
from routilux.builtin_routines.data_processing.data_validator import DataValidator

__all__ = ["DataFlattener", "DataTransformer", "DataValidator"]
