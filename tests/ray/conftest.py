"""One local Ray for the whole test session (``num_cpus=2``, no dashboard).

The first test that asks for ``ray_address`` starts it; it is shut down at the end
of the session, and the teardown checks that every process Ray started has exited.
Two-node cases start their own ``ray.cluster_utils.Cluster`` in a helper program.
"""

from __future__ import annotations

import psutil
import pytest
from helpers import wait_gone


@pytest.fixture(scope="session")
def ray_address():
    """The session's Ray: this process is connected to it; its GCS address."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    address = ray.get_runtime_context().gcs_address
    yield address
    started = psutil.Process().children(recursive=True)
    ray.shutdown()
    left = wait_gone(started, 30)
    assert not left, f"Ray processes left after ray.shutdown(): {left}"
