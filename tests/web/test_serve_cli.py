"""``routilux serve`` as a real process: it prints its URL (port 0: a free one),
hosts flows, stops on SIGTERM with exit code 0, and a restarted server shows the
history from the store. Wrong set-ups fail with one line, before listening."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from helpers import Program
from web_helpers import call, wait_until

HERE = Path(__file__).parent
FLOW = f"{HERE / 'web_helpers.py'}:served_flow"


@pytest.fixture
def serve(tmp_path):
    """``serve(*args, env=None)``: ``python -m routilux serve ARGS`` as a
    :class:`helpers.Program` (stdout and stderr together), killed at the end."""
    started: list[Program] = []
    base = dict(os.environ)  # the flow file imports the shared test helpers
    base["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), base.get("PYTHONPATH", "")])

    def factory(*args: str, env: dict | None = None) -> Program:
        program = Program(["-m", "routilux", "serve", *args], None, env or base, cwd=tmp_path)
        started.append(program)
        return program

    yield factory
    for program in started:
        program.close()


def url_of(program: Program) -> str:
    return program.until_line("routilux monitor at ", timeout=60).split()[3]


def stop(program: Program, signum: int) -> int:
    program.popen.send_signal(signum)
    return program.wait(30)


def test_serve_hosts_flows_stops_on_sigterm_and_keeps_history(serve, tmp_path):
    store = str(tmp_path / "served.sqlite3")
    server = serve("--store", store, "--flows", FLOW, "--port", "0")
    url = url_of(server)
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":8470/")
    status, _, job = call(url, "POST", "/api/jobs", {"flow": "served", "params": {"n": 3}})
    assert status == 201
    assert wait_until(
        lambda: call(url, "GET", f"/api/jobs/{job['job_id']}")[2]["status"] == "completed", 30
    )
    assert stop(server, signal.SIGTERM) == 0
    viewer = serve("--store", store, "--port", "0")  # no flows: the store's history
    url = url_of(viewer)
    _, _, listing = call(url, "GET", "/api/jobs")
    assert [(j["job_id"], j["status"]) for j in listing["jobs"]] == [
        (job["job_id"], "completed")
    ]
    _, _, page = call(url, "GET", f"/api/jobs/{job['job_id']}")
    assert page["params"] == {"n": 3} and page["routines"]["sink"]["processed"] == 3
    assert stop(viewer, signal.SIGINT) == 0


def test_wrong_setups_fail_in_one_line(serve, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ROUTILUX_TOKEN"}
    env["PYTHONPATH"] = str(HERE.parent)
    missing = serve("--store", str(tmp_path / "none.sqlite3"), "--port", "0", env=env)
    assert missing.wait(60) == 1
    assert "no checkpoint store at" in missing.output()
    exposed = serve("--store", str(tmp_path / "s.sqlite3"), "--flows", FLOW, "--host",
                    "0.0.0.0", "--port", "0", env=env)
    assert exposed.wait(60) == 1
    error = exposed.output()
    assert "binding the monitor to '0.0.0.0'" in error and "Traceback" not in error
