"""Flows and HTTP helpers of the web monitor tests.

``call`` speaks plain HTTP (http.client) to the server under test; ``EventStream``
reads its Server-Sent Events with a deadline on every read. Flows here are small
and deterministic: ``Gate`` blocks its step until the test opens it. ``Source`` and
``wait_until`` are the shared ones (tests/helpers.py).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from helpers import Source, wait_until

from routilux import ErrorHandler, ErrorStrategy, Flow, Routine

__all__ = ["FailingSink", "Gate", "Source", "call", "chain", "wait_until"]


class Gate(Routine):
    """Passes ``x`` on once ``gate`` (a threading.Event) is open."""

    def __init__(self, gate: threading.Event | None = None):
        super().__init__()
        self.gate = gate
        self.define_slot("in", handler=self.take)
        self.define_event("out", ["x"])

    def take(self, x):
        if self.gate is not None:
            self.gate.wait(30)
        self.emit("out", x=x)

    def __getstate__(self):  # the Event cannot be pickled into a checkpoint
        return {k: v for k, v in vars(self).items() if k != "gate"}

    def __setstate__(self, state):
        vars(self).update(state)
        self.gate = None


class FailingSink(Routine):
    """Fails on ``x == fail_on`` (retried ``retries`` times, then let go)."""

    def __init__(self, fail_on: int | None = None, retries: int = 0):
        super().__init__()
        self.fail_on = fail_on
        self.define_slot("in", handler=self.take)
        if retries:
            self.set_error_handler(  # retries spent: the job goes on without the message
                ErrorHandler(
                    ErrorStrategy.RETRY, max_retries=retries, retry_delay=0.01,
                    on_exhausted="continue",
                )
            )

    def take(self, x):
        if x == self.fail_on:
            raise ValueError(f"bad x {x}")


def chain(flow_id: str = "web", gate: threading.Event | None = None, **sink: Any) -> Flow:
    """source -> gate -> sink."""
    flow = Flow(flow_id, execution_strategy="concurrent")
    flow.add_routine(Source(), "source")
    flow.add_routine(Gate(gate), "gate")
    flow.add_routine(FailingSink(**sink), "sink")
    flow.connect("source", "out", "gate", "in")
    flow.connect("gate", "out", "sink", "in")
    return flow


def served_flow() -> Flow:
    """The flow `routilux serve --flows` hosts in the CLI tests."""
    return chain("served")


# ------------------------------------------------------------------ HTTP
def call(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    csrf: bool = True,
) -> tuple[int, dict[str, str], Any]:
    """One request; returns ``(status, headers, JSON body or text)``. State changes
    carry the page's same-origin header unless ``csrf`` is False."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    sent = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    if method != "GET" and csrf:
        sent.setdefault("X-Routilux-Request", "1")
    try:
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        payload = response.read()
        got = {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()
    if got.get("content-type", "").startswith("application/json"):
        return response.status, got, json.loads(payload)
    return response.status, got, payload.decode()


class EventStream:
    """A client of ``/api/events``: ``next()`` returns the next event or comment."""

    def __init__(self, url: str, query: str = "", headers: dict[str, str] | None = None):
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.conn.request("GET", "/api/events" + (f"?{query}" if query else ""),
                          headers=headers or {})
        self.response = self.conn.getresponse()
        self.status = self.response.status

    def next(self, timeout: float = 20.0) -> dict[str, Any]:
        """``{"id", "event", "data"}`` of the next event, or ``{"comment"}``."""
        self.conn.sock.settimeout(timeout)
        frame: dict[str, Any] = {}
        while True:
            line = self.response.fp.readline()
            if not line:
                raise EOFError("the event stream ended")
            text = line.decode().rstrip("\n")
            if text == "":
                if frame:
                    return frame
                continue
            field, _, value = text.partition(": ")
            if text.startswith(":"):
                frame.setdefault("comment", text[1:].strip())
            elif field == "data":
                frame["data"] = json.loads(value)
            elif field in ("id", "event", "retry"):
                frame[field] = value

    def events(self, until, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Events (comments skipped) up to and including the first that ``until`` accepts."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            frame = self.next(max(deadline - time.monotonic(), 0.01))
            if "event" not in frame:
                continue
            seen.append(frame)
            if until(frame):
                return seen

    def close(self) -> None:
        self.conn.close()

