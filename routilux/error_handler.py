"""Error strategies: what happens to a job when a routine's handler raises."""

from __future__ import annotations

from enum import Enum
from typing import Any


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
    seconds. When retries run out (or the exception is not one of
    ``retryable_exceptions``), a critical handler fails the job and a non-critical
    one lets it continue.
    """

    def __init__(
        self,
        strategy: ErrorStrategy | str = ErrorStrategy.STOP,
        max_retries: int = 3,
        retry_delay: float = 1.0,
        retry_backoff: float = 2.0,
        retryable_exceptions: tuple[type[BaseException], ...] | list | None = None,
        is_critical: bool = False,
    ) -> None:
        from routilux.exceptions import ConfigurationError

        try:
            self.strategy = ErrorStrategy(strategy)
        except ValueError:
            raise ConfigurationError(
                f"unknown error strategy {strategy!r}; use one of "
                f"{', '.join(s.value for s in ErrorStrategy)}"
            ) from None
        if max_retries < 0 or retry_delay < 0 or retry_backoff <= 0:
            raise ConfigurationError(
                "max_retries and retry_delay must be >= 0 and retry_backoff > 0 "
                f"(got {max_retries}, {retry_delay}, {retry_backoff})"
            )
        self.max_retries = int(max_retries)
        self.retry_delay = float(retry_delay)
        self.retry_backoff = float(retry_backoff)
        self.retryable_exceptions = tuple(retryable_exceptions or (Exception,))
        self.is_critical = bool(is_critical)

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

    def __repr__(self) -> str:
        return (
            f"ErrorHandler({self.strategy.name}, max_retries={self.max_retries}, "
            f"retry_delay={self.retry_delay}, retry_backoff={self.retry_backoff}, "
            f"is_critical={self.is_critical})"
        )
