"""What the monitor remembers from the event bus: step bars and replica deaths.

Both are *derived* views, bounded, built from bus events: step bars while a
client of the page asks for step events, deaths always (they are rare, and a
subscription to them costs nothing per step). They are never the truth about a job: that is
its JobState (live, or read from the store). They add what a JobState does not
keep — the start and end of every step, for the timeline — and the deaths of
replicas that held no message (a JobState records only the crashes that hit it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from typing import Any

from routilux.runtime.bus import (
    ROUTINE_OUT_OF_SERVICE,
    ROUTINE_RESTARTED,
    STEP_FINISHED,
    STEP_STARTED,
    BusEvent,
)

MAX_JOBS = 500  # jobs whose step bars are kept
MAX_BARS = 2000  # bars kept per job (the newest)
MAX_DEATHS = 500


class StepLog:
    """Bars of the timeline: one per step, a retried message one bar per attempt."""

    def __init__(self, max_jobs: int = MAX_JOBS, max_bars: int = MAX_BARS) -> None:
        self._jobs: OrderedDict[str, deque[dict[str, Any]]] = OrderedDict()
        self._open: dict[tuple[str, str, str, int], dict[str, Any]] = {}
        self._attempts: dict[tuple[str, Any, str], int] = {}
        self._lock = threading.Lock()
        self.max_jobs = max_jobs
        self.max_bars = max_bars

    def feed(self, event: BusEvent) -> None:
        """Take a ``step.started`` or ``step.finished`` event (others are ignored)."""
        if event.job_id is None or event.kind not in (STEP_STARTED, STEP_FINISHED):
            return
        data = event.data
        key = (event.job_id, data["message_id"], data["routine"], data["replica"])
        with self._lock:
            if event.kind == STEP_STARTED:
                bars = self._bars(event.job_id)
                attempt_key = (event.job_id, data["message_id"], data["routine"])
                attempt = self._attempts.get(attempt_key, 0) + 1
                self._attempts[attempt_key] = attempt
                bar = {
                    "routine": data["routine"],
                    "replica": data["replica"],
                    "message_id": data["message_id"],
                    "attempt": attempt,
                    "start": event.time,
                    "end": None,
                    "error": None,
                }
                bars.append(bar)
                self._open[key] = bar
            else:
                bar = self._open.pop(key, None)
                if bar is None:  # started before we listened
                    bar = {
                        "routine": data["routine"],
                        "replica": data["replica"],
                        "message_id": data["message_id"],
                        "attempt": 1,
                        "start": event.time - data.get("duration", 0.0),
                        "error": None,
                    }
                    self._bars(event.job_id).append(bar)
                bar["end"] = event.time
                bar["error"] = data.get("error")

    def _bars(self, job_id: str) -> deque[dict[str, Any]]:
        bars = self._jobs.get(job_id)
        if bars is None:
            bars = self._jobs[job_id] = deque(maxlen=self.max_bars)
            while len(self._jobs) > self.max_jobs:
                old, _ = self._jobs.popitem(last=False)
                self._forget(old)
        return bars

    def _forget(self, job_id: str) -> None:
        for key in [k for k in self._open if k[0] == job_id]:
            del self._open[key]
        for key in [k for k in self._attempts if k[0] == job_id]:
            del self._attempts[key]

    def bars(self, job_id: str) -> list[dict[str, Any]] | None:
        """Copies of the bars of ``job_id``, oldest first; None if never seen."""
        with self._lock:
            bars = self._jobs.get(job_id)
            return None if bars is None else [dict(b) for b in bars]


class DeathLog:
    """Replica deaths (``routine.restarted``) and routines out of service, newest last."""

    def __init__(self, size: int = MAX_DEATHS) -> None:
        self._items: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def feed(self, event: BusEvent) -> None:
        """Take a ``routine.restarted`` or ``routine.out_of_service`` event."""
        if event.kind == ROUTINE_RESTARTED:
            record = {
                "time": event.time,
                "flow_id": event.flow_id,
                "routine": event.data.get("routine"),
                "replica": event.data.get("replica"),
                "pid": event.data.get("pid"),
                "cause": event.data.get("cause"),
                "returncode": event.data.get("returncode"),
                "out_of_service": False,
            }
        elif event.kind == ROUTINE_OUT_OF_SERVICE:
            record = {
                "time": event.time,
                "flow_id": event.flow_id,
                "routine": event.data.get("routine"),
                "replica": None,
                "pid": None,
                "cause": event.data.get("reason"),
                "returncode": None,
                "out_of_service": True,
            }
        else:
            return
        with self._lock:
            self._items.append(record)

    def records(self) -> list[dict[str, Any]]:
        """Copies of what is remembered, oldest first."""
        with self._lock:
            return [dict(r) for r in self._items]
