"""Process-backed routine actors: the routine runs in its own OS process.

The parent side of one replica is a pykka actor (it writes steps to the child) plus
a reader thread (it turns the child's frames into supervisor messages). The child
(:mod:`routilux.runtime.child`) is forked from the worker template or started as a
fresh interpreter; with a warm spare, a second one waits to take over.

Death is noticed from the OS: the child's end of the socket closes the instant the
process dies, the reader gets end-of-file and reaps the exit status.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from routilux.exceptions import SerializationError
from routilux.runtime.child import ChildProcess, exit_description
from routilux.runtime.mailbox import QuickActor
from routilux.runtime.messages import (
    CRASHED,
    DEFER,
    DONE,
    DONE_BATCH,
    EMIT,
    OUTPUT,
    REPORT,
    RESTARTED,
    RETURNED,
    SUSPEND,
    UNSUSPEND,
    ErrorInfo,
)
from routilux.runtime.step import PIPELINE_STEPS, error_info
from routilux.runtime.wire import Packer, pack_one, unpack

if TYPE_CHECKING:
    from routilux.runtime.messages import Delivery

logger = logging.getLogger("routilux.process")

DIRECT_WRITE_LIMIT = 16 * 1024  # a batch up to this size is written by the supervisor...
DIRECT_PIPE_LIMIT = 48 * 1024  # ... while the child has at most this much unread
CREDIT_BUDGET = 0.005  # seconds of steps a replica is handed ahead (see credit())
MAX_CREDIT = 4 * PIPELINE_STEPS  # the child runs steps while we route what it sent
MIN_CREDIT = 2


class ProcessRoutineActor(QuickActor):
    """Parent side of one process replica: sends steps, reads results."""

    use_daemon_thread = True

    def __init__(
        self,
        handle: Any,
        routine_id: str,
        routine_bytes: bytes,
        env: Any,
        timeout: float | None,
        warm_spare: bool = False,
    ) -> None:
        super().__init__()
        self.warm_spare = warm_spare
        self.spare: ChildProcess | None = None  # started and loaded, waiting to take over
        self.handle = handle
        self.routine_id = routine_id
        self.routine_bytes = routine_bytes
        self.env = env
        self.timeout = timeout
        self.child: ChildProcess | None = None
        self.inflight: dict[int, Delivery] = {}
        self.sent_at: dict[int, float] = {}
        self.cost: dict[int, int] = {}  # bytes of each step's share of its batch
        self.seq = 0
        self.packer = Packer()  # the supervisor thread's
        self.bytes_out = 0  # batch bytes handed to the child (supervisor thread counts)
        self.bytes_back = 0  # ... of steps since ended or lost (reader thread counts)
        self.large_sent = 0  # frames handed to our thread (supervisor thread counts)
        self.large_written = 0  # ... and written by it (our thread counts)
        self.step_time = 0.0  # recent step duration, smoothed (reader thread writes)
        self.entry: Any = None  # the routine's ledger entry, whose credit we adapt
        self.stopping = False
        self.timed_out = False
        self.last_done = time.monotonic()
        handle.direct = self
        self.reader: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    def on_start(self) -> None:
        self.handle.thread = threading.current_thread()

    def spawn(self, state_bytes: bytes | None) -> int:
        """Start (or restart) the child; returns its pid. A warm spare, if one waits,
        takes over instead of a new process."""
        spare, self.spare = self.spare, None
        if spare is not None and spare.activate(state_bytes):
            self.child = spare
        else:
            if spare is not None:  # it died waiting
                spare.kill()
                spare.reap()
                spare.close()
            self.child = ChildProcess(self.routine_id, self.routine_bytes, state_bytes)
        if self.warm_spare:
            self.actor_ref.tell(("start_spare",))  # after this start is reported
        self.reader = threading.Thread(
            target=self._read,
            args=(self.child,),
            daemon=True,
            name=f"routilux-reader-{self.routine_id}#{self.handle.index}",
        )
        self.reader.start()
        return self.child.pid

    def _cmd_start_spare(self) -> None:
        if self.stopping or self.spare is not None:
            return
        try:
            self.spare = ChildProcess(self.routine_id, self.routine_bytes, None, spare=True)
        except Exception as exc:  # no spare: the next crash starts a process
            logger.warning("routine %r: no warm spare: %s", self.routine_id, exc)

    def _drop_spare(self) -> None:
        spare, self.spare = self.spare, None
        if spare is not None:
            spare.close()  # it exits at the end of its channel
            if spare.reap(2.0) is None:
                spare.kill()

    def on_stop(self) -> None:
        self.stopping = True
        self._drop_spare()
        child = self.child
        if child is None:
            return
        try:
            child.channel.send(pack_one(("stop",)))
        except OSError:
            pass
        if child.reap(2.0) is None:
            child.kill()
        child.close()
        if self.reader is not None:
            self.reader.join(5.0)

    def on_failure(self, *exc_info: Any) -> None:
        self._drop_spare()
        if self.child is not None:
            self.child.kill()
            self.child.reap()
            self.child.close()

    # -- steps -----------------------------------------------------------------------
    def credit(self) -> int:
        """How many deliveries this replica should hold: about ``CREDIT_BUDGET``
        seconds of its recent steps, so tiny steps travel many to a write while a
        long step does not keep a queue of others from the other replicas (or from
        a pause or cancel, which only stops what has not been sent)."""
        step_time = self.step_time
        if step_time <= 0.0:
            return MIN_CREDIT
        return max(MIN_CREDIT, min(MAX_CREDIT, int(CREDIT_BUDGET / step_time)))

    def submit(self, batch: list[Delivery]) -> None:
        """Send steps to the child, all in one write. Called on the supervisor's thread.

        A small batch is written straight to the socket while the child has little
        unread, so the write cannot block. Large batches (and everything behind one,
        to keep order) go through this actor's own thread, so a slow child never
        stalls the supervisor.
        """
        post = self.env.mailbox.post
        handle = self.handle
        child = self.child
        alive = child is not None and child.popen.returncode is None
        packer = self.packer
        add = packer.add
        inflight = self.inflight
        timeout = self.timeout
        seqs = []
        seq = self.seq
        for delivery in batch:
            if not alive or not delivery.job.running:
                post((RETURNED, handle, [delivery]))
                continue
            seq += 1
            try:
                add(
                    ("step", seq, delivery.slot, delivery.call_data, delivery.job.job_id),
                    lambda d=delivery: f"data for routine {self.routine_id!r} slot {d.slot!r}:",
                    delivery.call_data,
                )
            except SerializationError as exc:
                seq -= 1
                clock = time.perf_counter()
                post((DONE, handle, delivery, ErrorInfo.from_exception(exc), clock, clock))
                continue
            inflight[seq] = delivery
            seqs.append(seq)
        self.seq = seq
        if timeout is not None and seqs:
            now = time.monotonic()
            for sent in seqs:
                self.sent_at[sent] = now
                self._watch(child, sent, timeout)
        if not seqs:
            return
        payload = packer.take()
        share = len(payload) // len(seqs)
        cost = self.cost
        for seq in seqs:
            cost[seq] = share
        unread = self.bytes_out - self.bytes_back
        self.bytes_out += share * len(seqs)
        if (
            self.large_sent != self.large_written
            or len(payload) > DIRECT_WRITE_LIMIT
            or unread > DIRECT_PIPE_LIMIT
        ):
            self.large_sent += 1
            self.actor_ref.tell(("write", child, seqs, payload))
        else:
            self._write(child, seqs, payload)
        credit = self.credit()
        entry = self.entry
        if entry is not None and entry.credit != credit:
            entry.credit = credit

    def _watch(self, child: ChildProcess, seq: int, delay: float) -> None:
        """Kill the child if step ``seq`` runs past the routine's timeout.

        A step starts when it is sent or when the step before it ended, whichever
        is later; the check re-arms itself until the step is done.
        """

        def check() -> None:
            sent = self.sent_at.get(seq)
            if sent is None or child is not self.child:
                return  # done, or the child was already replaced
            earlier = [s for s in list(self.inflight) if s < seq]  # snapshot: threads
            started = max(sent, self.last_done) if not earlier else None
            now = time.monotonic()
            if started is not None and now - started >= self.timeout:
                self.timed_out = True
                child.kill()
            else:
                remaining = self.timeout - (now - started) if started is not None else self.timeout
                self.env.timers.call_later(remaining, check)

        self.env.timers.call_later(delay, check)

    def _write(self, child: ChildProcess, seqs: list[int], payload: bytes) -> None:
        try:
            child.channel.send(payload)
        except OSError:
            # The child died. Whoever pops a step first reports it: the reader (as
            # lost in the crash) or we (as returned, to be sent again).
            for seq in seqs:
                delivery = self.inflight.pop(seq, None)
                if delivery is not None:
                    self.sent_at.pop(seq, None)
                    self.bytes_back += self.cost.pop(seq, 0)
                    self.env.mailbox.post((RETURNED, self.handle, [delivery]))

    def on_receive(self, message: Any) -> Any:
        return getattr(self, "_cmd_" + message[0])(*message[1:])

    def _cmd_write(self, child: ChildProcess, seqs: list[int], payload: bytes) -> None:
        try:
            self._write(child, seqs, payload)
        finally:
            self.large_written += 1

    def _cmd_spawn(self, state_bytes: bytes | None) -> int:
        return self.spawn(state_bytes)

    def _cmd_respawn(self, state_bytes: bytes | None) -> None:
        """Restart after a crash; reports RESTARTED to the supervisor."""
        try:
            pid = self.spawn(state_bytes)
        except Exception as exc:
            self.env.mailbox.post((RESTARTED, self.handle, exc, None))
        else:
            self.env.mailbox.post((RESTARTED, self.handle, None, pid))

    def _cmd_kill(self) -> None:
        if self.child is not None:
            self.child.kill()

    # -- reading ---------------------------------------------------------------------
    def _read(self, child: ChildProcess) -> None:
        """Turn the child's frames into supervisor messages, in order, with one bell
        per frame (SUSPEND rings at once). A frame's successful steps go as one
        DONE_BATCH per job, as a thread replica's do; failed and retried steps one
        by one (DONE), after the batch before them."""
        mailbox = self.env.mailbox
        append = mailbox.items.append
        post = mailbox.post
        handle = self.handle
        rid = self.routine_id
        inflight = self.inflight
        sent_at = self.sent_at
        cost = self.cost
        gate = self.env.gate
        targets_of = self.env.targets
        channel = child.channel
        self.timed_out = False
        self.last_done = time.monotonic()
        while True:
            try:
                messages = unpack(channel.recv())
            except (EOFError, OSError):
                break
            done: list[Delivery] = []  # succeeded, not reported yet (one job)
            durations: list[float] = []
            first = last = 0.0
            back = ended_steps = 0
            step_time = self.step_time
            for message in messages:
                kind = message[0]
                if kind == "emit":
                    _, seq, n, event, data = message
                    delivery = inflight.get(seq)
                    if delivery is None:
                        continue
                    if gate.full or len(mailbox) > gate.limit:
                        targets = targets_of.get((rid, event), ())
                        if gate.must_wait(targets, rid):
                            if done:
                                append((DONE_BATCH, handle, done, durations, first, last))
                                done, durations = [], []
                            post((SUSPEND, handle, delivery, targets))  # rings
                            gate.wait(targets, rid)
                            post((UNSUSPEND, handle, delivery))
                    append((EMIT, delivery, n, rid, event, data))
                elif kind == "done":
                    _, seq, error, started, ended = message
                    delivery = inflight.pop(seq, None)
                    if sent_at:
                        sent_at.pop(seq, None)
                    back += cost.pop(seq, 0)
                    step_time += (ended - started - step_time) * 0.25
                    ended_steps += 1
                    if delivery is None:
                        continue
                    if error is None and not delivery.attempt:
                        if done and done[0].job is not delivery.job:
                            append((DONE_BATCH, handle, done, durations, first, last))
                            done, durations = [], []
                        if not done:
                            first = started
                        done.append(delivery)
                        durations.append(ended - started)
                        last = ended
                    else:  # failures and retried messages go one by one
                        if done:
                            append((DONE_BATCH, handle, done, durations, first, last))
                            done, durations = [], []
                        append((DONE, handle, delivery, error_info(error), started, ended))
                elif kind == "report":  # before the step ends it reports on
                    append((REPORT, handle, message[1], message[2]))
                elif kind == "output":
                    _, seq, output_type, data = message
                    delivery = inflight.get(seq)
                    if delivery is not None:
                        append((OUTPUT, delivery, rid, output_type, data))
                elif kind == "defer":
                    _, seq, event, data = message
                    delivery = inflight.get(seq)
                    if delivery is not None:
                        append((DEFER, delivery, rid, event, data))
            if done:
                append((DONE_BATCH, handle, done, durations, first, last))
            if ended_steps:
                self.bytes_back += back
                self.step_time = step_time
                self.last_done = time.monotonic()
            if not mailbox.rung and mailbox.items:  # Mailbox.post's ring, once a frame
                mailbox.ring()
        # The channel closed: a crash, or our own stop.
        returncode = child.reap()
        child.close()
        if self.stopping:
            return
        lost = [inflight.pop(seq) for seq in sorted(inflight)]
        sent_at.clear()
        self.bytes_back += sum(cost.values())
        cost.clear()
        reason = (
            f"step exceeded its timeout of {self.timeout:g} s"
            if self.timed_out
            else exit_description(returncode)
        )
        post((CRASHED, handle, reason, returncode, lost))
