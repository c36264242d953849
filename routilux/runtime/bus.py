"""The event bus: what is happening in a flow, published by its supervisor.

The supervisor publishes job and routine events; anything that wants to watch a
flow subscribes (the CLI's live progress, the web monitor, your own code). Nothing
else observes the runtime by reading its internals.

Rules of the bus:

- **The publisher never blocks.** Each subscription has a bounded queue. When a
  subscriber falls behind and its queue is full, newer events are dropped *for
  that subscriber only*, and the next thing it reads is a :data:`RESYNC` event.
  The event says how many events were missed. The subscriber should then re-read
  the state it shows (``flow.metrics()``, the job's JobState) rather than trust
  its running totals.
- **Order.** Events carry a bus-wide sequence number ``seq``, increasing by one
  per published event. A subscriber sees its events in ``seq`` order.
- **Replay.** The bus remembers the last ``replay`` events, so a consumer that
  reconnects (an SSE client with ``Last-Event-ID``) can ask for what it missed
  with :meth:`EventBus.since`.
- **Nothing is published when nobody listens.** The supervisor checks
  :attr:`EventBus.active` first, so an unwatched flow pays nothing per step; step
  events are published only while someone takes them (:attr:`EventBus.wanted`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from routilux.exceptions import ConfigurationError

logger = logging.getLogger("routilux.bus")

# Event kinds (the ``kind`` field of a BusEvent).
JOB_SUBMITTED = "job.submitted"  #: data: entry routine, slot
JOB_PAUSED = "job.paused"  #: data: reason
JOB_RESUMED = "job.resumed"
JOB_FINISHED = "job.finished"  #: data: status, error
STEP_STARTED = "step.started"  #: data: routine, replica, message_id (handed to the replica)
STEP_FINISHED = "step.finished"  #: data: routine, replica, message_id, duration, error
ROUTINE_RESTARTED = "routine.restarted"  #: data: routine, replica, cause, pid
ROUTINE_OUT_OF_SERVICE = "routine.out_of_service"  #: data: routine, reason
CHECKPOINT_WRITTEN = "checkpoint.written"  #: data: jobs, finished, seconds
METRICS = "metrics"  #: data: the per-routine figures of ``flow.metrics()``
RESYNC = "resync"  #: data: missed (events dropped for this subscriber)

KINDS = frozenset(
    {
        JOB_SUBMITTED,
        JOB_PAUSED,
        JOB_RESUMED,
        JOB_FINISHED,
        STEP_STARTED,
        STEP_FINISHED,
        ROUTINE_RESTARTED,
        ROUTINE_OUT_OF_SERVICE,
        CHECKPOINT_WRITTEN,
        METRICS,
    }
)


class BusEvent(NamedTuple):
    """One published event."""

    seq: int  #: bus-wide sequence number, from 1, one per published event
    time: float  #: when it was published (epoch seconds)
    kind: str  #: one of the kinds above, e.g. ``"job.finished"``
    flow_id: str | None  #: the flow it concerns
    job_id: str | None  #: the job it concerns (None for routine-wide events)
    data: dict[str, Any]  #: the kind's fields (see the kind constants)


class Subscription:
    """A subscriber's bounded queue of events.

    Read it with :meth:`get` (or iterate), or give :meth:`EventBus.subscribe` a
    callback and the subscription calls it on a thread of its own.
    """

    def __init__(self, bus: EventBus, kinds: frozenset[str] | None, maxsize: int) -> None:
        self._bus = bus
        self.kinds = kinds
        self.maxsize = maxsize
        self._items: deque[BusEvent] = deque()
        self._missed = 0
        self._condition = threading.Condition()
        self.closed = False
        self._thread: threading.Thread | None = None

    def wants(self, kind: str) -> bool:
        """Whether this subscription takes events of ``kind``."""
        return self.kinds is None or kind in self.kinds

    def offer(self, event: BusEvent) -> None:
        """Called by the publisher: queue ``event``, or count it missed if full."""
        with self._condition:
            if self.closed:
                return
            if len(self._items) >= self.maxsize:
                self._missed += 1
            else:
                if self._missed:
                    # The gap is reported before anything newer, in its place.
                    self._items.append(_resync(event.seq - 1, self._missed))
                    self._missed = 0
                self._items.append(event)
            self._condition.notify()

    def get(self, timeout: float | None = None) -> BusEvent | None:
        """The next event, waiting up to ``timeout`` seconds (None: forever).

        Returns None on timeout or once the subscription is closed and drained.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while not self._items:
                if self._missed:  # fell behind and nothing newer came: say so now
                    missed, self._missed = self._missed, 0
                    return _resync(self._bus.last_seq, missed)
                if self.closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._condition.wait(remaining)
            return self._items.popleft()

    def __iter__(self):
        while True:
            event = self.get()
            if event is None:
                return
            yield event

    def close(self) -> None:
        """Stop receiving events (a callback thread ends after the queued ones)."""
        self._bus._unsubscribe(self)
        with self._condition:
            self.closed = True
            self._condition.notify_all()

    def _run(self, callback: Callable[[BusEvent], Any]) -> None:
        for event in self:
            try:
                callback(event)
            except Exception:
                logger.exception("event bus subscriber %r failed on %s", callback, event.kind)


def _resync(seq: int, missed: int) -> BusEvent:
    return BusEvent(seq, time.time(), RESYNC, None, None, {"missed": missed})


class EventBus:
    """Thread-safe publish/subscribe of runtime events (see the module docstring)."""

    def __init__(self, replay: int = 1000) -> None:
        self._lock = threading.Lock()
        self._subscriptions: tuple[Subscription, ...] = ()
        self._recent: deque[BusEvent] = deque(maxlen=replay)
        self.last_seq = 0
        self.active = False  #: True while anyone subscribes (publishers check it first)
        #: the kinds some subscriber takes (for per-step kinds: check before building)
        self.wanted: frozenset[str] = frozenset()

    def subscribe(
        self,
        target: Callable[[BusEvent], Any] | None = None,
        kinds: Iterable[str] | None = None,
        maxsize: int = 10_000,
    ) -> Subscription:
        """Subscribe to events of ``kinds`` (default: all).

        With a callable ``target`` it is called with each event on a thread of the
        subscription's own (never the supervisor's); without one, read the returned
        :class:`Subscription`. ``maxsize`` bounds the events held for it.
        """
        wanted = None if kinds is None else frozenset(kinds)
        if wanted is not None and not wanted <= KINDS:
            raise ConfigurationError(
                f"unknown event kinds {sorted(wanted - KINDS)}; kinds: {sorted(KINDS)}"
            )
        if not isinstance(maxsize, int) or maxsize < 1:
            raise ConfigurationError(f"maxsize must be an int >= 1, got {maxsize!r}")
        subscription = Subscription(self, wanted, maxsize)
        if target is not None:
            if not callable(target):
                raise ConfigurationError(
                    f"subscribe() takes a callable or nothing, got {type(target).__name__}"
                )
            subscription._thread = threading.Thread(
                target=subscription._run, args=(target,), name="routilux-bus", daemon=True
            )
            subscription._thread.start()
        with self._lock:
            self._subscriptions += (subscription,)
            self._update_interest()
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)
            self._update_interest()

    def _update_interest(self) -> None:
        subscriptions = self._subscriptions
        self.active = bool(subscriptions)
        wanted: set[str] = set()
        for s in subscriptions:
            wanted |= KINDS if s.kinds is None else s.kinds
        self.wanted = frozenset(wanted)

    def wants(self, kind: str) -> bool:
        """Whether any subscriber takes ``kind`` (cheap; for costly payloads)."""
        return kind in self.wanted

    def publish(
        self, kind: str, flow_id: str | None, job_id: str | None = None, **data: Any
    ) -> BusEvent:
        """Publish one event to every subscriber that wants it; never blocks."""
        with self._lock:  # held while offering: every subscriber sees seq order
            self.last_seq += 1
            event = BusEvent(self.last_seq, time.time(), kind, flow_id, job_id, data)
            self._recent.append(event)
            for subscription in self._subscriptions:
                if subscription.wants(kind):
                    subscription.offer(event)
        return event

    def since(self, seq: int) -> list[BusEvent] | None:
        """Remembered events after ``seq``, or None if some of them were forgotten."""
        with self._lock:
            recent = list(self._recent)
            last = self.last_seq
        if seq >= last:
            return []
        if not recent or recent[0].seq > seq + 1:
            return None
        return [event for event in recent if event.seq > seq]
