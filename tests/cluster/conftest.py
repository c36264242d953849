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
    started = psutil.Process().children(recursive=True)
    ray.shutdown()
    left = wait_gone(started, 30)
    assert not left, f"Ray processes left after ray.shutdown(): {left}"
