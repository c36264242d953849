"""Fixtures of the fault-injection suite.

The suite reuses the helpers of ``tests/checkpoint`` (``Program``: a subprocess whose
stdout lines are read on a thread; ``wait_gone``) and ``tests/runtime``
(``wait_until``); their directories are put on ``sys.path`` here so that
``checkpoint_helpers`` and ``runtime_helpers`` import the same way they do there.

``spawn(script, *args, env=None)`` runs a host program of this directory; every
program a test started is SIGKILLed at the end of the test, with the processes it
started, if it still runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import psutil
import pytest

HERE = Path(__file__).resolve().parent
for _shared in (HERE.parent / "checkpoint", HERE.parent / "runtime"):
    if str(_shared) not in sys.path:
        sys.path.append(str(_shared))

from checkpoint_helpers import Program  # noqa: E402  (needs the path above)


@pytest.fixture
def spawn(tmp_path):
    """``spawn(script, *args, env=None)``: run a host program of this directory."""
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
