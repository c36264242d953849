"""TimeProvider: the current time, in several formats, on request (routilux 0.10)."""

from __future__ import annotations

import numbers
import time
from collections.abc import Mapping
from datetime import datetime, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from routilux.builtin_routines._base import BuiltinRoutine, type_name
from routilux.exceptions import ConfigurationError

FORMATS = ("iso", "timestamp", "formatted", "custom")
_WEEKDAYS_ZH = "一二三四五六日"
_COMMA = "\uff0c"  # the full-width comma of the zh_CN format


class TimeProvider(BuiltinRoutine):
    """Emits the current time whenever its ``request`` slot receives a message.

    ``format`` chooses ``time_string`` (routilux 0.10's formats, from the naive local
    time by default): ``"iso"`` (``isoformat()``), ``"timestamp"`` (seconds since
    the epoch, as text), ``"formatted"`` (with ``locale="zh_CN"`` and
    ``include_weekday``: ``%Y年%m月%d日`` then the Chinese weekday and ``%H:%M:%S``,
    separated by full-width commas; another locale:
    ``"%A, %B %d, %Y %H:%M:%S"``; without weekday: ``"%Y-%m-%d %H:%M:%S"``) or
    ``"custom"`` (``custom_format``, a ``strftime`` pattern); any other value gives
    ``"iso"``. A request's ``format`` (in its ``data`` dict, or as a message key)
    overrides the config.

    Extensions: ``timezone`` (``"local"`` (default: naive local time), ``"utc"``,
    an IANA name such as ``"Europe/Paris"``, or a ``tzinfo``: aware times) and
    ``clock`` (a callable returning epoch seconds; None: ``time.time``; inject a fixed
    clock in tests).

    Config: ``format`` (``"iso"``), ``custom_format`` (``"%Y-%m-%d %H:%M:%S"``),
    ``include_weekday`` (True), ``locale`` (``"zh_CN"``), ``timezone``, ``clock``.

    Slot ``request`` (``trigger_slot``): any message.
    Event ``output(time_string, timestamp, datetime, formatted)`` (``output_event``):
    ``timestamp`` is a float, ``datetime`` the ISO string of the time, ``formatted``
    the time in ``custom_format``.
    """

    CONFIG_DEFAULTS = {
        "format": "iso",
        "custom_format": "%Y-%m-%d %H:%M:%S",
        "include_weekday": True,
        "locale": "zh_CN",
        "timezone": "local",
        "clock": None,
    }

    def _setup(self) -> None:
        self.trigger_slot = self.define_slot("request", handler=self._on_request)
        self.output_event = self.define_event(
            "output", ["time_string", "timestamp", "datetime", "formatted"]
        )

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "custom_format" and not isinstance(value, str):
            raise self._bad_config(key, "a strftime pattern (str)", value)
        if key == "timezone":
            _tz(value)  # raises for an unknown zone
            return value
        if key == "clock":
            return self._check_callable(key, value)
        return value

    def _moment(self) -> tuple[float, datetime]:
        clock = self._config.get("clock") or time.time
        stamp = clock()
        if isinstance(stamp, bool) or not isinstance(stamp, numbers.Real):
            raise TypeError(
                f"TimeProvider: clock must return epoch seconds (a number), got {type_name(stamp)}"
            )
        zone = _tz(self._config.get("timezone", "local"))
        return float(stamp), datetime.fromtimestamp(float(stamp), tz=zone)

    def format_time(self, moment: datetime, fmt: Any) -> str:
        """``moment`` as text in the format ``fmt`` (unknown formats give ISO)."""
        if fmt == "timestamp":
            return str(moment.timestamp())
        if fmt == "formatted":
            weekday = self._config.get("include_weekday", True)
            if weekday and self._config.get("locale", "zh_CN") == "zh_CN":
                day = _WEEKDAYS_ZH[moment.weekday()]
                return moment.strftime(f"%Y年%m月%d日{_COMMA}星期{day}{_COMMA}%H:%M:%S")
            return moment.strftime("%A, %B %d, %Y %H:%M:%S" if weekday else "%Y-%m-%d %H:%M:%S")
        if fmt == "custom":
            return moment.strftime(self._config.get("custom_format", "%Y-%m-%d %H:%M:%S"))
        return moment.isoformat()

    def now(self, format: Any = None) -> dict[str, Any]:
        """The output keys for the current time (``format`` overrides the config)."""
        stamp, moment = self._moment()
        fmt = format or self._config.get("format", "iso")
        return {
            "time_string": self.format_time(moment, fmt),
            "timestamp": stamp,
            "datetime": moment.isoformat(),
            "formatted": moment.strftime(self._config.get("custom_format", "%Y-%m-%d %H:%M:%S")),
        }

    def _on_request(self, /, **message: Any) -> None:
        data = message.get("data")
        if data and isinstance(data, Mapping):
            fmt = data.get("format")
        else:
            fmt = message.get("format")
        self.emit("output", **self.now(fmt))


def _tz(value: Any) -> tzinfo | None:
    """The zone for a ``timezone`` setting; None means naive local time."""
    if isinstance(value, tzinfo):
        return value
    if value in ("utc", "UTC"):
        return timezone.utc
    if value == "local":
        return None
    if isinstance(value, str) and value:
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(f"TimeProvider: unknown timezone {value!r}") from exc
    raise ConfigurationError(
        f"TimeProvider: timezone must be 'local', 'utc', an IANA zone name or a tzinfo, "
        f"got {value!r}"
    )
