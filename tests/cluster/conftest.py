"""One local Ray for all the Ray tests (``num_cpus=2``, no dashboard).

Every test that needs Ray is in this package, so the fixture is package-scoped:
the first test that asks for ``ray_address`` starts Ray, and it is shut down once
the last test here has run, before other packages' tests (which check that a flow
leaves no child process behind). The teardown checks that every process Ray
started has exited. Two-node cases start their own ``ray.cluster_utils.Cluster``
in a helper program. (Not named ``tests/ray``: a package of that name would hide
the real ``ray``.)
"""

from __future__ import annotations

import os

import psutil
import pytest
from helpers import wait_gone


@pytest.fixture(scope="package")
def ray_address():
    """The tests' Ray: this process is connected to it; its GCS address."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    address = ray.get_runtime_context().gcs_address
    yield address
    started = [p for p in psutil.Process().children(recursive=True) if _is_ray(p)]
    assert any(p.name() == "raylet" for p in started), "the check would see no Ray process"
    ray.shutdown()
    left = wait_gone(started, 30)
    assert not left, f"Ray processes left after ray.shutdown(): {left}"


def _is_ray(process: psutil.Process) -> bool:
    """A process Ray started (not, say, the process routines' worker template)."""
    try:
        name = process.name()
        command = " ".join(process.cmdline())
    except psutil.Error:
        return False
    return (
        name.startswith("ray::")
        or name in ("raylet", "gcs_server")
        or f"{os.sep}ray{os.sep}" in command
    )
