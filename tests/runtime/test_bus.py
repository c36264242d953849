"""The event bus on its own: order, bounded queues, resync, replay, callbacks."""

from __future__ import annotations

import threading

import pytest
from helpers import Node, Source

from routilux.exceptions import ConfigurationError
from routilux.runtime.bus import JOB_FINISHED, METRICS, RESYNC, STEP_FINISHED, EventBus


def test_events_arrive_in_publish_order_with_increasing_seq():
    bus = EventBus()
    sub = bus.subscribe()
    for i in range(100):
        bus.publish(STEP_FINISHED, "f", "j", n=i)
    got = [sub.get(0) for _ in range(100)]
    assert [e.data["n"] for e in got] == list(range(100))
    assert [e.seq for e in got] == list(range(1, 101))
    assert sub.get(0) is None


def test_kinds_filter_and_unknown_kinds_are_refused():
    bus = EventBus()
    sub = bus.subscribe(kinds=[JOB_FINISHED])
    bus.publish(STEP_FINISHED, "f", "j")
    bus.publish(JOB_FINISHED, "f", "j", status="completed")
    assert sub.get(0).kind == JOB_FINISHED and sub.get(0) is None
    with pytest.raises(ConfigurationError, match="unknown event kinds"):
        bus.subscribe(kinds=["job.finnished"])


def test_a_subscriber_that_never_reads_never_blocks_the_publisher():
    bus = EventBus()
    bus.subscribe(maxsize=10)  # never read
    done = threading.Event()

    def publish_many():
        for i in range(50_000):
            bus.publish(STEP_FINISHED, "f", "j", n=i)
        done.set()

    threading.Thread(target=publish_many, daemon=True).start()
    assert done.wait(30), "the publisher stalled on a subscriber that does not read"


def test_a_slow_subscriber_gets_a_resync_marker_in_place_of_what_it_missed():
    bus = EventBus()
    sub = bus.subscribe(maxsize=3)
    for i in range(10):
        bus.publish(STEP_FINISHED, "f", "j", n=i)
    first = [sub.get(0) for _ in range(3)]
    assert [e.data["n"] for e in first] == [0, 1, 2]
    marker = sub.get(0)
    assert marker.kind == RESYNC and marker.data["missed"] == 7
    assert sub.get(0) is None
    bus.publish(STEP_FINISHED, "f", "j", n=10)
    assert sub.get(0).data["n"] == 10, "after the marker, events flow again"


def test_the_resync_marker_comes_before_newer_events():
    bus = EventBus()
    sub = bus.subscribe(maxsize=2)
    for i in range(5):
        bus.publish(STEP_FINISHED, "f", "j", n=i)
    assert [sub.get(0).data["n"] for _ in range(2)] == [0, 1]
    bus.publish(STEP_FINISHED, "f", "j", n=5)  # room again: the gap is reported first
    marker = sub.get(0)
    assert marker.kind == RESYNC and marker.data["missed"] == 3
    assert sub.get(0).data["n"] == 5


def test_a_callback_runs_on_its_own_thread_and_a_failing_one_goes_on():
    bus = EventBus()
    seen: list[int] = []
    threads: set[str] = set()
    last = threading.Event()

    def callback(event):
        threads.add(threading.current_thread().name)
        if event.data["n"] == 1:
            raise RuntimeError("a subscriber bug")
        seen.append(event.data["n"])
        if event.data["n"] == 3:
            last.set()

    sub = bus.subscribe(callback)
    for i in range(4):
        bus.publish(METRICS, "f", n=i)
    assert last.wait(10)
    assert seen == [0, 2, 3]
    assert threads == {"routilux-bus"}
    sub.close()
    bus.publish(METRICS, "f", n=4)
    assert not bus.active


def test_replay_since_a_sequence_number():
    bus = EventBus(replay=5)
    for i in range(8):
        bus.publish(METRICS, "f", n=i)
    assert [e.data["n"] for e in bus.since(5)] == [5, 6, 7]
    assert bus.since(8) == []
    assert bus.since(1) is None, "events 2 and 3 were forgotten: the caller must resync"


def test_close_ends_iteration():
    bus = EventBus()
    sub = bus.subscribe()
    bus.publish(METRICS, "f", n=0)
    sub.close()
    assert [e.data["n"] for e in sub] == [0]


# ------------------------------------------------------------------ fed by a flow
def _kinds_of(events, job_id):
    return [e.kind for e in events if e.job_id == job_id]


def test_a_flow_publishes_its_jobs_and_steps_in_order(make_flow):
    flow = make_flow()
    flow.add_routine(Source(), "source")
    flow.add_routine(Node(), "sink")
    flow.connect("source", "out", "sink", "in")
    sub = flow.subscribe()
    job = flow.execute("source", {"n": 2}, timeout=30)
    assert job.status == "completed"
    events = []
    while (event := sub.get(5)) is not None:
        events.append(event)
        if event.kind == JOB_FINISHED:
            break
    # sequential: one step in flight, so the order is exact
    assert _kinds_of(events, job.job_id) == ["job.submitted"] + [
        "step.started",
        "step.finished",
    ] * 3 + ["job.finished"]
    finished = [e for e in events if e.kind == STEP_FINISHED]
    assert [e.data["routine"] for e in finished] == ["source", "sink", "sink"]
    assert all(e.data["error"] is None and e.data["duration"] > 0 for e in finished)
    assert events[-1].data == {"status": "completed", "error": None}
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs)


def test_a_subscriber_that_never_reads_does_not_stall_the_flow(make_flow):
    flow = make_flow(execution_strategy="concurrent")
    flow.add_routine(Source(), "source")
    flow.add_routine(Node(), "sink")
    flow.connect("source", "out", "sink", "in")
    sub = flow.subscribe(maxsize=1)
    job = flow.execute("source", {"n": 5000}, timeout=60)
    assert job.status == "completed"
    first = sub.get(0)
    assert first.kind == "job.submitted"
    assert sub.get(0).kind == RESYNC, "it fell behind and is told so"


def test_metrics_snapshots_are_published_while_jobs_run(make_flow, gates):
    release = gates()
    flow = make_flow()
    flow.add_routine(Node(lambda node, data: release.wait(30)), "slow")
    sub = flow.subscribe(kinds=[METRICS])
    job = flow.execute("slow", {}, wait=False)
    snapshot = sub.get(10)
    assert snapshot is not None and snapshot.kind == METRICS
    assert snapshot.data["routines"]["slow"]["in_flight"] == 1
    release.set()
    assert job.wait(30)
