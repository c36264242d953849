"""Thread-backed routine actors: the routine object runs steps on its own thread."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from routilux._context import ExecutionContext, host_routine, set_current_step, unhost_routine
from routilux.runtime.mailbox import Mailbox, QuickActor
from routilux.runtime.messages import (
    CRASHED,
    DEFER,
    DONE,
    DONE_BATCH,
    EMIT,
    OUTPUT,
    RETURNED,
    SUSPEND,
    UNSUSPEND,
    ErrorInfo,
)

if TYPE_CHECKING:
    from routilux.routine import Routine
    from routilux.runtime.messages import Delivery

# Successful steps are reported together (DONE_BATCH) at the end of a batch, before
# anything else the replica says about the batch, and at least this often (seconds);
# a step that waits in emit() reports those before it first (see
# ThreadRoutineActor._run and StepContext._wait_for_room).
REPORT_EVERY = 0.005


class StepContext:
    """What ``Routine.emit`` talks to while a handler runs on a routine actor.

    One per actor, re-pointed at each delivery (allocation-free on the hot path).
    """

    __slots__ = (
        "actor",
        "delivery",
        "n",
        "post",
        "gate",
        "inbox",
        "routine",
        "routine_id",
        "env",
        "lock",
        "waiting",
        "batch",
        "index",
        "done",
        "durations",
        "first",
        "last",
    )

    def __init__(self, actor: Any, routine: Routine, routine_id: str, env: Any) -> None:
        self.actor = actor
        self.routine = routine
        self.routine_id = routine_id
        self.env = env
        self.post = env.mailbox.post
        self.gate = env.gate
        self.inbox = env.mailbox  # the supervisor's
        self.delivery: Delivery | None = None
        self.n = 0
        self.lock = threading.Lock()
        self.waiting = 0  # threads of the current step blocked by backpressure
        self.batch: list[Delivery] = []  # the batch being run, and the step's place
        self.index = 0  # in it (both set under ``lock``, see ThreadRoutineActor._run)
        # Steps that succeeded and are not reported yet: deliveries, durations, the
        # first one's start and the last one's end (perf_counter).
        self.done: list[Delivery] = []
        self.durations: list[float] = []
        self.first = 0.0
        self.last = 0.0

    @property
    def active(self) -> bool:
        """True while a handler of this actor runs."""
        return self.delivery is not None

    def _rid(self, routine: Routine) -> str:
        if routine is self.routine:
            return self.routine_id
        return self.env.routine_id_of(routine)

    def emit(self, routine: Routine, event_name: str, data: dict[str, Any]) -> None:
        """Post one emit of the current step to the supervisor (waits while targets are full)."""
        rid = self.routine_id if routine is self.routine else self.env.routine_id_of(routine)
        gate = self.gate
        if gate.full or len(self.inbox) > gate.limit:
            targets = self.env.targets.get((rid, event_name), ())
            if gate.must_wait(targets, rid):
                self._wait_for_room(gate, targets, rid)
        inbox = self.inbox
        with self.lock:  # helper threads may emit too: number and post in one go
            n = self.n
            self.n = n + 1
            inbox.items.append((EMIT, self.delivery, n, rid, event_name, data))
            if not inbox.rung:  # Mailbox.post, inlined on the busiest path
                inbox.ring()

    def _wait_for_room(self, gate: Any, targets: tuple[str, ...], rid: str) -> None:
        """Block in emit() until the targets have room; the supervisor hears of the
        step's suspension once, however many of its threads wait."""
        delivery = self.delivery
        with self.lock:
            self.waiting += 1
            if self.waiting == 1:
                self.report()  # a pause or a sequential job may wait on those
                if delivery is not None and delivery.job.serial:
                    self._hand_back_rest()
                self.post((SUSPEND, self.actor, delivery, targets))
        try:
            gate.wait(targets, rid)
        finally:
            with self.lock:
                self.waiting -= 1
                if self.waiting == 0:
                    self.post((UNSUSPEND, self.actor, delivery))

    def report(self) -> None:
        """Post the steps that succeeded since the last report (``lock`` held)."""
        if self.done:
            self.post((DONE_BATCH, self.actor, self.done, self.durations, self.first, self.last))
            self.done = []
            self.durations = []

    def _hand_back_rest(self) -> None:
        """A sequential job's run must not wait behind a step that cannot go on (it
        waits in emit(), or it failed): the rest of the run goes back unrun, before
        the SUSPEND or DONE that tells the supervisor (call with ``lock`` held)."""
        batch, cut = self.batch, self.index + 1
        if cut < len(batch):
            rest = batch[cut:]
            del batch[cut:]
            self.post((RETURNED, self.actor, rest))

    def defer(self, routine: Routine, event_name: str, data: dict[str, Any]) -> None:
        """Record an event to emit when the job is next resumed."""
        self.post((DEFER, self.delivery, self._rid(routine), event_name, data))

    def send_output(self, routine: Routine, output_type: str, data: dict[str, Any]) -> None:
        """Send output to the job's output handler."""
        self.post((OUTPUT, self.delivery, self._rid(routine), output_type, data))

    def context(self, routine: Routine) -> ExecutionContext:
        """``(flow, job_state, routine_id)`` of the current step."""
        return ExecutionContext(self.env.owner, self.delivery.job.state, self._rid(routine))


class ThreadRoutineActor(QuickActor):
    """Hosts one routine object and runs its steps one at a time."""

    use_daemon_thread = True  # never block interpreter exit; the flow stops us cleanly

    def __init__(
        self,
        handle: Any,
        routine: Routine,
        routine_id: str,
        env: Any,
        inbox: Mailbox,
    ) -> None:
        super().__init__()
        self.inbox = inbox  # batches from the supervisor; pykka only carries the bell
        self.handle = handle
        self.routine = routine
        self.routine_id = routine_id
        self.env = env
        self.step = StepContext(handle, routine, routine_id, env)
        self._batch: list[Delivery] = []

    def on_start(self) -> None:
        self.handle.thread = threading.current_thread()
        host_routine(self.routine, self.step)

    def on_stop(self) -> None:
        unhost_routine(self.routine, self.step)

    def on_receive(self, message: Any) -> None:
        """The bell: run every batch the supervisor queued since the last one."""
        batches = self.inbox.take_all()
        while batches:
            self._run(batches[0])
            batches.popleft()

    def _run(self, batch: list[Delivery]) -> None:
        env = self.env
        post = env.mailbox.post
        handle = self.handle
        slots = self.routine._slots  # get_slot without the call (names are checked)
        step = self.step
        lock = step.lock
        clock = time.perf_counter
        self._batch = step.batch = batch
        index = step.index = 0
        delivery = None
        error = None
        started = ended = 0.0
        previous = set_current_step(step)
        try:
            while True:
                # One locked block per step: report the step that ended, take the
                # next (the rest of a run may be handed back meanwhile, see
                # StepContext._wait_for_room).
                with lock:
                    if delivery is not None:
                        if error is None and not delivery.attempt:
                            if not step.done:
                                step.first = started
                            step.done.append(delivery)
                            step.durations.append(ended - started)
                            step.last = ended
                            if ended - step.first > REPORT_EVERY:
                                step.report()
                        else:  # failures and retried messages go one by one
                            step.report()
                            if error is not None and delivery.job.serial:
                                step._hand_back_rest()
                            post((DONE, handle, delivery, error, started, ended))
                        delivery = None
                    if index >= len(batch):
                        step.report()
                        break
                    step.index = index
                    index += 1
                    delivery = batch[index - 1]
                    if env.holding:  # a cut waits for what is in flight: no new step
                        step.report()
                        rest = batch[index - 1 :]
                        del batch[index - 1 :]
                        post((RETURNED, handle, rest))
                        delivery = None
                        continue
                    if not delivery.job.running:
                        step.report()
                        post((RETURNED, handle, [delivery]))
                        delivery = None
                        continue
                    step.delivery = delivery
                step.n = 0
                started = clock()
                try:
                    # A copy: what a handler does to its dict must not change what a
                    # retry, the history or a checkpoint sees.
                    slots[delivery.slot]._call(dict(delivery.call_data))
                    error = None
                except BaseException as exc:  # a handler's SystemExit must not stop pykka
                    error = ErrorInfo.from_exception(exc)
                ended = clock()
                step.delivery = None
        finally:
            set_current_step(previous)
        self._batch = step.batch = []

    def on_failure(self, *exc_info: Any) -> None:
        """The actor itself failed (not a handler): report the unfinished deliveries
        so the supervisor restarts the routine and redelivers them."""
        unhost_routine(self.routine, self.step)
        with self.step.lock:
            self.step.report()  # those ended; only what had not is lost
        lost = list(self._batch[self.step.index :])
        batches = self.inbox.items
        if batches and batches[0] is self._batch:
            batches.popleft()  # the batch that failed: counted above
        while batches:  # batches still waiting in our inbox would die with us
            lost.extend(batches.popleft())
        self.env.mailbox.post(
            (CRASHED, self.handle, f"thread actor failed: {exc_info[1]!r}", None, lost)
        )
