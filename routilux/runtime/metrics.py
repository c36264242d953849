"""Per-routine runtime figures kept by the supervisor."""

from __future__ import annotations

from typing import Any

_WINDOW = 1024  # handler durations kept for mean and p95


class RoutineFigures:
    """Counters and a ring of recent handler durations for one routine."""

    __slots__ = ("processed", "failed", "restarts", "_durations", "_next")

    def __init__(self) -> None:
        self.processed = 0
        self.failed = 0
        self.restarts = 0
        self._durations: list[float] = []
        self._next = 0

    def record(self, seconds: float) -> None:
        """Add one handler duration (seconds) to the window."""
        durations = self._durations
        if len(durations) < _WINDOW:
            durations.append(seconds)
        else:
            durations[self._next] = seconds
            self._next = (self._next + 1) % _WINDOW

    def record_many(self, seconds: list[float]) -> None:
        """Add several handler durations, oldest first."""
        durations = self._durations
        room = _WINDOW - len(durations)
        if room > 0:
            durations.extend(seconds[:room])
            seconds = seconds[room:]
        for value in seconds:
            durations[self._next] = value
            self._next = (self._next + 1) % _WINDOW

    def snapshot(self) -> dict[str, Any]:
        """Counters plus mean and p95 handler time in milliseconds."""
        durations = sorted(self._durations)
        if durations:
            mean_ms = 1000.0 * sum(durations) / len(durations)
            p95_ms = 1000.0 * durations[min(len(durations) - 1, int(0.95 * len(durations)))]
        else:
            mean_ms = p95_ms = 0.0
        return {
            "processed": self.processed,
            "failed": self.failed,
            "restarts": self.restarts,
            "mean_ms": round(mean_ms, 4),
            "p95_ms": round(p95_ms, 4),
        }
