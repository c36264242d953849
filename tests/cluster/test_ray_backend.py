"""Ray routines: the same results, order and errors as thread and process routines."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

from helpers import Node, Sink, Source  # noqa: E402

from routilux import ErrorHandler, ErrorStrategy, Routine  # noqa: E402
from routilux.runtime.ray_replica import RayValue  # noqa: E402
from routilux.runtime.wire import dumps, loads  # noqa: E402

pytestmark = pytest.mark.ray
SMALL = {"num_cpus": 0.25}  # the session's Ray has 2 CPUs; replicas share them


def square(node, data):
    node.emit("out", x=data["x"] * data["x"], tag=data.get("tag", ""))


def tag(node, data):
    node.emit("out", x=data["x"] + 1, tag=data.get("tag", "") + node.get_config("mark"))


def build_mixed(make_flow, kinds: dict[str, str], strategy: str):
    """src -> a -> b -> c -> sink, with a fan-out from a to c; each routine's kind
    from ``kinds``; ``b`` has two replicas."""
    flow = make_flow(execution_strategy=strategy, max_workers=4)
    sink = Sink("in")
    flow.add_routine(Source(), "src")
    routines = {}
    for rid, fn in (("a", square), ("b", tag), ("c", tag)):
        node = Node(fn, slots=("in",))
        node.set_config(mark=rid)
        kind = kinds.get(rid, "thread")
        options = {"ray_options": SMALL} if kind == "ray" else {}
        flow.add_routine(node, rid, execution=kind, workers=2 if rid == "b" else 1, **options)
        routines[rid] = node
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "a", "in")
    flow.connect("a", "out", "b", "in")
    flow.connect("a", "out", "c", "in")
    flow.connect("b", "out", "c", "in")
    flow.connect("c", "out", "sink", "in")
    return flow, sink


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_flow_mixing_thread_process_and_ray_gives_the_all_thread_results(
    make_flow, ray_address, strategy
):
    results = {}
    for label, kinds in (
        ("thread", {}),
        ("mixed", {"a": "ray", "b": "process", "c": "ray"}),
    ):
        flow, sink = build_mixed(make_flow, kinds, strategy)
        job = flow.execute("src", {"n": 20}, timeout=60)
        assert job.status == "completed", job.error
        messages = [(c["x"], c["tag"]) for c in sink.calls]
        results[label] = messages if strategy == "sequential" else sorted(messages)
        processed = {rid: st["processed"] for rid, st in job.routine_states.items()}
        assert processed == {"src": 1, "a": 20, "b": 20, "c": 40, "sink": 40}
        flow.shutdown()
    assert results["mixed"] == results["thread"]


def test_replicas_are_named_actors_in_the_routilux_namespace(make_flow, ray_address):
    flow = make_flow("named-flow")
    flow.add_routine(Node(square, slots=("in",)), "sq", execution="ray", workers=2,
                     ray_options=SMALL)
    flow.execute("sq", {"x": 3}, entry_slot="in", timeout=60)
    named = {(a["namespace"], a["name"]) for a in ray.util.list_named_actors(True)}
    assert {("routilux", "named-flow:sq:0"), ("routilux", "named-flow:sq:1")} <= named
    figures = flow.metrics()["sq"]
    assert figures["execution"] == "ray" and len(figures["pids"]) == 2
    assert figures["ray_actors"] == ["named-flow:sq:0", "named-flow:sq:1"]
    flow.shutdown()  # returns once Ray has released the names
    named = {a["name"] for a in ray.util.list_named_actors(True)}
    assert not {"named-flow:sq:0", "named-flow:sq:1"} & named
    again = make_flow("named-flow")  # so the same flow can start again at once
    again.add_routine(Node(square, slots=("in",)), "sq", execution="ray", workers=2,
                      ray_options=SMALL)
    job = again.execute("sq", {"x": 4}, entry_slot="in", timeout=60)
    assert job.status == "completed", job.error


def test_ordering_over_2000_messages(make_flow, ray_address):
    flow = make_flow(execution_strategy="concurrent", max_workers=8, record_history=False)
    sink = Sink("in")
    flow.add_routine(Source(), "src")
    flow.add_routine(Node(lambda n, d: n.emit("out", x=d["x"]), slots=("in",)), "relay",
                     execution="ray", ray_options=SMALL)
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "relay", "in")
    flow.connect("relay", "out", "sink", "in")
    job = flow.execute("src", {"n": 2000}, timeout=60)
    assert job.status == "completed", job.error
    assert sink.values("x") == list(range(2000))


class Counter(Routine):
    """Keeps a count and ``_stats`` that must come back to the caller's object."""

    def __init__(self):
        super().__init__()
        self.count = 0
        self.define_slot("in", handler=self.take)
        self.define_event("out", ["x"])

    def take(self, x):
        if x < 0:
            raise ValueError(f"negative x: {x}")
        self.count += 1
        self._stats["count"] = self.count
        self.emit("out", x=x)


def test_state_and_stats_come_back_to_the_callers_routine(make_flow, ray_address):
    counter = Counter()
    flow = make_flow()
    flow.add_routine(Source(), "src")
    flow.add_routine(counter, "count", execution="ray", ray_options=SMALL)
    flow.connect("src", "out", "count", "in")
    assert flow.execute("src", {"n": 5}, timeout=60).status == "completed"
    assert counter.count == 5 and counter.stats() == {"count": 5}


@pytest.mark.parametrize("strategy, status", [
    (ErrorStrategy.STOP, "failed"),
    (ErrorStrategy.CONTINUE, "completed"),
])
def test_a_handler_exception_follows_the_error_strategy(make_flow, ray_address, strategy, status):
    counter = Counter()
    counter.set_error_handler(ErrorHandler(strategy))
    sink = Sink("in")
    flow = make_flow()
    flow.add_routine(Source(), "src")
    flow.add_routine(counter, "count", execution="ray", ray_options=SMALL)
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "count", "in")
    flow.connect("count", "out", "sink", "in")
    job = flow.execute("src", {"messages": [{"x": 1}, {"x": -1}, {"x": 2}]}, timeout=60)
    assert job.status == status
    failure = job.failures[0]
    assert failure["exception_type"] == "ValueError" and "negative x: -1" in failure["message"]
    assert flow.metrics()["count"]["restarts"] == 0
    # breadth-first: STOP fails the job before the sink gets the first result
    assert sink.values("x") == ([] if status == "failed" else [1, 2])


class Big(Routine):
    """Emits a large value (it stays in Ray's object store between ray routines)."""

    def __init__(self):
        super().__init__()
        self.define_slot("in", handler=self.make)
        self.define_event("out", ["blob", "n"])

    def make(self, n):
        self.emit("out", blob=bytes([n % 256]) * (1 << 20), n=n)


class Measure(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("in", handler=self.measure)
        self.define_event("out", ["blob", "n", "size"])

    def measure(self, blob, n):
        assert blob == bytes([n % 256]) * (1 << 20)
        self.emit("out", size=len(blob), n=n, blob=blob)


def test_large_emits_travel_as_object_refs_between_ray_routines(make_flow, ray_address):
    sink = Sink("in")
    flow = make_flow()
    flow.add_routine(Source(), "src")
    flow.add_routine(Big(), "big", execution="ray", ray_options=SMALL)
    flow.add_routine(Measure(), "measure", execution="ray", ray_options=SMALL)
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "big", "in", param_mapping={"x": "n"})
    flow.connect("big", "out", "measure", "in")
    flow.connect("measure", "out", "sink", "in")
    job = flow.execute("src", {"n": 3}, timeout=60)
    assert job.status == "completed", job.error
    assert sink.values("size") == [1 << 20] * 3
    assert [c["blob"][:1] for c in sink.calls] == [b"\x00", b"\x01", b"\x02"]
    # between the two ray routines the blob was a reference; the thread sink got bytes
    to_measure = [r.data for r in job.execution_history if r.routine_id == "big"]
    assert to_measure and all(isinstance(d["blob"], RayValue) for d in to_measure)
    assert all(isinstance(c["blob"], bytes) for c in sink.calls)


def test_a_large_value_pickled_outside_ray_becomes_the_value_itself(ray_address):
    """What a checkpoint holds of a delivery whose data stayed in the object store."""
    value = RayValue(ray.put([b"small", b"\x07" * 100_000]), 1)
    assert loads(dumps({"blob": value})) == {"blob": b"\x07" * 100_000}
