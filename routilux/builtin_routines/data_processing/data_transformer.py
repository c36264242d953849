"""DataTransformer: apply named (or custom) transformations to data."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from routilux.builtin_routines._base import BuiltinRoutine, type_name
from routilux.exceptions import ConfigurationError

_CONTAINERS = (Mapping, list, tuple)
MAX_NESTING = 500


def _leafwise(
    fn: Callable[[Any], Any], value: Any, errors: list[str], name: str, path: str = ""
) -> Any:
    """Apply ``fn`` to every leaf of dicts/lists; a failing leaf is kept and reported."""
    if path.count("/") > MAX_NESTING:
        raise ValueError(f"{name}: data nested more than {MAX_NESTING} levels")
    if isinstance(value, Mapping):
        return {k: _leafwise(fn, v, errors, name, f"{path}/{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_leafwise(fn, v, errors, name, f"{path}/{i}") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    try:
        return fn(value)
    except (TypeError, ValueError, OverflowError) as exc:
        where = f" at {path}" if path else ""
        errors.append(f"{name}{where}: {exc}")
        return value


def _str_op(method: str) -> Callable[[Any], Any]:
    def op(value: Any) -> Any:
        return getattr(value, method)() if isinstance(value, str) else value

    op.__name__ = method
    return op


def _to_string(value: Any) -> Any:
    return value if value is None else str(value)


def _to_int(value: Any) -> Any:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value!r} is not a whole number (to_int does not round)")
        return int(value)
    if isinstance(value, (str, bytes)):
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError(f"cannot convert {value!r} to int") from None
    raise TypeError(f"cannot convert {type_name(value)} to int")


def _to_float(value: Any) -> Any:
    if value is None or isinstance(value, float):
        return value
    if isinstance(value, (int, str, bytes)):
        try:
            return float(value.strip() if isinstance(value, (str, bytes)) else value)
        except ValueError:
            raise ValueError(f"cannot convert {value!r} to float") from None
    raise TypeError(f"cannot convert {type_name(value)} to float")


def _remove_none(value: Any, depth: int = 0) -> Any:
    if depth > MAX_NESTING:
        raise ValueError(f"remove_none: data nested more than {MAX_NESTING} levels")
    if isinstance(value, Mapping):
        return {k: _remove_none(v, depth + 1) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        items = [_remove_none(v, depth + 1) for v in value if v is not None]
        return items if isinstance(value, list) else tuple(items)
    return value


_LEAF_TRANSFORMATIONS: dict[str, Callable[[Any], Any]] = {
    "lowercase": _str_op("lower"),
    "uppercase": _str_op("upper"),
    "strip_whitespace": _str_op("strip"),
    "to_string": _to_string,
    "to_int": _to_int,
    "to_float": _to_float,
}
BUILTIN_TRANSFORMATIONS = (*_LEAF_TRANSFORMATIONS, "remove_none")


def _step_name(item: Any) -> str:
    return item if isinstance(item, str) else getattr(item, "__name__", repr(item))


class DataTransformer(BuiltinRoutine):
    """Applies a list of transformations, in order, to the data of each message.

    Built-in names: ``lowercase``, ``uppercase``, ``strip_whitespace`` (str values;
    other values unchanged), ``to_string``, ``to_int``, ``to_float`` (every value;
    ``None`` stays ``None``; ``to_int`` refuses a float with a fraction rather than
    rounding), all applied to each leaf of nested dicts/lists; ``remove_none`` drops
    ``None`` values from dicts and lists (recursively). ``register_transformation(name,
    fn)`` adds ``fn(value) -> value`` (register before naming it in config). A
    ``transformations`` entry may also be a callable.

    A value that a transformation cannot handle is left as it was and the problem is
    reported in ``errors`` (nothing is silently dropped). With ``fields``, the
    transformations apply only to those fields of a dict (a missing field is an
    error in ``errors``). Callables must not modify their argument in place.

    Config: ``transformations`` (list of names/callables, default ``[]``), ``fields``
    (list of field names or None: the whole value), ``input_key`` (default
    ``"data"``; None: the whole message).

    Slot ``input``: a message with a ``data`` value.
    Event ``output(transformed_data, transformation_applied, errors)``:
    ``transformation_applied`` lists the names applied, ``errors`` is a list of str.
    """

    CONFIG_DEFAULTS = {"transformations": [], "fields": None, "input_key": "data"}

    def __init__(self, **config: Any) -> None:
        self._custom: dict[str, Callable[[Any], Any]] = {}
        super().__init__(**config)

    def _setup(self) -> None:
        self.define_slot("input", handler=self._on_input)
        self.define_event("output", ["transformed_data", "transformation_applied", "errors"])

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "transformations":
            if isinstance(value, str) or callable(value):
                value = [value]
            if not isinstance(value, (list, tuple)):
                raise self._bad_config(key, "a list of names or callables", value)
            for item in value:
                if callable(item):
                    continue
                if not isinstance(item, str):
                    raise self._bad_config(key, "a list of names or callables", item)
                if item not in BUILTIN_TRANSFORMATIONS and item not in self._custom:
                    raise ConfigurationError(
                        f"DataTransformer: config 'transformations' names an unknown "
                        f"transformation {item!r}; known: "
                        f"{self.transformation_names()} (register custom ones first)"
                    )
            return list(value)
        if key == "fields":
            if value is None:
                return None
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, (list, tuple)) or not all(isinstance(f, str) for f in value):
                raise self._bad_config(key, "a list of field names or None", value)
            return list(value)
        if key == "input_key":
            return self._check_str(key, value, allow_none=True)
        return value

    def register_transformation(self, name: str, fn: Callable[[Any], Any]) -> None:
        """Add a named transformation ``fn(value) -> new value``."""
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"transformation name must be a non-empty str, got {name!r}")
        if name in BUILTIN_TRANSFORMATIONS:
            raise ConfigurationError(f"{name!r} is a built-in transformation")
        if not callable(fn):
            raise ConfigurationError(f"transformation {name!r} must be callable")
        self._custom[name] = fn

    def transformation_names(self) -> list[str]:
        """Every known transformation name."""
        return [*BUILTIN_TRANSFORMATIONS, *self._custom]

    def _apply_one(self, item: Any, value: Any, errors: list[str]) -> tuple[Any, str]:
        if isinstance(item, str):
            if item in _LEAF_TRANSFORMATIONS:
                return _leafwise(_LEAF_TRANSFORMATIONS[item], value, errors, item), item
            if item == "remove_none":
                return _remove_none(value), item
            fn = self._custom.get(item)
            if fn is None:
                raise ConfigurationError(f"DataTransformer: unknown transformation {item!r}")
            name = item
        else:
            fn, name = item, _step_name(item)
        try:
            return fn(value), name
        except Exception as exc:  # a custom step failing is reported, the value kept
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            return value, name

    def transform(self, value: Any) -> tuple[Any, list[str], list[str]]:
        """``(transformed_data, transformation_applied, errors)`` for ``value``."""
        steps = self._config["transformations"]
        fields = self._config["fields"]
        errors: list[str] = []
        applied: list[str] = []
        if fields is None:
            for item in steps:
                value, name = self._apply_one(item, value, errors)
                applied.append(name)
            return value, applied, errors
        if not isinstance(value, Mapping):
            raise TypeError(
                f"DataTransformer: fields={fields} needs dict data, got {type_name(value)}"
            )
        result = dict(value)
        for field in fields:
            if field not in result:
                errors.append(f"field {field!r} not found")
        for item in steps:
            for field in fields:
                if field in result:
                    field_errors: list[str] = []
                    result[field], _name = self._apply_one(item, result[field], field_errors)
                    errors.extend(f"{field}: {e}" for e in field_errors)
            applied.append(_step_name(item))
        return result, applied, errors

    def _on_input(self, /, **message: Any) -> None:
        value = self._input_value(message)
        transformed, applied, errors = self.transform(value)
        if errors:
            self._count("errors", len(errors))
        self.emit(
            "output",
            transformed_data=transformed,
            transformation_applied=applied,
            errors=errors,
        )
