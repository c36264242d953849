"""Fixtures of the web monitor tests: a Runtime with a real SQLite store, served by a
real uvicorn on 127.0.0.1 (port 0: a free port), closed at the end of the test."""

from __future__ import annotations

import threading

import pytest
from web_helpers import chain

from routilux import Runtime


@pytest.fixture
def gate():
    """A gate for the ``gate`` routine; opened at the end of the test."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def make_runtime(tmp_path):
    """``make_runtime(*flows, serve=True, **serve_kwargs) -> (runtime, url)``."""
    made: list[Runtime] = []

    def factory(*flows, serve: bool = True, store=None, **kwargs):
        runtime = Runtime(store or tmp_path / "store.sqlite3", checkpoint_interval=0.2)
        made.append(runtime)
        for flow in flows:
            runtime.add_flow(flow)
        url = runtime.serve_http("127.0.0.1", 0, **kwargs) if serve else None
        return runtime, url

    yield factory
    for runtime in made:
        runtime.shutdown()


@pytest.fixture
def served(make_runtime, gate):
    """A runtime hosting ``chain("web", gate)`` and its URL."""
    return make_runtime(chain("web", gate))
