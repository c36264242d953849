"""ExecutionTracker: the 0.10 execution record, standalone or as the view of one job.

``ExecutionTracker(job_state)`` (what ``job.execution_tracker`` is) presents the
figures the supervisor keeps in ``job_state.routine_states`` and the emits of
``job_state.execution_history`` in the 0.10 shapes. ``ExecutionTracker(flow_id)``
(or no argument) is the plain 0.10 data class filled by the ``record_*`` methods.
"""

from __future__ import annotations

import weakref
from datetime import datetime
from typing import Any

from routilux.job_state import HISTORY_MARKS, JobState
from routilux.serialization import jsonable as _jsonable

_OUR_KEYS = ("steps", "processed", "failed", "start", "end", "duration", "mean_ms")


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds).isoformat()


def _now_iso() -> str:
    return datetime.now().isoformat()


class ExecutionTracker:
    """Routine executions and event flow, in 0.10's shapes.

    Given a :class:`JobState` it is the live view of that job (read-only figures
    kept by the supervisor; entries added with ``record_*`` are kept and merged in).
    Given a flow id (or nothing) it is the standalone 0.10 data class.
    """

    def __init__(self, flow_id: str | JobState = "", *, flow: Any = None) -> None:
        self._routine_executions: dict[str, list[dict[str, Any]]] = {}
        self._event_flow: list[dict[str, Any]] = []
        self.performance_metrics: dict[str, Any] = {}
        self._flow_ref: Any = None
        if isinstance(flow_id, JobState):
            self.job_state: JobState | None = flow_id
            self.flow_id = flow_id.flow_id
            self.job_id: str | None = flow_id.job_id
            if flow is not None:
                self._flow_ref = weakref.ref(flow)
        else:
            self.job_state = None
            self.flow_id = flow_id
            self.job_id = None

    # ------------------------------------------------------------------ recording
    def record_routine_start(self, routine_id: str, params: dict[str, Any] | None = None) -> None:
        """Append a ``running`` execution of ``routine_id``."""
        self._routine_executions.setdefault(routine_id, []).append(
            {
                "routine_id": routine_id,
                "start_time": _now_iso(),
                "params": params or {},
                "status": "running",
            }
        )

    def record_routine_end(
        self,
        routine_id: str,
        status: str = "completed",
        result: Any = None,
        error: str | None = None,
    ) -> None:
        """Complete the last execution of ``routine_id`` (nothing if it has none)."""
        executions = self._routine_executions.get(routine_id)
        if not executions:
            return
        execution = executions[-1]
        end = datetime.now()
        execution["end_time"] = end.isoformat()
        execution["status"] = status
        if result is not None:
            execution["result"] = result
        if error is not None:
            execution["error"] = error
        try:
            start = datetime.fromisoformat(execution["start_time"])
        except (KeyError, TypeError, ValueError):
            return
        execution["execution_time"] = (end - start).total_seconds()

    def record_event(
        self,
        source_routine_id: str,
        event_name: str,
        target_routine_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Append one emit to the event flow."""
        self._event_flow.append(
            {
                "timestamp": _now_iso(),
                "source_routine_id": source_routine_id,
                "event_name": event_name,
                "target_routine_id": target_routine_id,
                "data": data or {},
            }
        )

    # ------------------------------------------------------------------ views
    @property
    def routine_executions(self) -> dict[str, list[dict[str, Any]]]:
        """``{routine_id: [execution, ...]}``; in a job view one summary per routine
        that ran (0.10 keys plus ``steps``, ``processed``, ``failed``, ``start``,
        ``end``, ``duration``, ``mean_ms``), then any recorded by hand."""
        if self.job_state is None:
            return self._routine_executions
        view: dict[str, list[dict[str, Any]]] = {}
        params = self._entry_params()
        for rid, state in list(self.job_state.routine_states.items()):
            summary = self._summary(rid, state, params)
            if summary is not None:
                view[rid] = [summary]
        for rid, executions in self._routine_executions.items():
            view.setdefault(rid, []).extend(executions)
        return view

    @routine_executions.setter
    def routine_executions(self, value: dict[str, list[dict[str, Any]]]) -> None:
        self._routine_executions = value

    @property
    def event_flow(self) -> list[dict[str, Any]]:
        """Emitted events (timestamp, source and first target routine ``_id``,
        event name, data); in a job view derived from the job's history."""
        if self.job_state is None:
            return self._event_flow
        return self._derived_events() + list(self._event_flow)

    @event_flow.setter
    def event_flow(self, value: list[dict[str, Any]]) -> None:
        self._event_flow = value

    def get_routine_performance(self, routine_id: str) -> dict[str, Any] | None:
        """0.10's figures of one routine (``total_executions``, ``completed``,
        ``failed``, ``success_rate``, ``avg/min/max_execution_time`` in seconds);
        a job view adds ``start``, ``end``, ``duration``, ``steps``, ``processed``,
        ``mean_ms`` and ``status``. None if the routine did not run."""
        state = self.job_state.routine_states.get(routine_id) if self.job_state else None
        if not isinstance(state, dict) or "first_start" not in state:
            return _performance(self._routine_executions.get(routine_id) or [])
        steps = state.get("processed", 0) + state.get("failed", 0)
        processed = state.get("processed", 0)
        end = state.get("last_end") or state["first_start"]
        total = state.get("total_seconds", 0.0)
        return {
            "start": state["first_start"],
            "end": end,
            "duration": end - state["first_start"],
            "steps": steps,
            "processed": processed,
            "failed": state.get("failed", 0),
            "mean_ms": 1000.0 * total / steps if steps else 0.0,
            "status": state.get("status"),
            "total_executions": steps,
            "completed": processed,
            "success_rate": processed / steps if steps else 0,
            "avg_execution_time": total / steps if steps else 0,
            "min_execution_time": state.get("min_seconds") or 0,
            "max_execution_time": state.get("max_seconds") or 0,
        }

    def get_flow_performance(self) -> dict[str, Any]:
        """0.10's totals (``total_routines``, ``total_events``,
        ``total_execution_time`` = sum of the routines' average times,
        ``avg_routine_time``); a job view adds ``job_id``, ``status``, ``routines``,
        ``steps``, ``failed`` and ``duration``."""
        executions = self.routine_executions
        averages = []
        for rid in executions:
            perf = self.get_routine_performance(rid)
            if perf and perf.get("avg_execution_time"):
                averages.append(perf["avg_execution_time"])
        total = sum(averages)
        result: dict[str, Any] = {
            "total_routines": len(executions),
            "total_events": len(self.event_flow),
            "total_execution_time": total,
            "avg_routine_time": total / len(averages) if averages else 0,
        }
        if self.job_state is None:
            return result
        job = self.job_state
        perfs = [
            p
            for rid, state in list(job.routine_states.items())
            if isinstance(state, dict)
            and "first_start" in state
            and (p := self.get_routine_performance(rid))
        ]
        start = job.created_at.timestamp()
        finished = job.finished_at
        end = finished.timestamp() if finished else max((p["end"] for p in perfs), default=start)
        result.update(
            {
                "job_id": self.job_id,
                "status": job.status,
                "routines": len(perfs),
                "steps": sum(p["steps"] for p in perfs),
                "failed": sum(p["failed"] for p in perfs),
                "duration": end - start,
            }
        )
        return result

    # ------------------------------------------------------------------ serialization
    def serialize(self) -> dict[str, Any]:
        """A JSON-compatible snapshot in the standalone 0.10 shape."""
        return {
            "_type": "ExecutionTracker",
            "flow_id": self.flow_id,
            "routine_executions": _jsonable(self.routine_executions),
            "event_flow": _jsonable(self.event_flow),
            "performance_metrics": _jsonable(self.performance_metrics),
        }

    def deserialize(self, data: dict[str, Any]) -> ExecutionTracker:
        """Fill this tracker (as a standalone one) from :meth:`serialize` output."""
        self.job_state = None
        self.job_id = None
        self._flow_ref = None
        self.flow_id = data.get("flow_id", "")
        self._routine_executions = {
            rid: [dict(e) for e in execs]
            for rid, execs in (data.get("routine_executions") or {}).items()
        }
        self._event_flow = [dict(e) for e in data.get("event_flow") or []]
        self.performance_metrics = dict(data.get("performance_metrics") or {})
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_flow_ref"] = None  # a weak reference; the flow is not part of the job
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Trackers pickled before the 0.10 data class existed had only the job view.
        self.__dict__.update(
            {
                "_routine_executions": {},
                "_event_flow": [],
                "performance_metrics": {},
                "_flow_ref": None,
                **state,
            }
        )

    def __repr__(self) -> str:
        if self.job_state is not None:
            return f"ExecutionTracker(job {self.job_id!r} of flow {self.flow_id!r})"
        return f"ExecutionTracker({self.flow_id!r})"

    # ------------------------------------------------------------------ helpers
    def _flow(self) -> Any:
        return self._flow_ref() if self._flow_ref is not None else None

    def _entry_params(self) -> tuple[str | None, dict[str, Any]]:
        """The entry routine and its params, from the job's ``start`` record."""
        for record in list(self.job_state.execution_history):
            if record.event_name == "start" and self._is_mark(record):
                return record.routine_id, dict(record.data)
        return None, {}

    def _summary(
        self, rid: str, state: Any, entry: tuple[str | None, dict[str, Any]]
    ) -> dict[str, Any] | None:
        perf = self.get_routine_performance(rid)
        if not isinstance(state, dict) or "first_start" not in state or perf is None:
            return None  # not a routine entry (e.g. "_cancellation")
        summary = {
            "routine_id": rid,
            "start_time": _iso(perf["start"]),
            "end_time": _iso(perf["end"]),
            "params": entry[1] if entry[0] == rid else {},
            "status": state.get("status"),
            "execution_time": state.get("total_seconds", 0.0),
        }
        if state.get("error") is not None:
            summary["error"] = state["error"]
        summary.update({key: perf[key] for key in _OUR_KEYS})
        return summary

    def _is_mark(self, record: Any) -> bool:
        """True for the supervisor's own records (start, error, ...), not emits."""
        if record.event_name not in HISTORY_MARKS:
            return False
        flow = self._flow()
        routine = flow.routines.get(record.routine_id) if flow is not None else None
        return routine is None or routine.get_event(record.event_name) is None

    def _derived_events(self) -> list[dict[str, Any]]:
        flow = self._flow()
        events = []
        for record in list(self.job_state.execution_history):
            if self._is_mark(record):
                continue
            source, target = record.routine_id, None
            routine = flow.routines.get(record.routine_id) if flow is not None else None
            if routine is not None:
                source = routine._id
                event = routine.get_event(record.event_name)
                for connection in list(event.connections) if event is not None else ():
                    slot_owner = getattr(connection.target_slot, "routine", None)
                    if slot_owner is not None:
                        target = slot_owner._id
                        break
            events.append(
                {
                    "timestamp": _iso(record.wall_time),
                    "source_routine_id": source,
                    "event_name": record.event_name,
                    "target_routine_id": target,
                    "data": record.data,
                }
            )
        return events


def _performance(executions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """0.10's figures from a list of recorded executions."""
    if not executions:
        return None
    total = len(executions)
    completed = sum(1 for e in executions if e.get("status") == "completed")
    failed = sum(1 for e in executions if e.get("status") == "failed")
    times = [e.get("execution_time", 0) for e in executions if "execution_time" in e]
    return {
        "total_executions": total,
        "completed": completed,
        "failed": failed,
        "success_rate": completed / total,
        "avg_execution_time": sum(times) / len(times) if times else 0,
        "min_execution_time": min(times) if times else 0,
        "max_execution_time": max(times) if times else 0,
    }
