"""RestartPolicy: how often a crashed routine actor is restarted."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """Restart a crashed routine up to ``max_restarts`` times within ``within`` seconds.

    Before each restart the supervisor waits ``backoff * 2 ** (n - 1)`` seconds
    (n = restarts in the window), capped at ``backoff_max``. One crash more than the
    policy allows fails the in-flight message with ``RoutineCrashedError``.
    """

    max_restarts: int = 3
    within: float = 60.0
    backoff: float = 0.05
    backoff_max: float = 5.0

    def __post_init__(self) -> None:
        from routilux.exceptions import ConfigurationError

        if self.max_restarts < 0 or self.within <= 0 or self.backoff < 0 or self.backoff_max < 0:
            raise ConfigurationError(
                "RestartPolicy needs max_restarts >= 0, within > 0, backoff >= 0 and "
                f"backoff_max >= 0; got {self}"
            )

    def delay(self, restarts_in_window: int) -> float:
        """Seconds to wait before the given restart (1-based count in the window)."""
        return min(self.backoff * 2 ** max(restarts_in_window - 1, 0), self.backoff_max)
