"""RestartPolicy: how often a crashed routine actor is restarted."""

from __future__ import annotations

from dataclasses import dataclass

from routilux._validate import check_int, check_number
from routilux.exceptions import ConfigurationError


@dataclass(frozen=True)
class RestartPolicy:
    """Restart a crashed routine up to ``max_restarts`` times within ``within`` seconds.

    The first crash in the window restarts at once. Before the n-th (n >= 2) the
    supervisor waits ``backoff * 2 ** (n - 2)`` seconds, capped at ``backoff_max``: a
    routine that keeps crashing is slowed down, a one-off crash costs no wait. One
    crash more than the policy allows fails the in-flight message with
    ``RoutineCrashedError``. With ``warm_spare``, each replica of a process routine
    has a second process waiting, routine loaded, to take over from a crashed one
    (a ray routine keeps one standby actor for all its replicas).
    """

    max_restarts: int = 3
    within: float = 60.0
    backoff: float = 0.05
    backoff_max: float = 5.0
    #: keep one more process per replica of a process routine started and loaded,
    #: so that a crash costs a hand-over instead of a start (ray routines: one
    #: standby actor per routine; ignored by threads)
    warm_spare: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.warm_spare, bool):
            raise ConfigurationError(
                f"RestartPolicy warm_spare must be True or False, got {self.warm_spare!r}"
            )
        check_int("RestartPolicy max_restarts", self.max_restarts, 0)
        check_number("RestartPolicy within", self.within, allow_inf=True)
        check_number("RestartPolicy backoff", self.backoff, positive=False)
        check_number("RestartPolicy backoff_max", self.backoff_max, positive=False, allow_inf=True)

    def describe(self, crashes: int) -> str:
        """How ``crashes`` in the current window compare with the policy, for logs."""
        window = f"within {self.within:g} s"
        if crashes <= self.max_restarts:
            return f"restart {crashes} of at most {self.max_restarts} {window}"
        return f"crash {crashes} {window} exceeds max_restarts={self.max_restarts}"

    def delay(self, restarts_in_window: int) -> float:
        """Seconds to wait before the given restart (1-based count in the window):
        none for the first, then ``backoff``, doubling, at most ``backoff_max``."""
        if restarts_in_window <= 1:
            return 0.0
        return min(self.backoff * 2 ** (restarts_in_window - 2), self.backoff_max)
