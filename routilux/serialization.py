"""JSON forms of callables and configuration values (the 0.10 ``serialize()`` protocol).

Callables are written in one of three forms:

* a module-level function: ``{"_type": "callable", "callable_type": "function",
  "module", "name"}``, restored by importing the module (only a plain function
  with that name is accepted);
* a method of the routine being serialized: ``{"_type": "callable",
  "callable_type": "method", "class_name", "method_name", "object_id"}``, restored
  by binding the method of the routine being filled;
* a lambda (or a nested ``def`` returning one expression): ``{"_type":
  "lambda_expression", "expression", "params"}``. It is restored **only** through
  the safe expression interpreter of the built-in routines, never with ``eval``;
  closure variables are lost.

Data holding function references imports modules when loaded: load it only from a
trusted source, like the class paths ``Flow.deserialize`` imports.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import linecache
import logging
import types
from collections.abc import Callable
from datetime import datetime
from typing import Any

from routilux._imports import import_qualified
from routilux.exceptions import ConfigurationError
from routilux.expressions import compile_expression

logger = logging.getLogger("routilux.serialization")

CALLABLE = "callable"
LAMBDA = "lambda_expression"
# Names a restored expression may use besides its parameters (the interpreter's).
_EXPRESSION_NAMES = frozenset(
    "len str int float bool abs min max any all dict list tuple set isinstance "
    "hasattr getattr bytes frozenset True False None".split()
)
_LEGACY_ALIASES = ("x", "item", "value", "obj")
_warned_closures: set[tuple[str, int]] = set()


class Unencodable(ValueError):
    """A value has no JSON form; ``path`` says where it is."""

    def __init__(self, path: str, value: Any) -> None:
        super().__init__(
            f"{path}: {type(value).__name__} {_short(value)} cannot be serialized "
            "(use a module-level function, a method of the routine, or a lambda whose "
            "body the condition language accepts)"
        )
        self.path = path


class dual_method:
    """A method that works on the class and on an instance.

    ``Cls.name(data)`` calls ``for_class(Cls, data)`` (builds a new object);
    ``obj.name(data)`` calls ``for_instance(obj, data)`` (fills ``obj``). This is
    how ``Flow.deserialize`` and ``JobState.deserialize`` serve both the 0.10
    pattern (``Flow().deserialize(d)``) and ours (``Flow.deserialize(d)``).
    """

    def __init__(self, for_class: Callable[..., Any]) -> None:
        self.for_class = for_class
        self.for_instance: Callable[..., Any] | None = None
        self.__doc__ = for_class.__doc__

    def instance(self, for_instance: Callable[..., Any]) -> dual_method:
        """Decorator: the implementation used when called on an instance."""
        self.for_instance = for_instance
        return self

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None or self.for_instance is None:
            return types.MethodType(self.for_class, objtype if obj is None else type(obj))
        return types.MethodType(self.for_instance, obj)


# ---------------------------------------------------------------------- values
def jsonable(value: Any) -> Any:
    """``value`` made JSON-compatible: containers converted, datetimes as ISO
    strings, anything else by repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


def encode_value(value: Any, owner: Any = None, path: str = "value") -> Any:
    """``value`` as JSON data: containers converted, callables encoded; raises
    :class:`Unencodable` for anything else."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {_key(k, path): encode_value(v, owner, f"{path}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_value(v, owner, f"{path}[{i}]") for i, v in enumerate(value)]
    if is_plain_callable(value):
        encoded = encode_callable(value, owner, expressions=True)
        if encoded is not None:
            return encoded
    raise Unencodable(path, value)


def decode_value(value: Any, owner: Any = None) -> Any:
    """Undo :func:`encode_value` (callable forms restored, containers copied)."""
    if isinstance(value, dict):
        if value.get("_type") in (CALLABLE, LAMBDA):
            return decode_callable(value, owner)
        return {k: decode_value(v, owner) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v, owner) for v in value]
    return value


def _key(key: Any, path: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (bool, int, float)) or key is None:
        return str(key)  # as json.dumps would write it
    raise Unencodable(f"{path} key", key)


# ---------------------------------------------------------------------- callables
def is_plain_callable(value: Any) -> bool:
    """``callable(value)``, except classes and routines (a routine is callable only
    for 0.10's deprecated ``routine(**kwargs)``; it is never a function value)."""
    return (
        callable(value)
        and not isinstance(value, type)
        and not getattr(type(value), "__routilux_routine__", False)
    )


def encode_callable(fn: Any, owner: Any = None, *, expressions: bool = False) -> dict | None:
    """The JSON form of ``fn``, or None if it has none.

    Methods are encoded only when bound to ``owner``; lambdas (and nested defs
    returning one expression) only with ``expressions=True``.
    """
    if isinstance(fn, ExpressionFunction):
        return fn.encode() if expressions else None
    if inspect.ismethod(fn):
        if owner is None or fn.__self__ is not owner:
            return None
        return {
            "_type": CALLABLE,
            "callable_type": "method",
            "class_name": type(owner).__name__,
            "method_name": fn.__func__.__name__,
            "object_id": getattr(owner, "_id", hex(id(owner))),
        }
    if not inspect.isfunction(fn):
        return None
    module = getattr(fn, "__module__", None)
    if fn.__name__ != "<lambda>" and "<locals>" not in fn.__qualname__ and module:
        try:
            found = getattr(importlib.import_module(module), fn.__qualname__, None)
        except ImportError:
            found = None
        if found is fn:
            return {
                "_type": CALLABLE,
                "callable_type": "function",
                "module": module,
                "name": fn.__qualname__,
            }
        if module != "__main__":
            return None
    if not expressions:
        return None
    source = expression_source(fn)
    if source is None:
        return None
    params, expression = source
    try:
        _compile(expression)
    except ConfigurationError:
        return None  # a body the interpreter refuses cannot use this form
    _warn_about_closure(fn, params, expression)
    return {"_type": LAMBDA, "expression": expression, "params": list(params)}


def decode_callable(data: dict[str, Any], owner: Any = None) -> Callable[..., Any]:
    """Restore a callable written by :func:`encode_callable`."""
    kind = data.get("_type")
    if kind == LAMBDA:
        params = data.get("params")
        expression = data.get("expression")
        if not isinstance(expression, str) or not expression.strip():
            raise ConfigurationError("lambda_expression: 'expression' must be a non-empty str")
        if params is not None:
            return ExpressionFunction(params, expression)
        # 0.10 wrote the body only, its parameter renamed to ``data`` where it was
        # x, item, value or obj (and kept otherwise): bind the argument to those.
        expression = expression.strip()
        if expression.startswith("return "):
            expression = expression[len("return ") :].strip()
        return ExpressionFunction(["data"], expression, aliases=_LEGACY_ALIASES)
    kind = data.get("callable_type")
    if kind == "method":
        name = data.get("method_name")
        bound = getattr(owner, name, None) if owner is not None and isinstance(name, str) else None
        if bound is None or not inspect.ismethod(bound):
            raise ConfigurationError(
                f"cannot restore method reference {data.get('class_name')}.{name}: the "
                f"object being filled ({type(owner).__name__}) has no such method"
            )
        return bound
    if kind == "function":
        return _import_function(str(data.get("module")), str(data.get("name")))
    raise ConfigurationError(f"not a serialized callable: {_short(data)}")


def _import_function(module: str, name: str) -> Callable[..., Any]:
    try:
        obj = import_qualified(module, name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot import function {module}.{name}: {exc}") from None
    if not inspect.isfunction(obj) or obj.__name__ != name.rsplit(".", 1)[-1]:
        raise ConfigurationError(
            f"{module}.{name} is not a plain function; only functions are restored "
            "from function references"
        )
    return obj


class ExpressionFunction:
    """A restored lambda: its body evaluated by the safe interpreter with the
    parameters bound to the call's arguments (never ``eval``)."""

    def __init__(
        self,
        params: list[str] | tuple[str, ...],
        expression: str,
        aliases: tuple[str, ...] = (),
    ) -> None:
        if not all(isinstance(p, str) and p.isidentifier() for p in params):
            raise ConfigurationError(f"lambda_expression: bad parameter names {params!r}")
        self.params = tuple(params)
        self.expression = expression
        self.aliases = tuple(aliases)  # other names for the first parameter (0.10 data)
        self._compiled = _compile(expression)
        self.__name__ = "<lambda>"
        self.__signature__ = inspect.Signature(
            [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in self.params]
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        names = dict(self.__signature__.bind(*args, **kwargs).arguments)
        if self.aliases and self.params:
            first = names.get(self.params[0])
            for alias in self.aliases:
                names.setdefault(alias, first)
        return self._compiled.evaluate(names)

    def encode(self) -> dict[str, Any]:
        """The ``lambda_expression`` form."""
        if self.aliases:  # restored from 0.10's form (no parameter list): keep it
            return {"_type": LAMBDA, "expression": self.expression}
        return {"_type": LAMBDA, "expression": self.expression, "params": list(self.params)}

    def __reduce__(self) -> tuple:
        return (ExpressionFunction, (self.params, self.expression, self.aliases))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExpressionFunction) and (self.params, self.expression) == (
            other.params,
            other.expression,
        )

    def __hash__(self) -> int:
        return hash((self.params, self.expression))

    def __repr__(self) -> str:
        return f"<lambda {', '.join(self.params)}: {self.expression}>"


def _compile(expression: str) -> Any:
    return compile_expression(expression)


# ---------------------------------------------------------------------- lambda source
def expression_source(fn: types.FunctionType) -> tuple[tuple[str, ...], str] | None:
    """``(parameter names, body source)`` of a lambda or a one-expression def,
    found with :mod:`ast` in the function's source file; None if not found."""
    code = fn.__code__
    if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS):
        return None
    params = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    lines = linecache.getlines(code.co_filename, fn.__globals__)
    if not lines:
        return None
    source = "".join(lines)
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    candidates = [
        (node, body)
        for node in ast.walk(tree)
        if (body := _one_expression(node, fn)) is not None and _arg_names(node.args) == params
    ]
    if len(candidates) > 1:
        candidates = [(node, body) for node, body in candidates if _spans_code(node, code)]
    if len(candidates) != 1:
        return None
    for _node, body in candidates:
        text = ast.get_source_segment(source, body)
        if text is None:
            text = ast.unparse(body)
        return params, " ".join(text.split()) if "\n" in text else text
    return None


def _one_expression(node: ast.AST, fn: types.FunctionType) -> ast.expr | None:
    code = fn.__code__
    if isinstance(node, ast.Lambda) and fn.__name__ == "<lambda>":
        return node.body if node.lineno == code.co_firstlineno else None
    if isinstance(node, ast.FunctionDef) and node.name == fn.__name__:
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        if first != code.co_firstlineno:
            return None
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # a docstring
        if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
            return body[0].value
    return None


def _arg_names(args: ast.arguments) -> tuple[str, ...]:
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    return tuple(names)


def _spans_code(node: ast.AST, code: types.CodeType) -> bool:
    """Whether ``code``'s instructions lie inside ``node``'s source span (tells
    apart several lambdas with the same parameters on one line)."""
    start = (node.lineno, node.col_offset)
    end = (node.end_lineno or node.lineno, node.end_col_offset or 0)
    for line, _, col, _ in code.co_positions():
        if line is not None and col is not None and line > 0 and start <= (line, col) <= end:
            if (line, col) != start:  # the function's own start says nothing
                return True
    return False


def _warn_about_closure(fn: types.FunctionType, params: tuple[str, ...], expression: str) -> None:
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    outside = sorted(names - set(params) - _EXPRESSION_NAMES)
    key = (fn.__code__.co_filename, fn.__code__.co_firstlineno)
    if outside and key not in _warned_closures:
        _warned_closures.add(key)
        logger.warning(
            "lambda %r uses %s, which serialization does not keep: after deserialize "
            "a call fails (a condition does not match)",
            expression,
            ", ".join(outside),
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
