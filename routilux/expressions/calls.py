"""What the safe expression language may call: functions, type names and methods.

The tables here are the whole list. A function is called only by its name in call
position; a type name means a type only as an ``isinstance`` argument or as a
conversion call; a method is called through the builtin type's own implementation
found on ``type(receiver).__mro__`` (``dict.get(receiver, ...)``), so an object
from the data cannot run its own code by overriding a method name, and objects of
other classes have no callable methods at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routilux._validate import a_type

# name -> (function, keyword names it accepts; None: any keyword)
SAFE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "abs": abs,
    "min": min,
    "max": max,
    "any": any,
    "all": all,
    "dict": dict,
    "list": list,
    "tuple": tuple,
    "set": set,
    "frozenset": frozenset,
}
FUNCTION_KEYWORDS: dict[str, frozenset[str] | None] = {
    "int": frozenset({"base"}),
    "str": frozenset({"encoding", "errors"}),
    # ``key=`` is refused: it would call a value of the expression
    "min": frozenset({"default"}),
    "max": frozenset({"default"}),
    "dict": None,
}

# Names usable as the type argument of ``isinstance``.
TYPE_NAMES: dict[str, type] = {
    "dict": dict,
    "list": list,
    "tuple": tuple,
    "set": set,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "bytes": bytes,
    "frozenset": frozenset,
}

# Functions with their own argument rules (checked when compiling).
SPECIAL_FUNCTIONS = ("isinstance", "hasattr", "getattr")

# Names that always mean the function or type, never a value from the data.
RESERVED_CALLABLE_NAMES = (
    frozenset(SAFE_FUNCTIONS) | frozenset(TYPE_NAMES) | frozenset(SPECIAL_FUNCTIONS)
)

_STR_METHODS = frozenset(
    """startswith endswith lower upper strip lstrip rstrip split rsplit splitlines find
    rfind count isdigit isalpha isalnum isspace islower isupper isnumeric isdecimal title
    capitalize casefold partition rpartition removeprefix removesuffix join""".split()
)
# receiver type -> the methods callable on it (checked on the type's MRO at run time)
METHODS: dict[type, frozenset[str]] = {
    dict: frozenset({"get", "keys", "values", "items"}),
    str: _STR_METHODS,
    bytes: frozenset({"startswith", "endswith", "decode", "find", "count"}),
    list: frozenset({"index", "count"}),
    tuple: frozenset({"index", "count"}),
    set: frozenset({"issubset", "issuperset", "isdisjoint"}),
    frozenset: frozenset({"issubset", "issuperset", "isdisjoint"}),
    int: frozenset({"bit_length"}),
    float: frozenset({"is_integer"}),
}
ALL_METHOD_NAMES = frozenset().union(*METHODS.values())

# Named in refusals so that the message says why, not only "not allowed".
MUTATORS = frozenset(
    "append pop popitem update setdefault clear sort reverse remove insert extend add "
    "discard".split()
)
UNBOUNDED_METHODS = frozenset("replace center ljust rjust zfill expandtabs".split())

# dict views become lists: a view would keep the dict alive and behave differently
_LIST_RESULTS = frozenset({"keys", "values", "items"})


def method_implementation(receiver: Any, name: str) -> Callable[..., Any] | None:
    """The builtin implementation of ``name`` for ``receiver``, or None."""
    for klass in type(receiver).__mro__:
        allowed = METHODS.get(klass)
        if allowed is not None and name in allowed:
            return getattr(klass, name)
    return None


def call_method(
    receiver: Any, name: str, args: list[Any], kwargs: dict[str, Any], max_items: int
) -> Any:
    """Call an allowed method; raises ``TypeError``/``ValueError`` when it is not."""
    implementation = method_implementation(receiver, name)
    if implementation is None:
        raise TypeError(f"method {name!r} cannot be called on {a_type(receiver)}")
    if name == "join":
        # the separator is repeated once per item: bound what the expression controls
        parts = list(args[0]) if len(args) == 1 and not kwargs else None
        if parts is None:
            raise TypeError("join takes exactly one positional argument")
        if len(receiver) * max(len(parts) - 1, 0) > max_items:
            raise ValueError(f"join would repeat its separator beyond {max_items} characters")
        args = [parts]
    result = implementation(receiver, *args, **kwargs)
    if name in _LIST_RESULTS and isinstance(receiver, dict):
        return list(result)
    return result
