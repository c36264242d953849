"""JobState: everything known about one job (the data layer; the Flow is control)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from routilux.exceptions import ConfigurationError
from routilux.execution_record import ExecutionRecord
from routilux.history import DEFAULT_HISTORY_LIMIT, History
from routilux.serialization import dual_method
from routilux.serialization import jsonable as _jsonable

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
SETTLED_STATUSES = TERMINAL_STATUSES | {"paused"}
STATUSES = ("pending", "running", "paused", "completed", "failed", "cancelled")
# Records the supervisor writes besides emits (0.10's): the job's entry params, a
# failed step, a step whose error the job went on after, a success after retries.
HISTORY_MARKS = frozenset({"start", "error", "error_continued", "completed"})


class JobState:
    """The state of one job of a flow.

    The supervisor updates it as the job runs; read it from any thread. ``wait()``
    returns as soon as the job is completed, failed, cancelled or paused.
    """

    def __init__(self, flow_id: str | None = None, job_id: str | None = None) -> None:
        self.job_id: str = job_id or str(uuid.uuid4())
        self.flow_id: str = flow_id if flow_id is not None else ""
        self.status: str = "pending"
        self.current_routine_id: str | None = None
        self.routine_states: dict[str, dict[str, Any]] = {}
        self._history_columns = History(DEFAULT_HISTORY_LIMIT)
        self.pause_points: list[dict[str, Any]] = []
        self.pending_tasks: list[dict[str, Any]] = []
        self.deferred_events: list[dict[str, Any]] = []
        self.shared_data: dict[str, Any] = {}
        self.shared_log: list[dict[str, Any]] = []
        self.output_log: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.crashes: list[dict[str, Any]] = []
        self.dropped_messages = 0
        self.created_at = datetime.now()
        self.updated_at = self.created_at
        self.finished_at: datetime | None = None
        self.error: str | None = None
        #: how the job was started: ``{"routine", "slot", "params"}`` (None if unknown)
        self.entry: dict[str, Any] | None = None
        self.output_handler: Any = None
        self.execution_tracker: Any = None
        self._settled = threading.Event()

    # -- what the runtime records (the one place it writes a JobState) ---------------
    def set_status(self, status: str, error: str | None = None, notify: bool = True) -> None:
        """Change status (called by the supervisor); wakes waiters when settled
        (``notify=False``: not yet, e.g. until the outcome is durable)."""
        if status != self.status or self.finished_at is None:
            self.updated_at = datetime.now()
            if status in TERMINAL_STATUSES and self.finished_at is None:
                self.finished_at = self.updated_at
        self.status = status
        if error is not None:
            self.error = error
        if not notify:
            return
        if status in SETTLED_STATUSES:
            self._settled.set()
        else:
            self._settled.clear()

    def wake_waiters(self) -> None:
        """Wake ``wait()`` if the job is settled (its status was set with
        ``notify=False`` until its outcome was durable)."""
        if self.status in SETTLED_STATUSES:
            self._settled.set()

    def routine_record(self, routine_id: str, first_start: float) -> dict[str, Any]:
        """The entry of ``routine_id`` in ``routine_states`` (created on its first step;
        0.10's keys and ours)."""
        record = self.routine_states.get(routine_id)
        if record is None:
            record = self.routine_states[routine_id] = {
                "status": "running",
                "processed": 0,
                "failed": 0,
                "first_start": first_start,
                "last_end": None,
                "total_seconds": 0.0,
                "min_seconds": None,
                "max_seconds": None,
                "last_error": None,
                "retry_count": 0,
            }
        return record

    def record_failure(
        self,
        routine_id: str | None,
        slot: str | None,
        exception_type: str,
        message: str,
        traceback: str = "",
        attempt: int = 0,
        strategy: str = "stop",
    ) -> None:
        """Add one entry to ``failures`` (a failed step, or the job's own timeout)."""
        self.failures.append(
            {
                "routine_id": routine_id,
                "slot": slot,
                "exception_type": exception_type,
                "message": message,
                "traceback": traceback,
                "attempt": attempt,
                "strategy": strategy,
                "timestamp": time.time(),
            }
        )

    def record_crash(self, crash: dict[str, Any]) -> None:
        """Add one entry to ``crashes`` (a replica died while running this job)."""
        self.crashes.append(dict(crash))

    def add_pause_point(self, reason: str, checkpoint: Any = None, **figures: Any) -> None:
        """Add one entry to ``pause_points`` (``figures``: e.g. queued, in_flight)."""
        self.pause_points.append(
            {
                "timestamp": datetime.now().isoformat(),
                "reason": reason,
                "current_routine_id": self.current_routine_id,
                "checkpoint": checkpoint if checkpoint is not None else {},
                **figures,
            }
        )

    def record_output(
        self, routine_id: str, output_type: str, data: dict[str, Any], when: datetime
    ) -> None:
        """Add one entry to ``output_log`` (a step's ``send_output``)."""
        self.output_log.append(
            {
                "routine_id": routine_id,
                "output_type": output_type,
                "data": data,
                "timestamp": when.isoformat(),
            }
        )

    def record_deferred(self, routine_id: str, event_name: str, data: dict[str, Any]) -> None:
        """Add one entry to ``deferred_events`` (emitted when the job is resumed)."""
        self.deferred_events.append(
            {
                "routine_id": routine_id,
                "event_name": event_name,
                "data": data,
                "timestamp": datetime.now().isoformat(),
            }
        )

    def record_cancellation(self, reason: str) -> None:
        """Keep a cancel reason where 0.10 kept it (``routine_states["_cancellation"]``)."""
        self.routine_states["_cancellation"] = {"reason": reason}

    @property
    def is_terminal(self) -> bool:
        """True once completed, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job is completed, failed, cancelled or paused.

        Returns True if it is, False if ``timeout`` seconds passed first.
        """
        return self._settled.wait(timeout)

    @staticmethod
    def wait_for_completion(
        flow: Any, job_state: JobState, timeout: float | None = None, **_compat: Any
    ) -> bool:
        """Wait for ``job_state`` to settle (see :meth:`wait`); ``flow`` is unused.

        Returns as soon as the job settles (no polling); polling options of the 0.10
        API (such as ``check_interval``) are accepted and ignored.
        """
        return job_state.wait(timeout)

    # -- routine states ---------------------------------------------------------------
    def get_routine_state(self, routine_id: str) -> dict[str, Any] | None:
        """The state entry of ``routine_id`` (status, counts, last error) or None."""
        return self.routine_states.get(routine_id)

    def update_routine_state(self, routine_id: str, state: dict[str, Any]) -> None:
        """Merge ``state`` into the entry of ``routine_id``."""
        self.routine_states.setdefault(routine_id, {}).update(state)
        self.updated_at = datetime.now()

    # -- history ----------------------------------------------------------------------
    # Kept as columns (routilux/history.py): recording builds no object per record.
    @property
    def execution_history(self) -> list[ExecutionRecord]:
        """Emitted events, oldest first; at most ``history_limit`` records are kept
        (older ones are dropped and counted in ``history_dropped``).

        A new list each time (changing it does not change the job's history) of
        records built once and shared by later calls: treat them as read-only.
        """
        return self._history_columns.records()

    @execution_history.setter
    def execution_history(self, records: list[ExecutionRecord]) -> None:
        # 0.10's was a plain attribute: assigning a list of records replaces them.
        self._history_columns.load(records)

    @property
    def history_limit(self) -> int:
        """How many history records are kept (10,000 unless set)."""
        return self._history_columns.limit

    @history_limit.setter
    def history_limit(self, value: int) -> None:
        self._history_columns.limit = value

    @property
    def history_dropped(self) -> int:
        """How many of the oldest history records were dropped (beyond the limit)."""
        return self._history_columns.dropped

    @history_dropped.setter
    def history_dropped(self, value: int) -> None:
        self._history_columns.renumber(value)

    def record_execution(self, routine_id: str, event_name: str, data: dict[str, Any]) -> None:
        """Append one record to the history."""
        self._history_columns.append(routine_id, event_name, data)

    def get_execution_history(self, routine_id: str | None = None) -> list[ExecutionRecord]:
        """The history, optionally only the records of ``routine_id``."""
        history = self._history_columns.records()  # a new list already
        if routine_id is None:
            return history
        return [r for r in history if r.routine_id == routine_id]

    # -- shared data ------------------------------------------------------------------
    def update_shared_data(self, key: str, value: Any) -> None:
        """Set ``shared_data[key]``."""
        self.shared_data[key] = value
        self.updated_at = datetime.now()

    def get_shared_data(self, key: str, default: Any = None) -> Any:
        """``shared_data[key]`` or ``default``."""
        return self.shared_data.get(key, default)

    def append_to_shared_log(self, entry: dict[str, Any]) -> None:
        """Append a dict entry to ``shared_log`` (with an ISO ``timestamp`` if it has
        none); anything but a dict raises ``ValueError``."""
        if not isinstance(entry, dict):
            raise ValueError(f"shared log entries must be dicts, got {type(entry).__name__}")
        entry = dict(entry)
        entry.setdefault("timestamp", datetime.now().isoformat())
        self.shared_log.append(entry)

    def get_shared_log(
        self, filter_func: Callable[[dict[str, Any]], bool] | None = None
    ) -> list[dict[str, Any]]:
        """A copy of the shared log, optionally only the entries ``filter_func`` keeps."""
        if filter_func is None:
            return list(self.shared_log)
        return [entry for entry in self.shared_log if filter_func(entry)]

    # -- persistence ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict; values JSON cannot hold are stored as their repr."""
        return {
            "_type": "JobState",
            "job_id": self.job_id,
            "flow_id": self.flow_id,
            "status": self.status,
            "current_routine_id": self.current_routine_id,
            "routine_states": _jsonable(self.routine_states),
            "execution_history": [r.to_dict() for r in self.execution_history],
            "history_limit": self.history_limit,
            "history_dropped": self.history_dropped,
            "pause_points": _jsonable(self.pause_points),
            "pending_tasks": _jsonable(self.pending_tasks),
            "deferred_events": _jsonable(self.deferred_events),
            "shared_data": _jsonable(self.shared_data),
            "shared_log": _jsonable(self.shared_log),
            "output_log": _jsonable(self.output_log),
            "failures": _jsonable(self.failures),
            "crashes": _jsonable(self.crashes),
            "dropped_messages": self.dropped_messages,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "error": self.error,
            "entry": _jsonable(self.entry),
        }

    serialize = to_dict

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobState:
        """Rebuild a JobState from :meth:`to_dict` output (ours or a 0.10 file)."""
        if not isinstance(data, dict) or "job_id" not in data:
            raise ConfigurationError("not a serialized JobState: expected a dict with 'job_id'")
        job = cls(data.get("flow_id"), data["job_id"])
        for key in (
            "current_routine_id",
            "routine_states",
            "pause_points",
            "pending_tasks",
            "deferred_events",
            "shared_data",
            "shared_log",
            "output_log",
            "failures",
            "crashes",
            "dropped_messages",
            "history_dropped",
            "history_limit",
            "error",
            "entry",
        ):
            if key in data:
                setattr(job, key, data[key])
        job._history_columns.load(
            ExecutionRecord.from_dict(r) for r in data.get("execution_history", [])
        )
        for key in ("created_at", "updated_at", "finished_at"):
            if data.get(key):
                setattr(job, key, datetime.fromisoformat(data[key]))
        job.set_status(data.get("status", "pending"))
        job.updated_at = (
            datetime.fromisoformat(data["updated_at"]) if data.get("updated_at") else job.updated_at
        )
        return job

    @dual_method
    def deserialize(cls, data: dict[str, Any]) -> JobState:
        """``JobState.deserialize(d)`` builds a new job from :meth:`to_dict` output;
        ``JobState().deserialize(d)`` (the 0.10 way) fills that instance and returns it."""
        return cls.from_dict(data)

    @deserialize.instance
    def _deserialize_into(self, data: dict[str, Any]) -> JobState:
        self.__dict__.update(type(self).from_dict(data).__dict__)
        return self

    def save(self, path: str) -> None:
        """Write the job as JSON to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)

    @classmethod
    def load(cls, path: str) -> JobState:
        """Read a job written by :meth:`save`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def __getstate__(self, with_history: bool = True) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_settled"]  # rebuilt from the status: see __setstate__
        state["output_handler"] = None
        # Columns pickle many times faster than thousands of small objects. (A
        # checkpoint pickles the history apart, in chunks: runtime/job_pickle.py.)
        if not with_history:
            state["_history_columns"] = self._history_columns.empty_copy()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.pop("_settled", None)  # written by 0.11.0; the status is the truth
        if "_history_columns" not in state:
            # Pickled before the history was kept as columns: a list of tuples
            # (ExecutionRecord objects in the oldest pickles) and two counters.
            history = History(state.pop("history_limit", DEFAULT_HISTORY_LIMIT))
            history.dropped = state.pop("history_dropped", 0)
            history.load(state.pop("_history", ()))
            state["_history_columns"] = history
        state.setdefault("entry", None)  # pickled before 0.11.1
        self.__dict__.update(state)
        self._settled = threading.Event()
        # From the status, not from the event: a job pickled between its final status
        # and the wake-up of its waiters must still wake waiters once loaded.
        if self.status in SETTLED_STATUSES:
            self._settled.set()

    def __repr__(self) -> str:
        return f"JobState(job_id={self.job_id!r}, flow_id={self.flow_id!r}, status={self.status!r})"
