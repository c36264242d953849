"""Flow, part three: durability (checkpoint, store ownership, job intents, recover)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from routilux._context import in_handler
from routilux._validate import (
    check_store,
)
from routilux.checkpoint.format import decode, encode
from routilux.exceptions import CheckpointError, ConfigurationError, FlowStateError
from routilux.execution_tracker import ExecutionTracker
from routilux.job_state import JobState
from routilux.runtime import commands
from routilux.runtime.ids import root_id
from routilux.runtime.job_pickle import dumps, resolve_jobs
from routilux.runtime.replicas import apply_replica_states
from routilux.runtime.snapshot import restore_state
from routilux.runtime.wire import describe_unpicklable, loads

if TYPE_CHECKING:
    pass

logger = logging.getLogger("routilux.flow")


class DurabilityMixin:
    """The durability half of :class:`~routilux.flow.Flow`."""

    # ------------------------------------------------------------------ durability
    def checkpoint(self, timeout: float | None = None) -> None:
        """Take a checkpoint now and wait for it (needs ``checkpoint_store``).

        Raises CheckpointError if it could not be written.
        """
        if self.checkpoint_store is None:
            raise ConfigurationError(f"flow {self.flow_id!r} has no checkpoint_store")
        if in_handler():
            raise FlowStateError(
                "checkpoint() cannot be waited for inside a handler: a checkpoint waits "
                "for every running step, this one included"
            )
        with self._lock:
            supervisor = self._supervisor
        if supervisor is None:
            return
        self._claim_store()
        ticket = supervisor.ask(commands.TakeCheckpoint())
        if not ticket.wait(timeout):
            raise CheckpointError(
                f"checkpoint of flow {self.flow_id!r} did not finish in {timeout} s"
            )
        if ticket.error is not None:
            if isinstance(ticket.error, FlowStateError):  # the flow shut down meanwhile
                raise CheckpointError(f"no checkpoint taken: {ticket.error}")
            raise ticket.error

    def _claim_store(self) -> None:
        """Durability rule *store ownership*: this process writes the flow's
        checkpoints only while it holds every unfinished job of the flow that the
        store knows of (a new cut would otherwise prune the checkpoint holding them).
        """
        store = self.checkpoint_store
        if self._claimed_store is store:
            return
        store.check_key()
        unfinished = store.unfinished_jobs(self.flow_id)
        if unfinished:
            shown = ", ".join(unfinished[:3]) + (" ..." if len(unfinished) > 3 else "")
            raise FlowStateError(
                f"flow {self.flow_id!r} has {len(unfinished)} unfinished job(s) in "
                f"{store.location} that this process has not recovered ({shown}); call "
                "flow.recover() (or `routilux resume JOB_ID`) before starting new jobs, "
                "so that they are not lost"
            )
        self._claimed_store = store

    def _write_intent(
        self, state: JobState, routine_id: str, slot: str, params: dict, timeout: float | None
    ) -> None:

        record = {
            "state": state,
            "slot_data": {},
            "timeout": timeout,
            "queue": [(root_id(state.job_id), routine_id, slot, params, None, 0, 0)],
        }
        try:
            payload = dumps(record)
        except Exception as exc:
            raise CheckpointError(
                f"cannot make job durable: {describe_unpicklable(params, 'entry_params')} "
                f"cannot be pickled ({type(exc).__name__}: {exc})"
            ) from None
        store = self.checkpoint_store
        blob = encode(
            self.flow_id, payload, store.key, [{"job_id": state.job_id, "status": "running"}]
        )
        store.add_intent(self.flow_id, state.job_id, blob)

    def recover(self, store: Any = None) -> list[JobState]:
        """Load this flow's latest checkpoint and continue every unfinished job.

        Call it in a fresh process on a flow built by the same code. Routine objects
        in ``flow.routines`` get their saved state; running jobs continue, paused
        ones stay paused (``resume()`` them), finished ones come back as they were.
        Every message is handled at least once; the flow's own state (routine state,
        stats, slot data, JobState) counts each exactly once. Returns every job.
        """

        store = check_store("store", store) if store is not None else self.checkpoint_store
        if store is None:
            raise ConfigurationError(
                f"flow {self.flow_id!r} has no checkpoint_store; pass recover(store=...)"
            )
        with self._lock:
            if self._supervisor is not None and self._supervisor.ask(commands.GetLiveJobs()):
                raise FlowStateError("recover() needs a flow with no running jobs")
        self.checkpoint_store = store
        where = f"{store.location} (flow {self.flow_id!r})"
        blob = store.load_latest(self.flow_id)
        records: list[dict[str, Any]] = []
        finished: list[JobState] = []
        replica_states: dict[str, list] = {}
        if blob is not None:
            _, payload = decode(blob, store.key, self.flow_id, where)
            for rid, saved in payload["routines"].items():
                routine = self.routines.get(rid)
                if routine is None:
                    continue  # the flow no longer has this routine
                if "state" in saved:
                    restore_state(routine, loads(saved["state"]))
                else:
                    replica_states[rid] = saved["replicas"]
                    apply_replica_states(routine, rid, saved["replicas"], saved["stats"])
            records = payload["jobs"]
            resolve_jobs(records, store, self.flow_id, where)  # history parts, verified
            # Checkpoints of 0.11.0 carried finished jobs inline.
            finished = [loads(data) for data in payload.get("finished", ())]
        for data in store.load_finished(self.flow_id, self.keep_finished_jobs):
            _, state = decode(data, store.key, self.flow_id, f"{where} finished job")
            finished = [st for st in finished if st.job_id != state.job_id]
            finished.append(state)
        live_ids = {r["state"].job_id for r in records}
        finished_at = {st.job_id: st.finished_at for st in finished}
        for intent in store.intents(self.flow_id):
            _, record = decode(intent, store.key, self.flow_id, f"{where} job intent")
            state = record["state"]
            if state.job_id in live_ids:
                continue  # the checkpoint already has it
            ended = finished_at.get(state.job_id)
            if ended is not None and ended >= state.created_at:
                continue  # that very submission finished before the checkpoint
            if ended is not None:  # the id was used again after a finished job
                finished = [st for st in finished if st.job_id != state.job_id]
            records.append(record)
            live_ids.add(state.job_id)
        for record in records:
            record["state"].output_handler = self.output_handler
            record["state"].execution_tracker = ExecutionTracker(record["state"], flow=self)
        self._replica_states = replica_states
        store.check_key()
        self._claimed_store = store  # every unfinished job is now held here
        if replica_states:
            self._graph_version += 1  # the supervisor must take the recovered states
        if records:
            supervisor = self._ensure_supervisor()
            supervisor.ask(commands.AdoptJobs(records))
        jobs = [st for st in finished] + [r["state"] for r in records]
        if records:
            self.job_state = records[-1]["state"]
        return jobs
