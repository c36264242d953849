"""Output handlers and Routine.send_output."""

from __future__ import annotations

import queue
from datetime import datetime

import pytest

from routilux import (
    CallbackOutputHandler,
    NullOutputHandler,
    OutputHandler,
    QueueOutputHandler,
    Routine,
)


def test_base_and_null_handlers_accept_and_ignore():
    assert OutputHandler().handle("j", "r", "t", {"a": 1}) is None
    null = NullOutputHandler()
    assert isinstance(null, OutputHandler)
    assert null.handle("j", "r", "t", {"a": 1}) is None


def test_queue_handler_puts_dicts():
    h = QueueOutputHandler()
    h.handle("job", "rid", "result", {"v": 1})
    h.handle("job", "rid", "log", {"v": 2})
    assert h.queue.qsize() == 2
    items = h.get_all()
    # 0.10 entries carry an ISO timestamp too
    assert all(datetime.fromisoformat(item.pop("timestamp")) for item in items)
    assert items == [
        {"job_id": "job", "routine_id": "rid", "output_type": "result", "data": {"v": 1}},
        {"job_id": "job", "routine_id": "rid", "output_type": "log", "data": {"v": 2}},
    ]
    assert h.get_all() == []


def test_queue_handler_uses_a_given_queue():
    q: queue.Queue = queue.Queue()
    h = QueueOutputHandler(q)
    h.handle("j", "r", "t", {})
    assert h.queue is q and q.get_nowait()["output_type"] == "t"


def test_callback_handler_calls_back():
    calls = []
    h = CallbackOutputHandler(lambda *args: calls.append(args))
    h.handle("j", "r", "t", {"x": 1})
    # *args takes a fifth argument: the 0.10 datetime timestamp
    assert calls[0][:4] == ("j", "r", "t", {"x": 1}) and isinstance(calls[0][4], datetime)
    four = CallbackOutputHandler(lambda job, rid, kind, data: calls.append((job, rid, kind, data)))
    four.handle("j", "r", "t", {"x": 1})
    assert calls[1] == ("j", "r", "t", {"x": 1})
    with pytest.raises(ValueError):
        CallbackOutputHandler("not callable")


class Reporter(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.report)

    def report(self, n):
        for i in range(n):
            self.send_output("item", i=i)
        self.send_output("done", total=n)


def test_send_output_goes_to_the_output_log_and_handler(make_flow):
    flow = make_flow()
    handler = QueueOutputHandler()
    flow.set_output_handler(handler)
    flow.add_routine(Reporter(), "rep")
    job = flow.execute("rep", {"n": 3})
    assert job.status == "completed"
    assert [(e["routine_id"], e["output_type"], e["data"]) for e in job.output_log] == [
        ("rep", "item", {"i": 0}), ("rep", "item", {"i": 1}), ("rep", "item", {"i": 2}),
        ("rep", "done", {"total": 3}),
    ]
    items = handler.get_all()
    assert [(i["job_id"], i["output_type"], i["data"]) for i in items] == [
        (job.job_id, "item", {"i": 0}), (job.job_id, "item", {"i": 1}),
        (job.job_id, "item", {"i": 2}), (job.job_id, "done", {"total": 3}),
    ]


def test_callback_handler_in_a_flow_sees_every_job(make_flow):
    seen = []
    flow = make_flow()
    flow.set_output_handler(CallbackOutputHandler(lambda j, r, t, d: seen.append((j, t, d))))
    flow.add_routine(Reporter(), "rep")
    a = flow.execute("rep", {"n": 1})
    b = flow.execute("rep", {"n": 0})
    assert [s for s in seen if s[0] == a.job_id] == [
        (a.job_id, "item", {"i": 0}), (a.job_id, "done", {"total": 1}),
    ]
    assert [s for s in seen if s[0] == b.job_id] == [(b.job_id, "done", {"total": 0})]


def test_failing_output_handler_does_not_fail_the_job(make_flow):
    def explode(*args):
        raise RuntimeError("handler broke")

    flow = make_flow()
    flow.set_output_handler(CallbackOutputHandler(explode))
    flow.add_routine(Reporter(), "rep")
    job = flow.execute("rep", {"n": 2})
    assert job.status == "completed"
    assert len(job.output_log) == 3


def test_without_handler_outputs_are_still_logged(make_flow):
    flow = make_flow()
    flow.add_routine(Reporter(), "rep")
    job = flow.execute("rep", {"n": 1})
    assert job.status == "completed"
    assert [e["output_type"] for e in job.output_log] == ["item", "done"]


def test_send_output_outside_a_flow_does_nothing():
    r = Reporter()
    r.get_slot("trigger").receive({"n": 2})  # no exception
