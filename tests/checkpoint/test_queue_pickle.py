"""A job's queued messages are pickled once while they wait, and load back exact."""

from __future__ import annotations

import pickle
import threading
from collections import deque

import pytest
from helpers import Source

from routilux import CheckpointError, Flow, Routine
from routilux.checkpoint import SQLiteStore
from routilux.runtime.messages import Delivery
from routilux.runtime.queue_pickle import QueueChunks, QueuedRun, expand_queue
from routilux.runtime.snapshot import delivery_record
from routilux.runtime.wire import dumps

KEY = b"queue-pickle-test-key-0123456789"


def _deliveries(first: int, count: int, routine: str = "b") -> list[Delivery]:
    return [Delivery(n, None, routine, "inp", {"n": n}) for n in range(first, first + count)]


def _loaded(queue: list) -> list[tuple]:
    """The records as a stored cut gives them back (pickled and loaded)."""
    return expand_queue(pickle.loads(dumps(queue)))


def _records(*queues) -> list[tuple]:
    return [delivery_record(d) for q in queues for d in q]


def test_messages_still_queued_at_the_next_cut_are_not_pickled_again():
    chunks, q = QueueChunks(), deque(_deliveries(0, 10))
    first = chunks.records([("b", q)], "f")
    assert len(first) == 1 and (first[0].start, first[0].stop) == (0, 10)
    for _ in range(3):
        q.popleft()  # dispatched
    q.extend(_deliveries(10, 4))  # emitted since
    second = chunks.records([("b", q)], "f")
    assert isinstance(second[0], QueuedRun) and second[0].data is first[0].data
    assert (second[0].start, second[0].stop) == (3, 10)
    assert (second[1].start, second[1].stop) == (0, 4)  # only the new ones pickled
    assert _loaded(second) == _records(q)


def test_each_routine_queue_keeps_its_order_and_its_own_chunks():
    chunks = QueueChunks()
    b, c = deque(_deliveries(0, 4, "b")), deque(_deliveries(100, 4, "c"))
    chunks.records([("b", b), ("c", c)], "f")
    b.append(_deliveries(4, 1, "b")[0])
    c.popleft()
    queue = chunks.records([("b", b), ("c", c)], "f")
    assert _loaded(queue) == _records(b, c)
    assert sum(isinstance(item, QueuedRun) and item.start == 0 for item in queue) == 2


def test_a_message_handed_back_after_dispatch_is_pickled_as_it_is_now():
    chunks, q = QueueChunks(), deque(_deliveries(0, 5))
    chunks.records([("b", q)], "f")
    head = q.popleft()
    head.seq, head.call_data, head.attempt = 7, {"n": 0, "merged": True}, 1  # ran, failed
    q.appendleft(head)  # put back for a retry
    queue = chunks.records([("b", q)], "f")
    loaded = _loaded(queue)
    assert loaded == _records(q)
    assert loaded[0][4] == {"n": 0, "merged": True} and loaded[0][5] == 1


def test_a_dispatched_message_in_the_middle_of_a_chunk_is_not_taken_from_it():
    chunks, q = QueueChunks(), deque(_deliveries(0, 6))
    chunks.records([("b", q)], "f")
    q[2].seq, q[2].attempt = 3, 2  # dispatched and put back where it was
    assert _loaded(chunks.records([("b", q)], "f")) == _records(q)


def test_a_dispatched_message_where_a_later_chunk_starts_is_not_taken_from_it():
    chunks, q = QueueChunks(), deque(_deliveries(0, 3))
    chunks.records([("b", q)], "f")
    q.extend(_deliveries(3, 3))
    chunks.records([("b", q)], "f")  # the first chunk, then one of the three since
    q[3].seq, q[3].attempt = 9, 1  # changed since it was pickled
    loaded = _loaded(chunks.records([("b", q)], "f"))
    assert loaded == _records(q) and loaded[3][5] == 1


def test_messages_taken_out_of_the_middle_of_a_queue_load_back_exact():
    chunks, q = QueueChunks(), deque(_deliveries(0, 8))
    chunks.records([("b", q)], "f")
    del q[3]  # the sequential dispatcher starts one past the head (backpressure)
    q.append(_deliveries(8, 1)[0])
    assert _loaded(chunks.records([("b", q)], "f")) == _records(q)


def test_a_mostly_consumed_chunk_is_not_carried_along():
    chunks, q = QueueChunks(), deque(_deliveries(0, 100))
    first = chunks.records([("b", q)], "f")
    for _ in range(90):
        q.popleft()
    queue = chunks.records([("b", q)], "f")
    assert all(item.data is not first[0].data for item in queue)
    assert len(queue[0].data) < len(first[0].data) / 4
    assert _loaded(queue) == _records(q)
    assert [len(c.items) for c in chunks.chunks["b"]] == [10]  # the big one is let go


def test_chunks_of_messages_no_longer_queued_are_let_go():
    chunks, q = QueueChunks(), deque(_deliveries(0, 5))
    chunks.records([("b", q)], "f")
    q.clear()
    assert chunks.records([("b", q)], "f") == []
    assert chunks.chunks == {}


def test_old_cut_records_of_plain_tuples_still_load():
    records = _records(_deliveries(0, 3))
    assert expand_queue(pickle.loads(dumps(records))) == records


def test_an_unpicklable_queued_message_is_a_clear_checkpoint_error():
    chunks = QueueChunks()
    bad = Delivery(1, None, "b", "inp", {"lock": threading.Lock()})
    with pytest.raises(CheckpointError, match=r"flow 'f'.*queued message.*cannot be pickled"):
        chunks.records([("b", deque([bad]))], "f")


class Sink(Routine):
    """Holds its first message until ``gate`` is set: the rest pile up behind it."""

    def __init__(self):
        super().__init__()
        self.seen: list[int] = []
        self.define_slot("inp", handler=self.take)

    def take(self, x):
        if not self.seen:
            ENTERED.set()
            assert GATE.wait(30)
        self.seen.append(x)

    def __getstate__(self):
        return {"seen": self.seen}


ENTERED, GATE = threading.Event(), threading.Event()


def _flow(store) -> tuple[Flow, Sink]:
    flow = Flow("queue-pickle-flow", execution_strategy="concurrent", checkpoint_store=store)
    sink = Sink()
    flow.add_routine(Source(), "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "sink", "inp")
    return flow, sink


def test_a_backlog_checkpointed_twice_is_recovered_whole(tmp_path, monkeypatch):
    """A paused job's backlog is cut twice, the second time from the first cut's
    chunks, then recovered by a new flow: every message arrives once, in order."""
    ENTERED.clear()
    GATE.clear()
    store = SQLiteStore(tmp_path / "s.db", key=KEY)
    flow, _ = _flow(store)
    job = flow.execute("src", {"n": 500}, wait=False)
    assert ENTERED.wait(30)  # the source has emitted all 500; the sink holds one
    flow.pause(job, wait=False)
    GATE.set()
    job.wait(30)
    assert job.status == "paused"
    flow.checkpoint()
    pickled = []
    original = QueueChunks._new_chunk
    monkeypatch.setattr(
        QueueChunks,
        "_new_chunk",
        lambda self, items, out, fid: pickled.extend(items) or original(self, items, out, fid),
    )
    flow.checkpoint()
    # Only messages handed back after dispatch are pickled again; the backlog that
    # never ran comes from the first cut's chunks.
    assert all(d.seq for d in pickled)
    flow.shutdown()
    store.close()

    store = SQLiteStore(tmp_path / "s.db", key=KEY)
    again, sink = _flow(store)
    (recovered,) = again.recover()
    assert recovered.status == "paused" and 0 < len(sink.seen) < 500
    again.resume(recovered)
    recovered.wait(30)
    assert recovered.status == "completed", recovered.error
    again.shutdown()
    store.close()
    assert sink.seen == list(range(500))  # the first flow's part came back as its state
