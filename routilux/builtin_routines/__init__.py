"""The built-in routines: ready-made routines for common workflow steps.

The eight routines of routilux 0.10 (TextClipper, TextRenderer, ResultExtractor,
DataFlattener, DataTransformer, DataValidator, ConditionalRouter, TimeProvider) behave
as in 0.10: the same attributes (``input_slot``, ``output_event``...), config keys and
defaults, input rule and outputs. Every built-in takes no required constructor
arguments; settings are config keys, given to ``set_config(...)`` or as constructor
keywords (``TextClipper(max_length=80)``). As in 0.10, ``set_config`` stores any key
(``strict_config=True`` refuses unknown ones); a bad value of a known key raises
:class:`routilux.exceptions.ConfigurationError`. All of them pickle with cloudpickle
(configured callables included) and work standalone, in thread routines and in
process routines.
"""

from routilux.builtin_routines._base import BuiltinRoutine
from routilux.builtin_routines.control_flow import ConditionalRouter
from routilux.builtin_routines.data_processing import DataFlattener, DataTransformer, DataValidator
from routilux.builtin_routines.stream import (
    Aggregator,
    Batcher,
    Debouncer,
    Filter,
    Mapper,
    Splitter,
)
from routilux.builtin_routines.text_processing import (
    ResultExtractor,
    TextClipper,
    TextRenderer,
)
from routilux.builtin_routines.utils import TimeProvider
from routilux.expressions.evaluator import (
    ExpressionEvaluationError,
    SafeExpression,
    UnsafeExpressionError,
    compile_expression,
    safe_eval,
)

__all__ = [
    "Aggregator",
    "Batcher",
    "BuiltinRoutine",
    "ConditionalRouter",
    "DataFlattener",
    "DataTransformer",
    "DataValidator",
    "Debouncer",
    "ExpressionEvaluationError",
    "Filter",
    "Mapper",
    "ResultExtractor",
    "SafeExpression",
    "Splitter",
    "TextClipper",
    "TextRenderer",
    "TimeProvider",
    "UnsafeExpressionError",
    "compile_expression",
    "safe_eval",
]
