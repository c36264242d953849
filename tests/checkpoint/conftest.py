"""Fixtures of the checkpoint tests: ``spawn`` runs a helper program of this directory.

``spawn(script, *args)`` returns a :class:`checkpoint_helpers.Program`; every program
a test started is killed at the end of the test if it still runs (by its pid, with
the processes it started).
"""

from __future__ import annotations

import psutil
import pytest
from checkpoint_helpers import HERE, Program


@pytest.fixture
def spawn(tmp_path):
    """``spawn(script, *args)``: run a helper script of this directory."""
    started: list[Program] = []

    def factory(script: str, *args: str, env: dict | None = None) -> Program:
        program = Program(
            [str(HERE / script), *args], tmp_path / f"stderr-{len(started)}.txt", env
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
