"""Job control: the commands that start, adopt, pause, resume and cancel jobs.

Depends on the ledger, the job book and routing (a started job's entry message and a
resumed job's deferred events are routed like any emit).
"""

from __future__ import annotations

from typing import Any

from routilux.exceptions import FlowStateError
from routilux.runtime.bus import JOB_RESUMED
from routilux.runtime.commands import CancelJob, PauseJob, StartJob
from routilux.runtime.ids import root_id
from routilux.runtime.jobs import JobBook
from routilux.runtime.ledger import Ledger
from routilux.runtime.messages import Delivery
from routilux.runtime.queue_pickle import expand_queue
from routilux.runtime.routing import Router
from routilux.runtime.snapshot import delivery_from_record


class JobControl:
    """Carries out job commands from the Flow (see the module docstring)."""

    def __init__(self, ledger: Ledger, jobs: JobBook, router: Router) -> None:
        self.ledger = ledger
        self.jobs = jobs
        self.router = router

    def start(self, command: StartJob) -> None:
        """Start a job: its entry message is queued."""
        job = self.jobs.open(command.state, command.timeout)
        self.jobs.submitted(job, command.routine_id, command.slot)
        if job.history:  # 0.10's first record
            command.state.record_execution(command.routine_id, "start", command.params)
        delivery = Delivery(
            root_id(job.job_id), job, command.routine_id, command.slot, command.params
        )
        self.router.enqueue(job, delivery)

    def adopt(self, records: list[dict[str, Any]]) -> None:
        """Take over jobs restored from a checkpoint (or job intents)."""
        for record in records:
            state = record["state"]
            paused = state.status == "paused"
            job = self.jobs.open(state, record.get("timeout"), paused=paused)
            job.slot_data = record.get("slot_data") or {}
            if not paused:
                state.set_status("running")
            for item in expand_queue(record["queue"]):
                self.router.enqueue(job, delivery_from_record(item, job))
            self.jobs.settle(job)

    def pause(self, command: PauseJob) -> None:
        """Stop starting steps of a job; it is paused once its steps ended."""
        state = command.state
        job = self.jobs.find(state)
        if job is None or not job.running:
            return
        job.running = False
        job.pausing = True
        state.add_pause_point(
            command.reason, command.checkpoint, queued=job.queued, in_flight=job.in_flight
        )
        self.jobs.settle(job)

    def resume(self, state: Any) -> None:
        """Run a paused job again; its deferred events are emitted first."""
        job = self.jobs.find(state)
        if job is None:
            raise FlowStateError(
                f"job {state.job_id} is {state.status} and not known to this flow's "
                "supervisor; only a paused job can be resumed"
            )
        if job.running:
            return
        job.running = True
        job.pausing = False
        job.resumes += 1
        if job.returned:  # handed back while pausing: they go first, in order
            self.jobs.requeue_returned(job)
        state.pending_tasks = []
        state.set_status("running")
        self.ledger.bus.publish(JOB_RESUMED, self.ledger.flow_id, job.job_id)
        deferred, state.deferred_events = state.deferred_events, []
        targets_of = self.router.targets
        for i, event in enumerate(deferred):
            rid, name, data = event["routine_id"], event["event_name"], event["data"]
            if job.history:
                state.record_execution(rid, name, data)
            targets = targets_of.get((rid, name))
            if targets:
                message_id = root_id(job.job_id, f"deferred/{job.resumes}/{i}")
                self.router.route(job, message_id, targets, data)
        self.ledger.dispatcher.resume(job)
        self.jobs.settle(job)

    def cancel(self, command: CancelJob) -> None:
        """End a job as cancelled."""
        job = self.jobs.find(command.state)
        if job is not None and job.live:
            self.jobs.cancel(job, command.reason)
