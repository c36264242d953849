"""Error strategies: what happens to a job when a routine's handler raises."""

from __future__ import annotations

from enum import Enum
from typing import Any

from routilux._imports import import_qualified
from routilux._validate import check_int, check_number
from routilux.exceptions import ConfigurationError

ON_EXHAUSTED = ("fail", "continue")


class ErrorStrategy(str, Enum):
    """How a handler exception affects the job.

    - ``STOP``: the job fails; its remaining messages are dropped.
    - ``CONTINUE``: the error is recorded; the job goes on.
    - ``SKIP``: the routine is marked skipped for that message; the job goes on.
    - ``RETRY``: the message is delivered again after a backoff delay.
    """

    STOP = "stop"
    CONTINUE = "continue"
    RETRY = "retry"
    SKIP = "skip"


class ErrorHandler:
    """An error strategy with its retry settings.

    With ``RETRY`` the n-th retry waits ``retry_delay * retry_backoff ** (n - 1)``
    seconds. When retries run out, or the exception is not one of
    ``retryable_exceptions``, the job fails whatever ``is_critical`` says (as in
    0.10); ``on_exhausted="continue"`` opts into recording the error and going on.

    ``retry_count`` counts every retry scheduled under this handler object (any
    routine, any job) and is informational only: retry decisions are per message.
    ``reset()`` sets it back to 0.
    """

    def __init__(
        self,
        strategy: ErrorStrategy | str = ErrorStrategy.STOP,
        max_retries: int = 3,
        retry_delay: float = 1.0,
        retry_backoff: float = 2.0,
        retryable_exceptions: tuple[type[BaseException], ...] | list | None = None,
        is_critical: bool = False,
        *,
        on_exhausted: str = "fail",
    ) -> None:
        try:
            self.strategy = ErrorStrategy(strategy)
        except ValueError:
            raise ConfigurationError(
                f"unknown error strategy {strategy!r}; use one of "
                f"{', '.join(s.value for s in ErrorStrategy)}"
            ) from None
        check_int("max_retries", max_retries, 0)
        check_number("retry_delay", retry_delay, positive=False)
        check_number("retry_backoff", retry_backoff, unit="")
        self.max_retries = int(max_retries)
        self.retry_delay = float(retry_delay)
        self.retry_backoff = float(retry_backoff)
        self.retryable_exceptions = tuple(retryable_exceptions or (Exception,))
        self.is_critical = bool(is_critical)
        if on_exhausted not in ON_EXHAUSTED:
            raise ConfigurationError(
                f"on_exhausted must be one of {ON_EXHAUSTED}, got {on_exhausted!r}"
            )
        self.on_exhausted = on_exhausted
        self.retry_count = 0

    def reset(self) -> None:
        """Set :attr:`retry_count` back to 0."""
        self.retry_count = 0

    def delay_for(self, retry_number: int) -> float:
        """Seconds to wait before retry number ``retry_number`` (1-based)."""
        return self.retry_delay * self.retry_backoff ** max(retry_number - 1, 0)

    def is_retryable(self, error: BaseException | None, type_name: str = "") -> bool:
        """Whether ``error`` may be retried (by instance, or by type name when the
        instance could not cross a process boundary)."""
        if error is not None:
            return isinstance(error, self.retryable_exceptions)
        return any(
            cls is Exception or cls.__name__ == type_name for cls in self.retryable_exceptions
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible description (exception classes by qualified name)."""
        return {
            "strategy": self.strategy.value,
            "max_retries": self.max_retries,
            "retry_delay": self.retry_delay,
            "retry_backoff": self.retry_backoff,
            "retryable_exceptions": [
                f"{c.__module__}.{c.__qualname__}" for c in self.retryable_exceptions
            ],
            "is_critical": self.is_critical,
        }

    def serialize(self) -> dict[str, Any]:
        """The 0.10 dict (``_type``, strategy, retry settings, ``retry_count``,
        ``is_critical``) plus ``retryable_exceptions`` by qualified name and
        ``on_exhausted``."""
        data = self.to_dict()
        data["_type"] = "ErrorHandler"
        data["retry_count"] = self.retry_count
        data["on_exhausted"] = self.on_exhausted
        return data

    def deserialize(self, data: dict[str, Any]) -> ErrorHandler:
        """Fill this handler from :meth:`serialize` output (ours or 0.10's); returns it.

        Exception classes are imported by name; only ``BaseException`` subclasses
        are restored (a 0.10 dict has none: ``(Exception,)``).
        """
        fresh = ErrorHandler(
            data.get("strategy", "stop"),
            data.get("max_retries", 3),
            data.get("retry_delay", 1.0),
            data.get("retry_backoff", 2.0),
            _exception_classes(data.get("retryable_exceptions") or ()),
            data.get("is_critical", False),
            on_exhausted=data.get("on_exhausted", "fail"),
        )
        fresh.retry_count = int(data.get("retry_count", 0))
        self.__dict__.update(fresh.__dict__)
        return self

    def __repr__(self) -> str:
        return (
            f"ErrorHandler({self.strategy.name}, max_retries={self.max_retries}, "
            f"retry_delay={self.retry_delay}, retry_backoff={self.retry_backoff}, "
            f"is_critical={self.is_critical})"
        )


def _exception_classes(names: Any) -> tuple[type[BaseException], ...]:
    """Import exception classes from ``module.QualName`` strings; anything that is
    not an importable ``BaseException`` subclass is refused."""
    classes = []
    for name in names:
        parts = str(name).split(".")
        obj: Any = None
        for split in range(len(parts) - 1, 0, -1):  # longest importable module first
            try:
                obj = import_qualified(".".join(parts[:split]), ".".join(parts[split:]))
            except ImportError:
                continue
            except AttributeError:
                obj = None
            break
        if not (isinstance(obj, type) and issubclass(obj, BaseException)):
            raise ConfigurationError(
                f"retryable_exceptions: {name!r} is not an importable exception class"
            )
        classes.append(obj)
    return tuple(classes)
