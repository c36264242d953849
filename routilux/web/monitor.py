"""What the monitor knows, and where it reads it: the Runtime and its store.

The monitor is a reader, never a second source of truth. Jobs are listed from the
store (paged and filtered there); a job this process hosts is shown from its live
JobState, any other from the record the store keeps of it. Routine figures come from
``flow.metrics()``; step bars and replica deaths from the event bus (activity.py).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import psutil

from routilux.checkpoint.format import decode
from routilux.checkpoint.job_query import JobQuery
from routilux.exceptions import CheckpointError, ConfigurationError, RoutiluxError
from routilux.job_state import JobState
from routilux.runtime.bus import ROUTINE_OUT_OF_SERVICE, ROUTINE_RESTARTED
from routilux.runtime.job_pickle import resolve_jobs
from routilux.web.activity import DeathLog, StepLog
from routilux.web.errors import ApiError, from_library
from routilux.web.graph import layout
from routilux.web.jobview import detail, header
from routilux.web.sse import Hub

if TYPE_CHECKING:  # the Runtime hosts the monitor (Runtime.serve_http)
    from routilux.service import Runtime

CACHED_JOBS = 128  # finished jobs read back from the store, kept decoded


class Monitor:
    """The monitor's view of one :class:`~routilux.Runtime` (see the module docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.steps = StepLog()
        self.deaths = DeathLog()
        self.hub = Hub(runtime.bus, self.steps)
        # Deaths are rare and must all be seen: always subscribed (costs nothing per step).
        self._deaths = runtime.bus.subscribe(
            self.deaths.feed, kinds=(ROUTINE_RESTARTED, ROUTINE_OUT_OF_SERVICE)
        )
        self.started = time.time()
        self._decoded: OrderedDict[str, JobState] = OrderedDict()
        self._decoded_lock = threading.Lock()  # requests run on a pool of threads
        self._samples: dict[tuple[str, str], tuple[float, int, float]] = {}
        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent(None)  # primes the counter

    @property
    def store(self) -> Any:
        """The checkpoint store the monitor reads history from."""
        return self.runtime.store

    def close(self) -> None:
        """Stop listening to the bus."""
        self._deaths.close()

    # ------------------------------------------------------------------ jobs
    def _hosted(self, job_id: str) -> JobState | None:
        try:
            return self.runtime.get_job(job_id)
        except ConfigurationError:
            return None

    def list_jobs(self, query: JobQuery) -> dict[str, Any]:
        """A page of jobs from the store; hosted jobs show their live status."""
        rows, total = self.store.query_jobs(query)
        for row in rows:
            state = self._hosted(row["job_id"])
            if state is not None:  # the store's row may be a checkpoint behind
                row.update({k: v for k, v in header(state).items() if k != "created_at"})
            end = row["finished_at"]
            row["duration"] = None if end is None else end - row["created_at"]
        return {"jobs": rows, "total": total, "limit": query.limit, "offset": query.offset}

    def job(self, job_id: str) -> dict[str, Any]:
        """The job page's data for ``job_id``."""
        state = self._hosted(job_id)
        live = state is not None and not state.is_terminal
        if state is None:
            state = self._from_store(job_id)
            if isinstance(state, dict):
                return state
        return detail(state, self.steps.bars(job_id), live)

    def _from_store(self, job_id: str) -> JobState | dict[str, Any]:
        with self._decoded_lock:
            if job_id in self._decoded:
                self._decoded.move_to_end(job_id)
                return self._decoded[job_id]
        row = self.store.job_row(job_id)
        if row is None:
            raise ApiError(404, f"no job {job_id!r} in this server or its store")
        flow_id, store = row["flow_id"], self.store
        where = f"{store.location} job {job_id}"
        try:
            blob = store.load_finished_job(flow_id, job_id)
            if blob is not None:
                state = decode(blob, store.key, flow_id, where)[1]
                with self._decoded_lock:  # finished: its record never changes
                    self._decoded[job_id] = state
                    while len(self._decoded) > CACHED_JOBS:
                        self._decoded.popitem(last=False)
                return state
            state = self._unfinished(flow_id, job_id, where)
        except CheckpointError as exc:
            return _row_only(row, f"its record cannot be read here: {exc}")
        if state is None:
            return _row_only(row, "the store holds no record of it beyond this line")
        return state

    def _unfinished(self, flow_id: str, job_id: str, where: str) -> JobState | None:
        store = self.store
        blob = store.load_latest(flow_id)
        if blob is not None:
            for record in decode(blob, store.key, flow_id, where)[1]["jobs"]:
                if record["state"].job_id == job_id:
                    resolve_jobs([record], store, flow_id, where)  # its history parts
                    return record["state"]
        for intent in store.intents(flow_id):
            record = decode(intent, store.key, flow_id, where)[1]
            if record["state"].job_id == job_id:
                return record["state"]
        return None

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start a job from a JSON body (see ``POST /api/jobs``)."""
        flow_id = _text(body, "flow", required=True)
        flow = self.runtime.flows.get(flow_id)
        if flow is None:
            raise ApiError(
                404, f"this server hosts no flow {flow_id!r}; flows: {sorted(self.runtime.flows)}"
            )
        slot = _text(body, "slot") or "trigger"
        entry = _text(body, "entry") or _default_entry(flow, slot)
        params = body.get("params", {})
        if not isinstance(params, dict):
            raise ApiError(400, "'params' must be a JSON object")
        timeout = body.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
        ):
            raise ApiError(400, "'timeout' must be a number of seconds > 0")
        try:
            state = self.runtime.submit(
                flow_id,
                entry,
                params,
                entry_slot=slot,
                timeout=timeout,
                job_id=_text(body, "job_id"),
            )
        except RoutiluxError as exc:
            raise from_library(exc) from None
        return header(state)

    def control(self, job_id: str, action: str, reason: str) -> dict[str, Any]:
        """Cancel, pause or resume a job this server hosts."""
        state = self._hosted(job_id)
        if state is None:
            row = self.store.job_row(job_id)
            if row is None:
                raise ApiError(404, f"no job {job_id!r} in this server or its store")
            raise ApiError(
                409,
                f"job {job_id} is {row['status']} and not running in this "
                "server; only its jobs can be controlled here",
            )
        try:
            if action == "cancel":
                self.runtime.cancel(job_id, reason)
            elif action == "pause":
                # paused once its running steps end: the page hears job.paused
                self.runtime.pause(job_id, reason, wait=False)
            else:
                self.runtime.resume(job_id)
        except RoutiluxError as exc:
            raise from_library(exc) from None
        return header(state)

    # ------------------------------------------------------------------ flows
    def flows(self) -> list[dict[str, Any]]:
        """Hosted flows (graph, entry candidates) and flows only known to the store."""
        result = []
        for flow_id, flow in sorted(self.runtime.flows.items()):
            result.append(
                {
                    "flow_id": flow_id,
                    "hosted": True,
                    "routines": sorted(flow.routines),
                    "entries": _entries(flow),
                    "strategy": flow.execution_strategy,
                }
            )
        hosted = set(self.runtime.flows)
        for info in self.store.list_flows():
            if info["flow_id"] not in hosted:
                result.append(
                    {
                        "flow_id": info["flow_id"],
                        "hosted": False,
                        "routines": [],
                        "entries": [],
                        "strategy": None,
                    }
                )
        return result

    def graph(self, flow_id: str) -> dict[str, Any]:
        """Nodes, edges and an SVG rendering of one hosted flow (``GET /api/flows/{id}/graph``)."""
        flow = self.runtime.flows.get(flow_id)
        if flow is None:
            raise ApiError(
                404,
                f"this server hosts no flow {flow_id!r} (a flow only in the "
                "store has no graph here: serve it with --flows)",
            )
        return layout(flow)

    # ------------------------------------------------------------------ figures
    def metrics(self) -> dict[str, Any]:
        """Routine figures with throughput, replicas and deaths, and the server's own."""
        now = time.time()
        flows = {}
        for flow_id, flow in sorted(self.runtime.flows.items()):
            routines = flow.metrics()
            for rid, figures in routines.items():
                figures["throughput"] = self._rate(flow_id, rid, now, figures["processed"])
            flows[flow_id] = {"routines": routines}
        memory = self._process.memory_info()
        return {
            "time": now,
            "server": {
                "pid": self._process.pid,
                "rss_bytes": memory.rss,
                "cpu_percent": self._process.cpu_percent(None),
                "threads": self._process.num_threads(),
                "uptime": now - self.started,
                "sse_clients": len(self.hub.clients),
                "bus_seq": self.runtime.bus.last_seq,
            },
            "flows": flows,
            "deaths": self.deaths_seen(),
        }

    def _rate(self, flow_id: str, rid: str, now: float, processed: int) -> float:
        """Messages per second since the previous sample (at least 0.5 s apart)."""
        key = (flow_id, rid)
        before = self._samples.get(key)
        if before is None:
            self._samples[key] = (now, processed, 0.0)
            return 0.0
        then, count, rate = before
        if now - then >= 0.5:
            rate = max(processed - count, 0) / (now - then)
            self._samples[key] = (now, processed, rate)
        return round(rate, 2)

    def deaths_seen(self) -> list[dict[str, Any]]:
        """Replica deaths: seen on the bus, and recorded by the jobs they hit, newest first."""
        records = self.deaths.records()
        seen = {(r["flow_id"], r["routine"], r["replica"], r["pid"]) for r in records}
        for state in self.runtime.jobs():
            for crash in list(state.crashes):
                key = (
                    state.flow_id,
                    crash.get("routine_id"),
                    crash.get("replica"),
                    crash.get("pid"),
                )
                if key in seen:
                    continue
                seen.add(key)
                records.append(
                    {
                        "time": crash.get("timestamp"),
                        "flow_id": state.flow_id,
                        "routine": crash.get("routine_id"),
                        "replica": crash.get("replica"),
                        "pid": crash.get("pid"),
                        "cause": crash.get("reason"),
                        "returncode": crash.get("returncode"),
                        "out_of_service": False,
                    }
                )
        records.sort(key=lambda r: r["time"] or 0.0, reverse=True)
        return records[:200]


def _row_only(row: dict[str, Any], why: str) -> dict[str, Any]:
    end = row["finished_at"]
    return row | {
        "live": False,
        "duration": None if end is None else end - row["created_at"],
        "unavailable": why,
    }


def _text(body: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise ApiError(400, f"'{key}' is required")
        return None
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ApiError(400, f"'{key}' must be a non-empty string of at most 200 characters")
    return value


def _entries(flow: Any) -> list[str]:
    """Routines with an unconnected ``trigger`` slot (where a job can start)."""
    fed = {id(c.target_slot) for c in flow.connections}
    return sorted(
        rid
        for rid, routine in flow.routines.items()
        if routine.get_slot("trigger") is not None and id(routine.get_slot("trigger")) not in fed
    )


def _default_entry(flow: Any, slot: str) -> str:
    fed = {id(c.target_slot) for c in flow.connections}
    candidates = [
        rid
        for rid, routine in flow.routines.items()
        if routine.get_slot(slot) is not None and id(routine.get_slot(slot)) not in fed
    ]
    if len(candidates) != 1:
        raise ApiError(
            400,
            f"say which routine starts the job with 'entry' (candidates for slot {slot!r}: "
            f"{sorted(candidates)})",
        )
    return candidates[0]
