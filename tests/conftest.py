"""Shared fixtures: every flow a test makes is shut down, no thread leaks, and every
helper program a test starts is killed at its end.

This directory is put on ``sys.path`` so that every test package imports the shared
helpers as ``helpers`` (see helpers.py).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import psutil
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from helpers import Program  # noqa: E402  (needs the path above)

from routilux import Flow  # noqa: E402


@pytest.fixture
def make_flow():
    """Factory for flows that are shut down at the end of the test."""
    flows: list[Flow] = []

    def factory(*args, **kwargs) -> Flow:
        flow = Flow(*args, **kwargs)
        flows.append(flow)
        return flow

    yield factory
    for flow in flows:
        flow.shutdown()


@pytest.fixture
def no_thread_leak():
    """Fail the test if it leaves threads running after its flows shut down."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def spawn(request, tmp_path):
    """``spawn(script, *args, env=None)``: run a helper program of the test's directory
    as a :class:`helpers.Program`. Every program a test started is SIGKILLed at the end
    of the test, with the processes it started, if it still runs."""
    here = request.path.parent
    started: list[Program] = []

    def factory(script: str, *args: str, env: dict | None = None) -> Program:
        program = Program(
            [str(here / script), *args], tmp_path / f"stderr-{len(started)}.txt", env
        )
        started.append(program)
        return program

    yield factory
    for program in started:
        for child in program.children():
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        program.close()
