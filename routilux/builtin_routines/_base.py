"""The common base of the built-in routines: declared config keys, input extraction."""

from __future__ import annotations

import copy
import logging
import numbers
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from routilux.exceptions import ConfigurationError
from routilux.routine import Routine

_MISSING = object()
logger = logging.getLogger(__name__)

#: ``input_key`` default of the 0.10 built-ins: find the input as routilux 0.10 did.
AUTO = "auto"


def is_plain_callable(value: Any) -> bool:
    """A function-like value; routines are callable (a deprecated 0.10 no-op) but are
    never taken for a condition, validator, transformation or extractor."""
    return callable(value) and not isinstance(value, Routine)


def extract_input_data(data: Any = None, **kwargs: Any) -> Any:
    """The routilux 0.10 input rule: ``data`` if not None, else the single keyword's
    value, else the dict of the keywords (``{}`` when there are none)."""
    if data is not None:
        return data
    if len(kwargs) == 1:
        return next(iter(kwargs.values()))
    return kwargs


class BuiltinRoutine(Routine):
    """Base class of the built-in routines.

    Every built-in declares its configuration keys and their defaults in
    ``CONFIG_DEFAULTS``. The defaults are copied into ``_config`` at construction, so
    ``config()`` and ``Flow.serialize()`` show every setting. As in routilux 0.10,
    ``set_config`` stores any key: users keep their own values there (a
    ConditionalRouter condition reads them through ``config``). ``strict_config=True``
    makes unknown keys a ``ConfigurationError`` instead (typos then fail). Values of
    the declared keys are checked through :meth:`_check_config`; keyword arguments of
    the constructor go through ``set_config`` too, so ``TextClipper(max_length=10)``
    equals ``TextClipper()`` followed by ``set_config(max_length=10)``.

    Input: with ``input_key="auto"`` (the default of the 0.10 built-ins) a message's
    input value is found as routilux 0.10 found it: the message keys in
    ``OVERRIDE_KEYS`` are taken out (they override config for that message), then
    the first of ``INPUT_KEYS`` (``data``) whose value is not None is the input; else
    a single remaining key gives its value, several give the dict of them, none gives
    ``{}``. Any other ``input_key`` reads exactly that key; None takes the whole
    message.

    Built-ins hold no locks, threads or open files: they pickle with cloudpickle and
    run the same in thread and process routines.
    """

    CONFIG_DEFAULTS: ClassVar[dict[str, Any]] = {}
    #: Message keys that override config for one message (0.10 handler parameters).
    OVERRIDE_KEYS: ClassVar[tuple[str, ...]] = ()
    #: Message keys tried first, in order, for the input value (``input_key="auto"``).
    INPUT_KEYS: ClassVar[tuple[str, ...]] = ("data",)

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self._config.update(copy.deepcopy(self.CONFIG_DEFAULTS))
        self._setup()
        if config:
            self.set_config(**config)

    def _setup(self) -> None:
        """Define slots and events (subclasses)."""

    # -- configuration ---------------------------------------------------------------
    def set_config(self, **kwargs: Any) -> None:
        """Set configuration values; a bad value of a declared key raises
        ConfigurationError. Unknown keys are stored (``strict_config=True``: refused)."""
        known = self.CONFIG_DEFAULTS
        unknown = sorted(k for k in kwargs if k not in known and k != "strict_config")
        if unknown:
            strict = kwargs.get("strict_config", self._config.get("strict_config", False))
            if strict:
                raise ConfigurationError(
                    f"{type(self).__name__} has no config key(s) {unknown}; known keys: "
                    f"{sorted(known)} (strict_config=True refuses other keys)"
                )
            logger.debug("%s: storing config key(s) it does not use: %s", self, unknown)
        checked = {
            key: self._check_config(key, value) if key in known else value
            for key, value in kwargs.items()
        }
        super().set_config(**checked)
        self._config_changed(set(checked))

    def _check_config(self, key: str, value: Any) -> Any:
        """Validate (and possibly normalise) one config value; subclasses override."""
        return value

    def _config_changed(self, keys: set[str]) -> None:
        """Hook called after ``set_config`` stored new values."""

    def _bad_config(self, key: str, expected: str, value: Any) -> ConfigurationError:
        return ConfigurationError(
            f"{type(self).__name__}: config {key!r} must be {expected}, got {value!r} "
            f"({type(value).__name__})"
        )

    def _check_int(
        self, key: str, value: Any, minimum: int = 0, allow_none: bool = False
    ) -> int | None:
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            expected = f"an int >= {minimum}" + (" or None" if allow_none else "")
            raise self._bad_config(key, expected, value)
        return int(value)

    def _check_number(
        self, key: str, value: Any, minimum: float = 0.0, allow_none: bool = False
    ) -> float | None:
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < minimum:
            expected = f"a number >= {minimum}" + (" or None" if allow_none else "")
            raise self._bad_config(key, expected, value)
        return float(value)

    def _check_bool(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self._bad_config(key, "True or False", value)
        return value

    def _check_choice(self, key: str, value: Any, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self._bad_config(key, f"one of {list(choices)}", value)
        return value

    def _check_str(
        self, key: str, value: Any, allow_none: bool = False, allow_empty: bool = False
    ) -> str | None:
        if value is None and allow_none:
            return None
        if not isinstance(value, str) or (not value and not allow_empty):
            expected = "a non-empty str" if not allow_empty else "a str"
            raise self._bad_config(key, expected + (" or None" if allow_none else ""), value)
        return value

    def _check_callable(
        self, key: str, value: Any, allow_none: bool = True
    ) -> Callable[..., Any] | None:
        if value is None and allow_none:
            return None
        if not is_plain_callable(value):
            raise self._bad_config(key, "a callable" + (" or None" if allow_none else ""), value)
        return value

    # -- reading messages ------------------------------------------------------------
    def _extract_input_data(self, data: Any = None, **kwargs: Any) -> Any:
        """The routilux 0.10 helper: ``data`` if not None, else the single keyword's
        value, else the dict of the keywords (``{}`` when there are none)."""
        return extract_input_data(data, **kwargs)

    def _split_message(self, message: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """``(input value, overrides)`` of a message: the overrides are the message's
        ``OVERRIDE_KEYS`` (taken out before the input is looked for)."""
        rest = dict(message)
        overrides = {key: rest.pop(key) for key in self.OVERRIDE_KEYS if key in rest}
        return self._input_value(rest), overrides

    def _input_value(self, message: Mapping[str, Any], key_config: str = "input_key") -> Any:
        """The part of a message this routine works on.

        ``input_key="auto"``: the 0.10 rule (see the class docstring);
        ``input_key=None``: the whole message (as a dict); otherwise the message must
        carry that key.
        """
        key = self._config.get(key_config)
        if key == AUTO:
            rest = dict(message)
            for name in self.INPUT_KEYS:
                value = rest.pop(name, None)
                if value is not None:
                    return value
            return extract_input_data(None, **rest)
        if key is None:
            return dict(message)
        value = message.get(key, _MISSING)
        if value is _MISSING:
            raise ValueError(
                f"{type(self).__name__} reads the {key!r} key of each message, but the "
                f"message has keys {sorted(message)}; set {key_config}=<key> to read "
                f"another key, or {key_config}=None to use the whole message"
            )
        return value

    def _count(self, stat: str, n: int = 1) -> None:
        self._stats[stat] = self._stats.get(stat, 0) + n


def type_name(value: Any) -> str:
    """The short type name used in error messages and ``original_type`` keys."""
    return type(value).__name__
