"""A job as the API shows it: header, history, timeline, routine states, errors.

Built from a :class:`~routilux.JobState` (live, or read back from the store) and,
for the timeline, the step bars the monitor saw on the bus. Values JSON cannot
hold are shown as their ``repr``; long values are cut (the page is for people).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from routilux.job_state import HISTORY_MARKS, JobState

MAX_VALUE = 20_000  # characters of one shown value (params, data, output)
MAX_HISTORY = 2000  # entries of the history shown (the newest)


def shown(value: Any) -> Any:
    """``value`` as JSON data, cut to :data:`MAX_VALUE` characters when large."""
    try:
        text = json.dumps(value, default=repr)
    except (TypeError, ValueError, RecursionError):
        return repr(value)[:MAX_VALUE]
    if len(text) <= MAX_VALUE:
        return json.loads(text)
    return {"truncated": True, "preview": text[:MAX_VALUE]}


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def when(value: Any) -> float | None:
    """Epoch seconds of a time the runtime recorded (seconds, datetime or ISO text)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def header(state: JobState) -> dict[str, Any]:
    """Status, flow, times and error of a job (the list row of a live job)."""
    created, finished = _ts(state.created_at), _ts(state.finished_at)
    return {
        "job_id": state.job_id,
        "flow_id": state.flow_id,
        "status": state.status,
        "error": state.error,
        "created_at": created,
        "updated_at": _ts(state.updated_at),
        "finished_at": finished,
    }


def detail(state: JobState, bars: list[dict[str, Any]] | None, live: bool) -> dict[str, Any]:
    """Everything the job page shows."""
    failures = list(state.failures)
    crashes = list(state.crashes)
    routines = {rid: dict(rs) for rid, rs in dict(state.routine_states).items()}
    entry = getattr(state, "entry", None) or {}
    result = header(state)
    end = result["finished_at"]
    result.update(
        live=live,
        duration=None if end is None else end - result["created_at"],
        entry={"routine": entry.get("routine"), "slot": entry.get("slot")},
        params=shown(entry.get("params")),
        current_routine=state.current_routine_id,
        routines={rid: _routine(rs) for rid, rs in routines.items()},
        attempts={rid: _attempts(failures, rid) for rid in routines},
        failures=[_failure(f) for f in failures],
        crashes=[dict(c) | {"time": when(c.get("timestamp"))} for c in crashes],
        output=[_output(o) for o in list(state.output_log)[-200:]],
        shared_data=shown(dict(state.shared_data)),
        pauses=[shown(p) for p in list(state.pause_points)],
        dropped_messages=state.dropped_messages,
        history=history(state, failures, crashes),
        timeline=timeline(routines, failures, crashes, bars),
    )
    return result


def _routine(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": state.get("status"),
        "processed": state.get("processed", 0),
        "failed": state.get("failed", 0),
        "first_start": state.get("first_start"),
        "last_end": state.get("last_end"),
        "total_seconds": state.get("total_seconds", 0.0),
        "last_error": state.get("last_error"),
    }


def _attempts(failures: list[dict[str, Any]], routine_id: str) -> int:
    return sum(1 for f in failures if f.get("routine_id") == routine_id)


def _failure(failure: dict[str, Any]) -> dict[str, Any]:
    keys = ("routine_id", "slot", "exception_type", "message", "traceback")
    return {k: failure.get(k) for k in keys} | {
        "attempt": (failure.get("attempt") or 0) + 1,  # 1: the first delivery
        "strategy": failure.get("strategy"),
        "time": when(failure.get("timestamp")),
    }


def _output(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "routine_id": record.get("routine_id"),
        "output_type": record.get("output_type"),
        "data": shown(record.get("data")),
        "time": when(record.get("timestamp")),
    }


def history(
    state: JobState, failures: list[dict[str, Any]], crashes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Emits, failed attempts (each retry its own entry), crashes and pauses, by time."""
    entries: list[dict[str, Any]] = []
    # The newest records straight from the columns: no records built, no trim of
    # a live job's history (it belongs to its supervisor's thread).
    count = min(MAX_HISTORY, max(state.history_limit, 0))
    for routine_id, name, data, wall_time in state._history_columns.last(count):
        if name in ("error", "error_continued"):
            continue  # the failures below say more
        entries.append(
            {
                "time": when(wall_time),
                "kind": "mark" if name in HISTORY_MARKS else "emit",
                "routine": routine_id,
                "text": name,
                "data": shown(data),
            }
        )
    for f in failures:  # attempt 0 is the first delivery, n its n-th retry
        entries.append(
            {
                "time": when(f.get("timestamp")),
                "kind": "retry" if f.get("strategy") == "retry" else "error",
                "routine": f.get("routine_id"),
                "attempt": (f.get("attempt") or 0) + 1,
                "text": f"{f.get('exception_type')}: {f.get('message')}",
            }
        )
    for c in crashes:
        entries.append(
            {
                "time": when(c.get("timestamp")),
                "kind": "crash",
                "routine": c.get("routine_id"),
                "text": f"replica {c.get('replica')} (pid {c.get('pid')}): {c.get('reason')}",
            }
        )
    for p in list(state.pause_points):
        entries.append(
            {
                "time": when(p.get("timestamp")),
                "kind": "pause",
                "routine": None,
                "text": p.get("reason"),
            }
        )
    entries.sort(key=lambda e: e["time"] or 0.0)
    return entries[-MAX_HISTORY:]


def timeline(
    routines: dict[str, dict[str, Any]],
    failures: list[dict[str, Any]],
    crashes: list[dict[str, Any]],
    bars: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """Bars of the Gantt chart.

    With the steps seen on the bus (``bars``): one bar per step, a retried message
    one bar per attempt. Without (the job ran while nobody watched): one span per
    routine from its first start to its last end. Marks: one per failed attempt and
    per crash.
    """
    spans = [
        {
            "routine": rid,
            "replica": None,
            "attempt": None,
            "start": rs.get("first_start"),
            "end": rs.get("last_end"),
            "error": rs.get("last_error") if rs.get("status") == "failed" else None,
        }
        for rid, rs in routines.items()
        if rs.get("first_start") is not None
    ]
    if bars:  # a routine whose steps all came before anyone watched keeps its span
        seen = {bar["routine"] for bar in bars}
        bars = [span for span in spans if span["routine"] not in seen] + bars
        return {"exact": True, "bars": bars, "marks": _marks(failures, crashes)}
    return {"exact": False, "bars": spans, "marks": _marks(failures, crashes)}


def _marks(failures: list[dict[str, Any]], crashes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    marks = [
        {
            "routine": f.get("routine_id"),
            "time": when(f.get("timestamp")),
            "kind": "failure",
            "attempt": (f.get("attempt") or 0) + 1,
            "text": f"{f.get('exception_type')}: {f.get('message')}",
        }
        for f in failures
    ]
    marks += [
        {
            "routine": c.get("routine_id"),
            "time": when(c.get("timestamp")),
            "kind": "crash",
            "attempt": None,
            "text": str(c.get("reason")),
        }
        for c in crashes
    ]
    return marks
