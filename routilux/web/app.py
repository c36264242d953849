"""The Starlette application: routes, static page, error handlers, the guard."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from routilux.web import api, prom
from routilux.web.errors import EXCEPTION_HANDLERS
from routilux.web.monitor import Monitor
from routilux.web.security import Guard, Policy

STATIC = Path(__file__).parent / "static"


def _index(request: Request) -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def build_app(monitor: Monitor, policy: Policy) -> Starlette:
    """The monitor's ASGI application over ``monitor``, guarded by ``policy``."""
    routes = [
        Route("/", _index),
        Route("/api/jobs", api.list_jobs, methods=["GET"]),
        Route("/api/jobs", api.submit_job, methods=["POST"]),
        Route("/api/jobs/{job_id:path}/{action}", api.control_job, methods=["POST"]),
        Route("/api/jobs/{job_id:path}", api.get_job, methods=["GET"]),
        Route("/api/flows", api.list_flows),
        Route("/api/flows/{flow_id:path}/graph", api.flow_graph),
        Route("/api/metrics", api.metrics),
        Route("/api/events", api.events),
        Route("/metrics", api.prometheus),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, policy=policy)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.monitor = monitor
    app.state.registry = prom.registry_for(monitor)
    return app
