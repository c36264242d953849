"""The HTTP endpoints: request in, JSON out (the page, and any client, use these).

Endpoints read their input strictly (unknown statuses, bad numbers, bodies that are
not JSON objects: 400 with a message) and leave the work to :class:`Monitor`.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from routilux.checkpoint.job_query import JobQuery
from routilux.exceptions import ConfigurationError
from routilux.runtime.bus import KINDS
from routilux.web import prom
from routilux.web.errors import ApiError
from routilux.web.graph import to_svg
from routilux.web.monitor import Monitor
from routilux.web.sse import Client, parse_last_id

ACTIONS = ("cancel", "pause", "resume")


def _monitor(request: Request) -> Monitor:
    return request.app.state.monitor


def _number(params: Any, key: str, default: int) -> int:
    value = params.get(key)
    if value is None or value == "":
        return default
    if not value.isdigit() or len(value) > 9:
        raise ApiError(400, f"{key} must be a whole number >= 0, got {value[:40]!r}")
    return int(value)


def _time(params: Any, key: str) -> float | None:
    """Epoch seconds, or an ISO 8601 date/time (local time if it has no zone)."""
    value = params.get(key)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            raise ApiError(
                400, f"{key} must be epoch seconds or an ISO 8601 time, got {value[:40]!r}"
            ) from None
    if not math.isfinite(number):
        raise ApiError(400, f"{key} must be a finite number of epoch seconds")
    return number


def _short(params: Any, key: str) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    if len(value) > 200:
        raise ApiError(400, f"{key} is longer than 200 characters")
    return value


def list_jobs(request: Request) -> JSONResponse:
    """``GET /api/jobs?status=&flow=&since=&until=&q=&limit=&offset=``."""
    params = request.query_params
    statuses = tuple(s for s in (params.get("status") or "").split(",") if s)
    try:
        query = JobQuery(
            status=statuses,
            flow_id=_short(params, "flow"),
            since=_time(params, "since"),
            until=_time(params, "until"),
            q=_short(params, "q"),
            limit=_number(params, "limit", 50),
            offset=_number(params, "offset", 0),
        )
    except ConfigurationError as exc:
        raise ApiError(400, str(exc)) from None
    return JSONResponse(_monitor(request).list_jobs(query))


def get_job(request: Request) -> JSONResponse:
    """``GET /api/jobs/{job_id}``."""
    return JSONResponse(_monitor(request).job(request.path_params["job_id"]))


async def read_json(request: Request, optional: bool = False) -> dict[str, Any]:
    """The request body as a JSON object (``optional``: an empty body is ``{}``)."""
    body = await request.body()
    if not body and optional:
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ApiError(415, "send the body as JSON with 'Content-Type: application/json'")
    try:  # strict JSON: NaN and Infinity are not numbers a client can mean
        data = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def submit_job(request: Request) -> JSONResponse:
    """``POST /api/jobs`` with ``{"flow", "params", "entry"?, "slot"?, "job_id"?, "timeout"?}``."""
    body = await read_json(request)
    job = await run_in_threadpool(_monitor(request).submit, body)
    return JSONResponse(job, status_code=201)


async def control_job(request: Request) -> JSONResponse:
    """``POST /api/jobs/{job_id}/cancel|pause|resume`` (optional ``{"reason"}``)."""
    action = request.path_params["action"]
    if action not in ACTIONS:
        raise ApiError(404, f"no action {action!r}; actions: {', '.join(ACTIONS)}")
    body = await read_json(request, optional=True)
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise ApiError(400, "'reason' must be a string of at most 500 characters")
    monitor = _monitor(request)
    job_id = request.path_params["job_id"]
    job = await run_in_threadpool(monitor.control, job_id, action, reason)
    return JSONResponse(job)


def list_flows(request: Request) -> JSONResponse:
    """``GET /api/flows``."""
    monitor = _monitor(request)
    return JSONResponse({"flows": monitor.flows(), "read_only": not monitor.runtime.flows})


def flow_graph(request: Request) -> Response:
    """``GET /api/flows/{flow_id}/graph`` (``?format=svg`` for the picture alone)."""
    graph = _monitor(request).graph(request.path_params["flow_id"])
    svg = to_svg(graph)
    if request.query_params.get("format") == "svg":
        return Response(svg, media_type="image/svg+xml")
    return JSONResponse(graph | {"svg": svg})


def metrics(request: Request) -> JSONResponse:
    """``GET /api/metrics``."""
    return JSONResponse(_monitor(request).metrics())


def prometheus(request: Request) -> Response:
    """``GET /metrics`` (Prometheus text format)."""
    return Response(prom.render(request.app.state.registry), media_type=prom.CONTENT_TYPE)


async def events(request: Request) -> StreamingResponse:
    """``GET /api/events?job=&flow=&kinds=`` as Server-Sent Events (see sse.py)."""
    params = request.query_params
    kinds = None
    if params.get("kinds"):
        kinds = frozenset(params["kinds"].split(","))
        unknown = sorted(kinds - KINDS)
        if unknown:
            raise ApiError(400, f"unknown event kind {unknown[0]!r}; kinds: {sorted(KINDS)}")
    try:
        last_id = parse_last_id(request.headers.get("last-event-id", params.get("last_event_id")))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    hub = _monitor(request).hub
    client = Client(_short(params, "job"), _short(params, "flow"), kinds, hub.client_queue)
    if len(hub.clients) >= hub.max_clients:
        raise ApiError(503, f"{hub.max_clients} clients already listen; try again later")
    return StreamingResponse(
        hub.stream(client, last_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
