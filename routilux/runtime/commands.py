"""Commands from a Flow (or Runtime) to its supervisor: one typed record each.

They travel through pykka (``ref.ask(command)`` for an answer, ``tell`` for none)
and the supervisor dispatches on the record's type. Routine actors use the tagged
tuples of :mod:`routilux.runtime.messages` instead (the hot path).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from routilux.runtime.plan import FlowPlan


class ApplyPlan(NamedTuple):
    """Install a new plan: start new routines' replicas, rebuild routes, settings."""

    plan: FlowPlan  #: the flow as it is now


class StartJob(NamedTuple):
    """Start a job by delivering ``params`` to ``routine_id.slot``."""

    state: Any  #: the new job's JobState (status ``running``)
    routine_id: str  #: the entry routine
    slot: str  #: its slot
    params: dict  #: the entry message
    timeout: float | None  #: seconds before the job fails, or None


class AdoptJobs(NamedTuple):
    """Take over jobs restored from a checkpoint, intents, or another host."""

    records: list  #: ``{"state", "slot_data", "queue", "timeout"}`` per job (see cut.py)


class PauseJob(NamedTuple):
    """Stop starting steps of a job; it is paused once its running steps ended."""

    state: Any  #: the job's JobState
    reason: str  #: recorded in its pause point
    checkpoint: Any = None  #: 0.10's pause-point payload, kept as given


class ResumeJob(NamedTuple):
    """Run a paused job again (its deferred events are emitted first)."""

    state: Any  #: the job's JobState


class CancelJob(NamedTuple):
    """End a job as cancelled; its queued messages are dropped."""

    state: Any  #: the job's JobState
    reason: str  #: recorded as its error and cancellation reason


class TakeCheckpoint(NamedTuple):
    """Cut a checkpoint now; answers a Ticket to wait on."""


class Park(NamedTuple):
    """Cut every live job as it is and hold for good (shutdown with a store)."""


class GetMetrics(NamedTuple):
    """Answer the per-routine figures of ``flow.metrics()``."""


class GetJobIds(NamedTuple):
    """Answer the ids of the jobs this supervisor holds."""


class GetLiveJobs(NamedTuple):
    """Answer the JobStates of the jobs not yet finished."""


class GetCheckpointError(NamedTuple):
    """Answer the error of the last checkpoint, or None if it was written."""
