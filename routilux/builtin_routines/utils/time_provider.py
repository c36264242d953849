"""TimeProvider: the current time, in several formats, on request."""

from __future__ import annotations

import numbers
import time
from datetime import datetime, timezone, tzinfo
from typing import Any

from routilux.builtin_routines._base import BuiltinRoutine, type_name
from routilux.exceptions import ConfigurationError

FORMATS = ("iso", "timestamp", "formatted", "custom")


class TimeProvider(BuiltinRoutine):
    """Emits the current time whenever its ``request`` slot receives a message.

    ``format`` chooses ``time_string``: ``"iso"`` (ISO 8601 with offset),
    ``"timestamp"`` (seconds since the epoch, as text), ``"formatted"``
    (``formatted_format``) or ``"custom"`` (``custom_format``, a ``strftime``
    pattern, required). A request may carry ``format`` (and ``custom_format``) to
    override the configuration for that request.

    Config: ``format`` (default ``"iso"``), ``custom_format`` (None),
    ``formatted_format`` (default ``"%Y-%m-%d %H:%M:%S"``), ``timezone``
    (``"local"`` (default), ``"utc"``, an IANA name such as ``"Europe/Paris"``, or a
    ``tzinfo``), ``clock`` (a callable returning epoch seconds; None: ``time.time``;
    inject a fixed clock in tests).

    Slot ``request``: any message.
    Event ``output(time_string, timestamp, datetime, formatted)``: ``timestamp`` is a
    float, ``datetime`` a timezone-aware :class:`datetime.datetime`, ``formatted`` the
    time in ``formatted_format``.
    """

    CONFIG_DEFAULTS = {
        "format": "iso",
        "custom_format": None,
        "formatted_format": "%Y-%m-%d %H:%M:%S",
        "timezone": "local",
        "clock": None,
    }

    def _setup(self) -> None:
        self.define_slot("request", handler=self._on_request)
        self.define_event("output", ["time_string", "timestamp", "datetime", "formatted"])

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "format":
            return self._check_choice(key, value, FORMATS)
        if key == "custom_format":
            return self._check_str(key, value, allow_none=True)
        if key == "formatted_format":
            return self._check_str(key, value)
        if key == "timezone":
            _tz(value)  # raises for an unknown zone
            return value
        if key == "clock":
            return self._check_callable(key, value)
        return value

    def now(self, format: str | None = None, custom_format: str | None = None) -> dict[str, Any]:
        """The output keys for the current time (``format`` overrides the config)."""
        fmt = self._config["format"] if format is None else format
        if fmt not in FORMATS:
            raise ValueError(f"TimeProvider: format must be one of {list(FORMATS)}, got {fmt!r}")
        custom = custom_format if custom_format is not None else self._config["custom_format"]
        if fmt == "custom" and not isinstance(custom, str):
            raise ConfigurationError(
                "TimeProvider: format 'custom' needs custom_format (a strftime pattern), "
                f"got {custom!r}"
            )
        clock = self._config["clock"] or time.time
        stamp = clock()
        if isinstance(stamp, bool) or not isinstance(stamp, numbers.Real):
            raise TypeError(
                f"TimeProvider: clock must return epoch seconds (a number), got {type_name(stamp)}"
            )
        zone = _tz(self._config["timezone"])
        if zone is None:  # local time, with the offset in force at that moment
            moment = datetime.fromtimestamp(float(stamp)).astimezone()
        else:
            moment = datetime.fromtimestamp(float(stamp), tz=zone)
        formatted = moment.strftime(self._config["formatted_format"])
        if fmt == "iso":
            text = moment.isoformat()
        elif fmt == "timestamp":
            text = repr(float(stamp))
        elif fmt == "formatted":
            text = formatted
        else:
            text = moment.strftime(custom)
        return {
            "time_string": text,
            "timestamp": float(stamp),
            "datetime": moment,
            "formatted": formatted,
        }

    def _on_request(self, /, **message: Any) -> None:
        self.emit("output", **self.now(message.get("format"), message.get("custom_format")))


def _tz(value: Any) -> tzinfo | None:
    """The zone for a ``timezone`` setting; None means local time."""
    if isinstance(value, tzinfo):
        return value
    if value == "utc" or value == "UTC":
        return timezone.utc
    if value == "local":
        return None
    if isinstance(value, str) and value:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(f"TimeProvider: unknown timezone {value!r}") from exc
    raise ConfigurationError(
        f"TimeProvider: timezone must be 'local', 'utc', an IANA zone name or a tzinfo, "
        f"got {value!r}"
    )
