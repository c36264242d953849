"""Live updates: Server-Sent Events fed by the event bus.

Order (the bus sequence is the SSE id), resuming with Last-Event-ID without gaps
or repeats, resync markers (a client that fell behind, a replay window exceeded,
a server restarted), keep-alive comments, filters, and a client that never reads
never slowing a flow down.
"""

from __future__ import annotations

import asyncio

from web_helpers import EventStream, call, wait_until

from routilux.runtime.bus import METRICS, STEP_STARTED, EventBus
from routilux.web.activity import StepLog
from routilux.web.sse import Client, Hub


def _finished(job_id):
    return lambda f: f["event"] == "job.finished" and f["data"]["job_id"] == job_id


def test_events_arrive_in_bus_order_with_the_seq_as_id(served, gate):
    runtime, url = served
    gate.set()
    stream = EventStream(url)
    try:
        assert stream.status == 200
        assert stream.response.getheader("content-type").startswith("text/event-stream")
        assert wait_until(lambda: STEP_STARTED in runtime.bus.wanted)
        job = runtime.submit("web", "source", {"n": 3})
        frames = stream.events(_finished(job.job_id))
    finally:
        stream.close()
    seqs = [int(f["id"]) for f in frames]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "every event, in order"
    assert all(int(f["id"]) == f["data"]["seq"] and f["event"] == f["data"]["kind"]
               for f in frames)
    kinds = [f["event"] for f in frames if f["data"]["job_id"] == job.job_id]
    assert kinds[0] == "job.submitted" and kinds[-1] == "job.finished"
    assert kinds.count("step.started") == kinds.count("step.finished") == 7  # 1 + 3 + 3
    done = frames[-1]["data"]
    assert done["flow_id"] == "web" and done["data"] == {"status": "completed", "error": None}
    assert isinstance(done["time"], float)


def test_reconnecting_with_last_event_id_misses_nothing(served, gate):
    runtime, url = served
    gate.set()
    first = EventStream(url)
    try:
        assert wait_until(lambda: STEP_STARTED in runtime.bus.wanted)
        job1 = runtime.submit("web", "source", {"n": 2})
        before = first.events(_finished(job1.job_id))
    finally:
        first.close()
    last_id = before[-1]["id"]
    job2 = runtime.submit("web", "source", {"n": 2})  # while nobody listens
    assert runtime.wait(job2, 20)
    job3 = runtime.submit("web", "source", {"n": 2})
    again = EventStream(url, headers={"Last-Event-ID": last_id})
    try:
        after = again.events(_finished(job3.job_id))
    finally:
        again.close()
    seqs = [int(f["id"]) for f in after]
    assert seqs[0] == int(last_id) + 1, "resumes right after the last event seen"
    assert seqs == sorted(set(seqs)), "no event twice"
    assert "resync" not in [f["event"] for f in after]
    # job2 ran while the client was away: its job events were kept by the bus
    assert [f["event"] for f in after if f["data"]["job_id"] == job2.job_id][-1] == "job.finished"


def test_resync_when_the_missed_events_are_gone_or_the_server_restarted(served, gate):
    runtime, url = served
    gate.set()
    for _i in range(3):  # some events in the bus
        assert runtime.wait(runtime.submit("web", "source", {"n": 1}), 20)
    future = runtime.bus.last_seq + 1000
    stream = EventStream(url, query=f"last_event_id={future}")
    try:
        frame = stream.events(lambda f: True)[0]
    finally:
        stream.close()
    assert frame["event"] == "resync"
    assert frame["data"]["data"] == {"missed": None, "reason": "the server restarted"}
    runtime.bus._recent.clear()  # as if the replay window had moved past what we saw
    stream = EventStream(url, headers={"Last-Event-ID": "1"})
    try:
        frame = stream.events(lambda f: True)[0]
    finally:
        stream.close()
    assert frame["event"] == "resync" and frame["data"]["data"]["missed"] is None
    assert "no longer kept" in frame["data"]["data"]["reason"]


def test_filters_keep_alive_and_bad_requests(served, gate):
    runtime, url = served
    runtime._http.monitor.hub.keepalive = 0.2
    gate.set()
    quiet = EventStream(url, query="kinds=routine.out_of_service")
    try:
        assert quiet.next(10) == {"retry": "2000", "comment": "routilux events"}
        assert quiet.next(10) == {"comment": "keep-alive"}
    finally:
        quiet.close()
    assert wait_until(lambda: not runtime.bus.wanted - {"routine.restarted",
                                                       "routine.out_of_service"})
    one = EventStream(url, query="kinds=job.finished,job.submitted&flow=web")
    try:
        job = runtime.submit("web", "source", {"n": 1})
        frames = one.events(_finished(job.job_id))
    finally:
        one.close()
    assert [f["event"] for f in frames] == ["job.submitted", "job.finished"]
    assert STEP_STARTED not in runtime.bus.wanted, "no client asked for step events"
    assert call(url, "GET", "/api/events?kinds=job.done")[0] == 400
    status, _, body = call(url, "GET", "/api/events", headers={"Last-Event-ID": "abc"})
    assert status == 400 and "Last-Event-ID must be a bus sequence number" in (
        body["error"]["message"])


def test_a_client_that_never_reads_never_slows_the_flow(served, gate):
    runtime, url = served
    runtime._http.monitor.hub.client_queue = 10
    gate.set()
    stuck = EventStream(url)  # connected, never read
    try:
        assert wait_until(lambda: STEP_STARTED in runtime.bus.wanted)
        jobs = [runtime.submit("web", "source", {"n": 200}) for _ in range(5)]
        assert all(runtime.wait(job, 60) for job in jobs)
        assert all(job.status == "completed" for job in jobs)
    finally:
        stuck.close()
    assert wait_until(lambda: STEP_STARTED not in runtime.bus.wanted), (
        "the last client gone, step events are no longer published"
    )


def test_a_client_that_falls_behind_gets_a_resync_marker():
    """The hub's queue per client: full means dropped, then one resync in their place."""

    async def scenario():
        bus = EventBus()
        hub = Hub(bus, StepLog())
        client = Client(None, None, None, size=3)
        stream = hub.stream(client, None)
        assert await anext(stream) == b"retry: 2000\n: routilux events\n\n"
        for i in range(10):
            bus.publish(METRICS, "f", None, n=i)
        assert await asyncio.wait_for(_wait(lambda: client.missed == 7), 10)
        chunk = (await anext(stream)).decode()
        frames = [f for f in chunk.split("\n\n") if f]
        assert [f.split("\n")[1] for f in frames] == ["event: metrics"] * 3 + ["event: resync"]
        assert '"missed":7' in frames[-1] and "this client fell behind" in frames[-1]
        bus.publish(METRICS, "f", None, n=10)
        later = (await anext(stream)).decode()
        assert later.startswith("id: 11\n"), "after the marker, new events flow again"
        hub.close()
        await stream.aclose()
        assert not hub.clients and not bus.active

    asyncio.run(scenario())


async def _wait(predicate):
    while not predicate():
        await asyncio.sleep(0.005)
    return True
