"""Live updates: the event bus as Server-Sent Events (``GET /api/events``).

One :class:`Hub` per server is the only subscriber of the runtime's bus, and only
while at least one client listens (an unwatched runtime publishes nothing). Its
thread takes events in batches, encodes each once, and hands the batch to the
server's event loop, which queues it for every client that wants it.

The flows never wait for a client: the bus never blocks its publisher, and a
client's queue is bounded too. A client that falls behind loses events and gets a
``resync`` event in their place; it should then re-read what it shows. What the
clients cost the server is bounded as well: each write carries every event queued
since the last, and there are at most :data:`WRITES_PER_SECOND` of them for all
clients together (one per client per :data:`FLUSH_INTERVAL` at the least).

Every event is sent as ``id: <bus seq>``, ``event: <kind>`` and ``data: <JSON>``.
A client that reconnects with ``Last-Event-ID`` gets what it missed from the bus's
replay window, or a ``resync`` event when that is gone (or when the server
restarted: sequence numbers start again at 1).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from routilux.runtime.bus import RESYNC, BusEvent, EventBus, Subscription
from routilux.web.activity import StepLog

logger = logging.getLogger("routilux.web")

CLIENT_QUEUE = 5000  # encoded events held for one slow client
MAX_CLIENTS = 200
BATCH = 4096  # events the hub's thread takes from the bus per wake-up at most
COALESCE = 0.02  # after an event, the hub's thread waits this long for more
# At most one write per client per interval, and at most WRITES_PER_SECOND writes
# for all clients together: what live clients cost the server (and so the flows
# sharing its process) is bounded, however many events flow and clients listen.
FLUSH_INTERVAL = 0.05
WRITES_PER_SECOND = 200


def encode(event: BusEvent) -> bytes:
    """One event in SSE framing (``id``, ``event``, one ``data`` line of JSON)."""
    body = {
        "seq": event.seq,
        "time": event.time,
        "kind": event.kind,
        "flow_id": event.flow_id,
        "job_id": event.job_id,
        "data": event.data,
    }
    text = json.dumps(body, separators=(",", ":"), default=repr)
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {text}\n\n".encode()


def resync_chunk(seq: int, missed: int | None, reason: str) -> bytes:
    """A ``resync`` event: ``missed`` events are lost (None: unknown how many)."""
    data = {"missed": missed, "reason": reason}
    return encode(BusEvent(seq, 0.0, RESYNC, None, None, data))


class Filter(NamedTuple):
    """What one client asks for: a job, a flow, kinds (None: any)."""

    job: str | None
    flow: str | None
    kinds: frozenset[str] | None

    def wants(self, event: BusEvent) -> bool:
        """Whether ``event`` passes (a resync always does)."""
        if event.kind == RESYNC:
            return True
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.job is not None and event.job_id != self.job:
            return False
        return self.flow is None or event.flow_id == self.flow


class Client:
    """One SSE connection: its filter and its bounded queue (event-loop thread only)."""

    def __init__(
        self, job: str | None, flow: str | None, kinds: frozenset[str] | None, size: int
    ) -> None:
        self.filter = Filter(job, flow, kinds)
        self.size = size
        self.queue: deque[tuple[int, bytes]] = deque()
        self.missed = 0
        self.wake = asyncio.Event()
        self.ping = False  # set by the hub's keep-alive tick when idle
        self.written = 0.0  # loop time of the last write

    def push(self, items: list[tuple[int, bytes]]) -> None:
        """Queue ``(seq, chunk)`` items; those beyond the bound are counted missed."""
        room = max(self.size - len(self.queue), 0)
        if len(items) <= room:
            self.queue.extend(items)
        else:
            self.queue.extend(items[:room])
            self.missed += len(items) - room
        self.wake.set()


class _Interest(NamedTuple):
    """The clients' filters, by job (read by the hub's thread: replaced, never changed)."""

    any_job: tuple[Filter, ...]
    by_job: dict[str, tuple[Filter, ...]]

    def wants(self, event: BusEvent) -> bool:
        if any(f.wants(event) for f in self.any_job):
            return True
        return any(f.wants(event) for f in self.by_job.get(event.job_id or "", ()))


class Hub:
    """Fans the bus out to SSE clients (see the module docstring).

    The hub subscribes to the kinds its clients want (their union), so step events,
    the costly ones, are published only while a client asks for them; and it
    encodes only the events some client takes. When the union of kinds changes, a
    new subscription starts before the old one ends, and the hub's thread reads the
    old one to its end before the new one (skipping what both saw): no event is
    lost or repeated in the change.
    """

    def __init__(self, bus: EventBus, steps: StepLog) -> None:
        self.bus = bus
        self.steps = steps
        self.clients: set[Client] = set()
        self.closed = False
        self.keepalive = 15.0
        self.flush_interval = FLUSH_INTERVAL
        self.writes_per_second = WRITES_PER_SECOND
        self.client_queue = CLIENT_QUEUE
        self.max_clients = MAX_CLIENTS
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscription: Subscription | None = None
        self._kinds: frozenset[str] | None = frozenset()
        self._interest = _Interest((), {})
        self._tick: asyncio.TimerHandle | None = None
        self._pumping = False
        self._lock = threading.Lock()

    # -- the bus side (the hub's thread) ---------------------------------------------
    def _pump(self) -> None:
        loop = self._loop
        assert loop is not None
        last = 0
        with self._lock:
            subscription = self._subscription
        while subscription is not None:
            batch = self._take(subscription)
            if batch is None:  # that subscription ended: go on with its successor
                with self._lock:
                    subscription = self._subscription
                    if subscription is None:
                        self._pumping = False
                continue
            interest = self._interest
            encoded = []
            for event in batch:
                if event.kind != RESYNC:
                    if event.seq <= last:
                        continue  # seen on the previous subscription
                    last = event.seq
                try:
                    self.steps.feed(event)
                except Exception:  # a derived view; it must not end the live one
                    logger.exception("monitor: cannot record bus event %s", event.kind)
                if interest.wants(event):
                    encoded.append((event, encode(event)))
            if not encoded:
                continue
            try:
                loop.call_soon_threadsafe(self._deliver, encoded)
            except RuntimeError:  # the loop is closed: the server stopped
                return

    @staticmethod
    def _take(subscription: Subscription) -> list[BusEvent] | None:
        """The next events (None once ``subscription`` is closed and drained)."""
        first = subscription.get()
        if first is None:
            return None
        time.sleep(COALESCE)  # let a burst gather: one hand-over for many events
        batch = [first]
        while len(batch) < BATCH:
            more = subscription.get(timeout=0)
            if more is None:
                break
            batch.append(more)
        return batch

    # -- the client side (the event loop's thread) ------------------------------------
    def _deliver(self, batch: list[tuple[BusEvent, bytes]]) -> None:
        by_job: dict[str | None, list[tuple[BusEvent, bytes]]] | None = None
        matches: dict[Filter, list[tuple[int, bytes]]] = {}
        for client in self.clients:
            wanted = client.filter
            items = matches.get(wanted)
            if items is None:
                source = batch
                if wanted.job is not None:
                    if by_job is None:
                        by_job = {}
                        for pair in batch:
                            by_job.setdefault(pair[0].job_id, []).append(pair)
                    source = by_job.get(wanted.job, []) + by_job.get(None, [])
                    source.sort(key=lambda pair: pair[0].seq)
                items = [(e.seq, chunk) for e, chunk in source if wanted.wants(e)]
                matches[wanted] = items
            if items:
                client.push(items)

    def attach(self, client: Client) -> None:
        """Start sending events to ``client`` (subscribes to the bus if needed)."""
        self._loop = asyncio.get_running_loop()
        self.clients.add(client)
        self._follow()

    def detach(self, client: Client) -> None:
        """Stop sending to ``client`` (unsubscribes from the bus if it was the last)."""
        self.clients.discard(client)
        self._follow()

    def _follow(self) -> None:
        """Subscribe to what the clients want now (nothing if there are none)."""
        filters = {c.filter for c in self.clients}
        by_job: dict[str, tuple[Filter, ...]] = {}
        for f in filters:
            if f.job is not None:
                by_job[f.job] = (*by_job.get(f.job, ()), f)
        self._interest = _Interest(tuple(f for f in filters if f.job is None), by_job)
        if not filters or self.closed:
            kinds: frozenset[str] | None = frozenset()
        elif any(f.kinds is None for f in filters):
            kinds = None
        else:
            kinds = frozenset().union(*(f.kinds for f in filters if f.kinds))
        self._keep_alive_ticks()
        if kinds == self._kinds:
            return
        self._kinds = kinds
        new = None if kinds == frozenset() else self.bus.subscribe(kinds=kinds, maxsize=20_000)
        with self._lock:
            old, self._subscription = self._subscription, new
            start = new is not None and not self._pumping
            if start:
                self._pumping = True
        if old is not None:
            old.close()  # after the new one started: the pump reads both, in order
        if start:
            threading.Thread(target=self._pump, name="routilux-web-hub", daemon=True).start()

    def _keep_alive_ticks(self) -> None:
        """One timer for every client: a comment to those idle for ``keepalive``."""
        if self.clients and not self.closed and self._tick is None:
            assert self._loop is not None
            self._tick = self._loop.call_later(self.keepalive / 2, self._ping)
        elif (not self.clients or self.closed) and self._tick is not None:
            self._tick.cancel()
            self._tick = None

    def _ping(self) -> None:
        self._tick = None
        due = self._loop.time() - self.keepalive  # type: ignore[union-attr]
        for client in self.clients:
            if client.written <= due:
                client.ping = True
                client.wake.set()
        self._keep_alive_ticks()

    def close(self) -> None:
        """End every stream (server shutdown); call on the event loop's thread."""
        self.closed = True
        for client in list(self.clients):
            client.wake.set()
        self._follow()

    def replay(self, client: Client, last_id: int) -> tuple[list[bytes], int]:
        """What ``client`` missed after ``last_id``: chunks, and the seq they reach."""
        if last_id > self.bus.last_seq:
            return [resync_chunk(0, None, "the server restarted")], 0
        events = self.bus.since(last_id)
        if events is None:
            reason = "the events after Last-Event-ID are no longer kept"
            return [resync_chunk(self.bus.last_seq, None, reason)], self.bus.last_seq
        chunks = [encode(e) for e in events if client.filter.wants(e)]
        return chunks, events[-1].seq if events else last_id

    async def stream(self, client: Client, last_id: int | None) -> AsyncIterator[bytes]:
        """The response body of one SSE connection."""
        if self.closed:
            return
        self.attach(client)  # here, not before: only a started stream detaches
        loop = asyncio.get_running_loop()
        try:
            yield b"retry: 2000\n: routilux events\n\n"
            client.written = loop.time()
            sent = 0
            if last_id is not None:
                chunks, sent = self.replay(client, last_id)
                if chunks:
                    yield b"".join(chunks)
            while not self.closed:
                if not client.queue and not client.missed:
                    client.wake.clear()
                    await client.wake.wait()
                    if client.ping and not client.queue and not client.missed:
                        client.ping = False
                        client.written = loop.time()
                        yield b": keep-alive\n\n"
                    continue
                interval = max(self.flush_interval, len(self.clients) / self.writes_per_second)
                pause = client.written + interval - loop.time()
                if pause > 0:  # busy: one write per interval carries everything since
                    await asyncio.sleep(pause)
                items, missed = list(client.queue), client.missed
                client.queue.clear()
                client.missed = 0
                out = [chunk for seq, chunk in items if seq > sent]
                if items:
                    sent = max(sent, items[-1][0])
                if missed:
                    out.append(resync_chunk(sent, missed, "this client fell behind"))
                if out:
                    client.ping = False
                    client.written = loop.time()
                    yield b"".join(out)
        finally:
            self.detach(client)


def parse_last_id(value: Any) -> int | None:
    """A ``Last-Event-ID`` value as a sequence number (None if absent)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text.isdigit() or len(text) > 18:
        raise ValueError(f"Last-Event-ID must be a bus sequence number, got {text[:40]!r}")
    return int(text)
