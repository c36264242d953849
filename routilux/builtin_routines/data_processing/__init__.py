"""Data routines: transform and validate structured data (DataFlattener too, whose
routilux 0.10 home is :mod:`routilux.builtin_routines.utils`)."""

from routilux.builtin_routines.data_processing.data_transformer import DataTransformer
from routilux.builtin_routines.data_processing.data_validator import DataValidator
from routilux.builtin_routines.utils.data_flattener import DataFlattener

__all__ = ["DataFlattener", "DataTransformer", "DataValidator"]
