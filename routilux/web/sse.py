"""Live updates: the event bus as Server-Sent Events (``GET /api/events``).

One :class:`Hub` per server is the only subscriber of the runtime's bus, and only
while at least one client listens (an unwatched runtime publishes nothing). Its
thread takes events in batches, encodes each once, and hands the batch to the
server's event loop, which queues it for every client that wants it.

Nothing here can slow the flows down: the bus never blocks its publisher, and a
client's queue is bounded too. A client that falls behind loses events and gets a
``resync`` event in their place; it should then re-read what it shows.

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
from typing import Any

from routilux.runtime.bus import RESYNC, BusEvent, EventBus, Subscription
from routilux.web.activity import StepLog

logger = logging.getLogger("routilux.web")

CLIENT_QUEUE = 5000  # encoded events held for one slow client
MAX_CLIENTS = 200
BATCH = 512  # events the hub's thread takes from the bus per wake-up
COALESCE_AT, COALESCE = 64, 0.01  # a batch this large: wait this long before the next


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


class Client:
    """One SSE connection: its filters and its bounded queue (event-loop thread only)."""

    def __init__(
        self, job: str | None, flow: str | None, kinds: frozenset[str] | None, size: int
    ) -> None:
        self.job = job
        self.flow = flow
        self.kinds = kinds
        self.size = size
        self.queue: deque[tuple[int, bytes]] = deque()
        self.missed = 0
        self.wake = asyncio.Event()

    def wants(self, event: BusEvent) -> bool:
        """Whether this client's filters take ``event`` (resync: always)."""
        if event.kind == RESYNC:
            return True
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.job is not None and event.job_id != self.job:
            return False
        return self.flow is None or event.flow_id == self.flow

    def push(self, seq: int, chunk: bytes) -> None:
        if len(self.queue) >= self.size:
            self.missed += 1
        else:
            self.queue.append((seq, chunk))
        self.wake.set()


class Hub:
    """Fans the bus out to SSE clients (see the module docstring).

    The hub subscribes to the kinds its clients want (their union), so step events,
    the costly ones, are published only while a client asks for them. When that
    union changes, a new subscription starts before the old one ends, and the hub's
    thread reads the old one to its end before the new one (skipping what both
    saw): no event is lost or repeated in the change.
    """

    def __init__(self, bus: EventBus, steps: StepLog) -> None:
        self.bus = bus
        self.steps = steps
        self.clients: set[Client] = set()
        self.closed = False
        self.keepalive = 15.0
        self.client_queue = CLIENT_QUEUE
        self.max_clients = MAX_CLIENTS
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscription: Subscription | None = None
        self._kinds: frozenset[str] | None = frozenset()
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
                encoded.append((event, encode(event)))
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
        batch = [first]
        while len(batch) < BATCH:
            more = subscription.get(timeout=0)
            if more is None:
                break
            batch.append(more)
        if len(batch) >= COALESCE_AT:
            time.sleep(COALESCE)  # busy: fewer, larger batches (less GIL for us)
        return batch

    # -- the client side (the event loop's thread) ------------------------------------
    def _deliver(self, batch: list[tuple[BusEvent, bytes]]) -> None:
        for client in self.clients:
            for event, chunk in batch:
                if client.wants(event):
                    client.push(event.seq, chunk)

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
        if not self.clients or self.closed:
            kinds: frozenset[str] | None = frozenset()
        elif any(c.kinds is None for c in self.clients):
            kinds = None
        else:
            kinds = frozenset().union(*(c.kinds for c in self.clients if c.kinds))
        if kinds == self._kinds:
            return
        self._kinds = kinds
        new = None if kinds == frozenset() else self.bus.subscribe(kinds=kinds, maxsize=50_000)
        with self._lock:
            old, self._subscription = self._subscription, new
            start = new is not None and not self._pumping
            if start:
                self._pumping = True
        if old is not None:
            old.close()  # after the new one started: the pump reads both, in order
        if start:
            threading.Thread(target=self._pump, name="routilux-web-hub", daemon=True).start()

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
        chunks = [encode(e) for e in events if client.wants(e)]
        return chunks, events[-1].seq if events else last_id

    async def stream(self, client: Client, last_id: int | None) -> AsyncIterator[bytes]:
        """The response body of one SSE connection."""
        if self.closed:
            return
        self.attach(client)  # here, not before: only a started stream detaches
        try:
            yield b"retry: 2000\n: routilux events\n\n"
            sent = 0
            if last_id is not None:
                chunks, sent = self.replay(client, last_id)
                if chunks:
                    yield b"".join(chunks)
            while not self.closed:
                if not client.queue and not client.missed:
                    client.wake.clear()
                    try:
                        await asyncio.wait_for(client.wake.wait(), self.keepalive)
                    except asyncio.TimeoutError:
                        yield b": keep-alive\n\n"
                    continue
                items, missed = list(client.queue), client.missed
                client.queue.clear()
                client.missed = 0
                out = [chunk for seq, chunk in items if seq > sent]
                if items:
                    sent = max(sent, items[-1][0])
                if missed:
                    out.append(resync_chunk(sent, missed, "this client fell behind"))
                if out:
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
