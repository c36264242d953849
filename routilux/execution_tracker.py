"""ExecutionTracker: per-routine timing of one job, read from its JobState."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from routilux.job_state import JobState


class ExecutionTracker:
    """Execution figures of one job, per routine.

    The supervisor keeps each routine's entry in ``job_state.routine_states`` current
    (``first_start``, ``last_end`` as wall-clock seconds, ``processed``, ``failed``,
    ``total_seconds``, ``status``); the tracker presents them.
    """

    def __init__(self, job_state: JobState) -> None:
        self.job_state = job_state
        self.flow_id = job_state.flow_id
        self.job_id = job_state.job_id

    @property
    def routine_executions(self) -> dict[str, dict[str, Any]]:
        """Per-routine figures of every routine that ran."""
        return {
            rid: perf
            for rid in list(self.job_state.routine_states)
            if (perf := self.get_routine_performance(rid)) is not None
        }

    def get_routine_performance(self, routine_id: str) -> dict[str, Any] | None:
        """start, end, duration, steps, failed, mean_ms and status of one routine."""
        state = self.job_state.routine_states.get(routine_id)
        if not state or "first_start" not in state:
            return None
        steps = state.get("processed", 0) + state.get("failed", 0)
        end = state.get("last_end") or state["first_start"]
        return {
            "start": state["first_start"],
            "end": end,
            "duration": end - state["first_start"],
            "steps": steps,
            "processed": state.get("processed", 0),
            "failed": state.get("failed", 0),
            "mean_ms": 1000.0 * state.get("total_seconds", 0.0) / steps if steps else 0.0,
            "status": state.get("status"),
        }

    def get_flow_performance(self) -> dict[str, Any]:
        """Totals for the job: routines that ran, steps, failures, duration."""
        perfs = list(self.routine_executions.values())
        start = self.job_state.created_at.timestamp()
        finished = self.job_state.finished_at
        end = finished.timestamp() if finished else max((p["end"] for p in perfs), default=start)
        return {
            "job_id": self.job_id,
            "status": self.job_state.status,
            "routines": len(perfs),
            "steps": sum(p["steps"] for p in perfs),
            "failed": sum(p["failed"] for p in perfs),
            "duration": end - start,
        }
