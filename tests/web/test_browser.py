"""The page in a real browser: headless Chromium (Debian's ``chromium``) over the
DevTools protocol.

While the page is open, jobs run: a job appears in the list and reaches
``completed`` in the DOM without a reload; a job page follows its steps live; the
workers view lists a killed replica with its cause. Screenshots are saved (to
``$ROUTILUX_SCREENSHOTS`` if set: that is how the docs' pictures are made).

Chromium missing: skipped, unless ``ROUTILUX_REQUIRE_BROWSER=1`` (``.ci/run`` sets
it and installs Chromium), where it fails.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from cdp import Chromium, find_chromium
from web_helpers import FailingSink, Source, chain, wait_until

from routilux import Flow, Routine
from routilux.runtime.bus import STEP_STARTED

pytestmark = pytest.mark.slow


class Square(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("in", handler=self.square)
        self.define_event("out", ["x"])

    def square(self, x):
        self.emit("out", x=x * x)


def crunch() -> Flow:
    flow = Flow("crunch", execution_strategy="concurrent")
    flow.add_routine(Source(), "numbers")
    flow.add_routine(Square(), "square", execution="process", workers=2)
    flow.add_routine(FailingSink(), "total")
    flow.connect("numbers", "out", "square", "in")
    flow.connect("square", "out", "total", "in")
    return flow


@pytest.fixture
def browser(tmp_path):
    binary = find_chromium()
    if binary is None:
        if os.environ.get("ROUTILUX_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required (ROUTILUX_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    chromium = Chromium(binary, tmp_path / "profile", tmp_path / "chromium.log")
    yield chromium
    chromium.close()


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("ROUTILUX_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _row(job_id: str) -> str:
    return f"document.querySelector('tr[data-job-id={json.dumps(job_id)}]')"


def test_the_page_follows_jobs_live_without_a_reload(make_runtime, gate, browser, shots):
    runtime, url = make_runtime(chain("web", gate, fail_on=1, retries=2), crunch())
    warm = runtime.submit("crunch", "numbers", {"n": 4})  # starts the replica processes
    assert runtime.wait(warm, 60) and warm.status == "completed"
    broken = runtime.submit("web", "source", {"n": "three"})  # fails in its first step
    assert runtime.wait(broken, 30) and broken.status == "failed"
    dropped = runtime.submit("web", "source", {"n": 2})
    runtime.cancel(dropped, "not needed")

    browser.navigate(url + "#/jobs")
    browser.wait_for("document.getElementById('connection').dataset.state === 'live'")
    browser.evaluate("window.__sameDocument = 'yes'")  # gone if the page reloads
    assert wait_until(lambda: "job.submitted" in runtime.bus.wanted)

    job = runtime.submit("web", "source", {"n": 3}, job_id="first-job")
    assert browser.wait_for(f"{_row(job.job_id)}?.dataset.status") == "running"
    gate.set()
    assert runtime.wait(job, 30)
    browser.wait_for(f"{_row(job.job_id)}?.dataset.status === 'completed'")
    assert browser.evaluate("window.__sameDocument") == "yes", "no reload"
    browser.screenshot(shots / "monitor-jobs.png")

    # A job page open while its job runs: steps arrive live, retries as their own bars.
    gate.clear()
    second = runtime.submit("web", "source", {"n": 3}, job_id="second-job")
    browser.evaluate("location.hash = '#/job/second-job'")
    browser.wait_for("document.querySelector('#job-status')?.dataset.status === 'running'")
    assert wait_until(lambda: STEP_STARTED in runtime.bus.wanted), "the page asks for steps"
    browser.wait_for("document.querySelectorAll('svg.graph g.node').length === 3")
    gate.set()
    assert runtime.wait(second, 30) and second.status == "completed"
    browser.wait_for("document.querySelector('#job-status')?.dataset.status === 'completed'")
    retry_bars = browser.wait_for(
        "document.querySelectorAll('svg.timeline rect.bar.retry').length >= 2 && "
        "document.querySelectorAll('svg.timeline rect.bar.retry').length"
    )
    assert retry_bars == 2, "two retries of the failing message, one bar each"
    assert browser.evaluate(
        "document.querySelector('svg.graph g.node[data-routine=\"sink\"]').dataset.state"
    ) in ("done", "failed")
    browser.wait_for("document.querySelectorAll('#log li.log-retry').length === 3")
    assert browser.evaluate("window.__sameDocument") == "yes"
    browser.screenshot(shots / "monitor-job.png")

    # A replica killed: it is restarted, and the workers view shows the death and cause.
    pids = runtime.flows["crunch"].metrics()["square"]["pids"]
    assert len(pids) == 2
    os.kill(pids[0], signal.SIGKILL)
    again = runtime.submit("crunch", "numbers", {"n": 6})
    assert runtime.wait(again, 60) and again.status == "completed"
    browser.evaluate("location.hash = '#/workers'")
    browser.wait_for(f"!!document.querySelector('#deaths tr[data-pid=\"{pids[0]}\"]')")
    cause = browser.evaluate(
        f"document.querySelector('#deaths tr[data-pid=\"{pids[0]}\"]').textContent"
    )
    assert "SIGKILL" in cause and "restarted" in cause
    browser.wait_for(
        "document.querySelector('#routines tr[data-routine=\"square\"]')"
        "?.textContent.includes('2 of 2 alive')"
    )
    assert browser.evaluate("window.__sameDocument") == "yes"
    browser.screenshot(shots / "monitor-workers.png")
