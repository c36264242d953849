"""DataTransformer: apply named (or custom) transformations to data, as routilux 0.10."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from routilux.builtin_routines._base import AUTO, BuiltinRoutine, is_plain_callable, type_name
from routilux.exceptions import ConfigurationError

MAX_NESTING = 500


def lowercase(value: Any) -> Any:
    """A string in lower case (other values unchanged)."""
    return value.lower() if isinstance(value, str) else value


def uppercase(value: Any) -> Any:
    """A string in upper case (other values unchanged)."""
    return value.upper() if isinstance(value, str) else value


def strip_whitespace(value: Any) -> Any:
    """A string without leading and trailing whitespace (other values unchanged)."""
    return value.strip() if isinstance(value, str) else value


def to_string(value: Any) -> str:
    """``str(value)``."""
    return str(value)


def to_int(value: Any) -> Any:
    """A number or numeric string as an int (other values unchanged)."""
    return int(value) if isinstance(value, (int, float, str)) else value


def to_float(value: Any) -> Any:
    """A number or numeric string as a float (other values unchanged)."""
    return float(value) if isinstance(value, (int, float, str)) else value


def remove_none(value: Any) -> Any:
    """A dict without its ``None`` values (other values unchanged)."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if v is not None}
    return value


#: The built-in transformations (each applied to the whole value).
BUILTIN_TRANSFORMATIONS: dict[str, Callable[[Any], Any]] = {
    "lowercase": lowercase,
    "uppercase": uppercase,
    "strip_whitespace": strip_whitespace,
    "to_string": to_string,
    "to_int": to_int,
    "to_float": to_float,
    "remove_none": remove_none,
}


def _leafwise(fn: Callable[[Any], Any], value: Any, depth: int = 0) -> Any:
    """Apply ``fn`` to every leaf of dicts/lists (the ``leafwise=True`` option)."""
    if depth > MAX_NESTING:
        raise ValueError(f"data nested more than {MAX_NESTING} levels")
    if isinstance(value, Mapping):
        return {k: _leafwise(fn, v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_leafwise(fn, v, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    return fn(value)


class DataTransformer(BuiltinRoutine):
    """Applies a list of transformations, in order, to the input value.

    Built-in names (each applied to the **whole value**, as in routilux 0.10):
    ``lowercase``, ``uppercase``, ``strip_whitespace`` (a str only; other values
    unchanged), ``to_string`` (``str(x)``), ``to_int``/``to_float`` (``int(x)`` /
    ``float(x)`` of an int, float or str: ``3.7`` gives 3; other types unchanged),
    ``remove_none`` (drops None values of a top-level dict). Names live in the config
    ``transformation_map``: ``register_transformation(name, fn)`` adds one (or
    replaces a built-in); ``set_config(transformation_map=...)`` replaces the map.

    The list is the message's ``transformations`` if non-empty, else the config's. A
    name in the map, or a callable, is applied and listed in
    ``transformation_applied`` (a callable by its ``__name__``); an unknown name, an
    item that is neither, or an item that raises adds an error (``Unknown
    transformation: x``, ``Invalid transformation: x``, ``Error applying x: ...``) and
    leaves the value as it was. A single name or callable counts as a list of one.

    Extensions (off by default): ``fields`` (a list of field names: apply to those
    fields of a dict only; a missing field is an error) and ``leafwise=True`` (apply
    to every leaf of nested dicts/lists instead of the whole value).

    Config: ``transformations`` (``[]``), ``transformation_map`` (the built-ins),
    ``chain_transformations`` (True; no effect, as in 0.10), ``fields`` (None),
    ``leafwise`` (False), ``input_key`` (``"auto"``: the 0.10 input rule).

    Slot ``input`` (``input_slot``).
    Event ``output(transformed_data, transformation_applied, errors)``
    (``output_event``); ``errors`` is a list of str, or None when there are none.
    """

    CONFIG_DEFAULTS = {
        "transformations": [],
        "transformation_map": dict(BUILTIN_TRANSFORMATIONS),
        "chain_transformations": True,
        "fields": None,
        "leafwise": False,
        "input_key": AUTO,
    }
    OVERRIDE_KEYS = ("transformations",)

    def _setup(self) -> None:
        self.input_slot = self.define_slot("input", handler=self._on_input)
        self.output_event = self.define_event(
            "output", ["transformed_data", "transformation_applied", "errors"]
        )

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "transformation_map" and not isinstance(value, Mapping):
            raise self._bad_config(key, "a dict of name -> callable", value)
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
        """Add (or replace) the named transformation ``fn(value) -> new value``."""
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"transformation name must be a non-empty str, got {name!r}")
        if not is_plain_callable(fn):
            raise ConfigurationError(f"transformation {name!r} must be callable, got {fn!r}")
        self.set_config(transformation_map={**self._config.get("transformation_map", {}), name: fn})

    def transformation_names(self) -> list[str]:
        """Every name in ``transformation_map``."""
        return list(self._config.get("transformation_map", {}))

    def _apply(self, fn: Callable[[Any], Any], value: Any) -> Any:
        if self._config.get("leafwise"):
            return _leafwise(fn, value)
        return fn(value)

    def _apply_all(
        self, steps: Any, value: Any, errors: list[str], applied: list[str] | None
    ) -> Any:
        mapping = self._config.get("transformation_map") or {}
        for item in steps:
            try:
                if isinstance(item, str):
                    if item not in mapping:
                        errors.append(f"Unknown transformation: {item}")
                        continue
                    value = self._apply(mapping[item], value)
                    name = item
                elif is_plain_callable(item):
                    value = self._apply(item, value)
                    name = getattr(item, "__name__", "custom")
                else:
                    errors.append(f"Invalid transformation: {item}")
                    continue
            except Exception as exc:  # a failing step is reported, the value kept
                errors.append(f"Error applying {item}: {exc}")
                continue
            if applied is not None:
                applied.append(name)
        return value

    def transform(
        self, value: Any, transformations: Any = None
    ) -> tuple[Any, list[str], list[str]]:
        """``(transformed_data, transformation_applied, errors)`` for ``value``."""
        steps = transformations or self._config.get("transformations") or []
        if isinstance(steps, str) or is_plain_callable(steps):
            steps = [steps]
        fields = self._config.get("fields")
        errors: list[str] = []
        applied: list[str] = []
        if fields is None:
            return self._apply_all(steps, value, errors, applied), applied, errors
        if not isinstance(value, Mapping):
            raise TypeError(
                f"DataTransformer: fields={fields} needs dict data, got {type_name(value)}"
            )
        result = dict(value)
        record: list[str] | None = applied  # names are listed once, from the first field
        for field in fields:
            if field not in result:
                errors.append(f"Field not found: {field}")
                continue
            field_errors: list[str] = []
            result[field] = self._apply_all(steps, result[field], field_errors, record)
            record = None
            errors.extend(f"{field}: {e}" for e in field_errors)
        return result, applied, errors

    def _on_input(self, /, **message: Any) -> None:
        value, overrides = self._split_message(message)
        transformed, applied, errors = self.transform(value, overrides.get("transformations"))
        if errors:
            self._count("errors", len(errors))
        self.emit(
            "output",
            transformed_data=transformed,
            transformation_applied=applied,
            errors=errors or None,
        )
