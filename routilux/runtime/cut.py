"""The content of a checkpoint: what one consistent cut of a flow writes.

The supervisor decides *when* a cut is taken (nothing in flight); this module says
*what* it holds: every routine's state, every unfinished job (JobState, slot data,
undelivered messages), and the jobs that finished since the previous cut, each
signed once as its own record (:class:`~routilux.checkpoint.store.FinishedJob`) and
never rewritten by later cuts.
"""

from __future__ import annotations

from typing import Any

from routilux.checkpoint.format import encode
from routilux.checkpoint.store import FinishedJob
from routilux.exceptions import CheckpointError
from routilux.runtime.job_pickle import dumps
from routilux.runtime.wire import describe_unpicklable


def job_summary(state: Any) -> dict[str, Any]:
    """The listing row of a job (``routilux jobs``), stored beside the checkpoint."""
    row = {"job_id": state.job_id, "status": state.status, "error": state.error}
    row["created_at"] = state.created_at.timestamp()
    if state.finished_at is not None:
        row["updated_at"] = state.finished_at.timestamp()  # retention counts from here
        row["finished_at"] = row["updated_at"]
    return row


def finished_record(flow_id: str, state: Any, key: bytes, pickled: Any = None) -> FinishedJob:
    """Sign a finished job's JobState as its own record (``pickled``: the state as
    :func:`~routilux.runtime.job_pickle.snapshot` took it, if it was)."""
    try:
        payload = dumps(state if pickled is None else pickled)
    except Exception as exc:
        raise CheckpointError(
            f"cannot checkpoint finished job {state.job_id}: its state cannot be pickled "
            f"({type(exc).__name__}: {exc})"
        ) from None
    blob = encode(flow_id, payload, key, [job_summary(state)])
    return FinishedJob(state.job_id, state.finished_at.timestamp(), blob)


def encode_cut(
    flow_id: str, routines: dict[str, Any], jobs: list[dict[str, Any]], key: bytes, summary: list
) -> bytes:
    """Pickle and sign one cut: routine states and unfinished job records."""
    payload = {"flow_id": flow_id, "routines": routines, "jobs": jobs}
    try:
        data = dumps(payload)
    except Exception as exc:
        raise CheckpointError(
            f"cannot checkpoint flow {flow_id!r}: "
            f"{describe_unpicklable(payload, 'its state')} cannot be pickled "
            f"({type(exc).__name__}: {exc})"
        ) from None
    return encode(flow_id, data, key, summary)
