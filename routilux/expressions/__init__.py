"""The safe expression language (conditions, mappings, restored lambdas).

A core service with no dependency on routines or flows: the built-in routines and
:mod:`routilux.serialization` both use it. See :mod:`routilux.expressions.evaluator`.
"""

from routilux.expressions.evaluator import SafeExpression, compile_expression

__all__ = ["SafeExpression", "compile_expression"]
