"""Routine: definition, emit (standalone and in a flow), config, stats, error handler."""

from __future__ import annotations

import pytest

from routilux import (
    ConfigurationError,
    ErrorHandler,
    ErrorStrategy,
    Event,
    ExecutionContext,
    JobState,
    Routine,
    Slot,
)


class Source(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["value"])

    def go(self, value=0):
        self.emit("out", value=value)


class Sink(Routine):
    def __init__(self):
        super().__init__()
        self.received = []
        self.define_slot("input", handler=self.take)

    def take(self, value):
        self.received.append(value)


class Relay(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("input", handler=self.relay)
        self.define_event("out")

    def relay(self, value):
        self.emit("out", value=value + 1)


# ---------------------------------------------------------------- definition
def test_routine_takes_no_arguments_and_has_the_documented_attributes():
    r = Routine()
    assert isinstance(r._id, str) and r._id
    assert r._slots == {} and r._events == {} and r._config == {} and r._stats == {}
    assert Routine()._id != r._id
    with pytest.raises(TypeError):
        Routine("name")  # type: ignore[call-arg]


def test_define_slot_and_event_register_and_return_objects():
    r = Routine()
    slot = r.define_slot("in", handler=lambda x: None, merge_strategy="append")
    event = r.define_event("out", ["a", "b"])
    assert isinstance(slot, Slot) and isinstance(event, Event)
    assert r.get_slot("in") is slot and r._slots["in"] is slot
    assert r.get_event("out") is event and r._events["out"] is event
    assert slot.merge_strategy == "append" and slot.routine is r
    assert event.output_params == ["a", "b"] and event.routine is r
    assert r.get_slot("nope") is None and r.get_event("nope") is None


def test_duplicate_slot_is_a_value_error_naming_existing_slots():
    r = Routine()
    r.define_slot("a")
    r.define_slot("b")
    with pytest.raises(ValueError, match=r"'a'.*\['a', 'b'\]"):
        r.define_slot("a")


def test_duplicate_event_is_a_value_error_naming_existing_events():
    r = Routine()
    r.define_event("x")
    with pytest.raises(ConfigurationError, match=r"'x'.*\['x'\]"):
        r.define_event("x")


def test_configuration_error_is_a_value_error():
    assert issubclass(ConfigurationError, ValueError)


def test_emit_unknown_event_is_a_value_error_naming_existing_events():
    r = Routine()
    r.define_event("done")
    r.define_event("progress")
    with pytest.raises(ValueError, match=r"'nope'.*\['done', 'progress'\]"):
        r.emit("nope", a=1)


# ---------------------------------------------------------------- standalone emit
def test_emit_outside_a_flow_delivers_synchronously():
    src, sink = Source(), Sink()
    src.get_event("out").connect(sink.get_slot("input"))
    src.emit("out", value=5)
    # Delivered before emit returned.
    assert sink.received == [5]


def test_standalone_chain_runs_synchronously_through_handlers():
    src, relay, sink = Source(), Relay(), Sink()
    src.get_event("out").connect(relay.get_slot("input"))
    relay.get_event("out").connect(sink.get_slot("input"))
    src.get_slot("trigger").receive({"value": 1})
    assert sink.received == [2]


def test_standalone_emit_fans_out_in_connection_order():
    order = []
    src = Source()
    a, b = Routine(), Routine()
    a.define_slot("in", handler=lambda value: order.append(("a", value)))
    b.define_slot("in", handler=lambda value: order.append(("b", value)))
    src.get_event("out").connect(b.get_slot("in"))
    src.get_event("out").connect(a.get_slot("in"))
    src.emit("out", value=1)
    assert order == [("b", 1), ("a", 1)]


def test_standalone_emit_without_connections_is_a_no_op():
    Source().emit("out", value=1)


def test_emit_accepts_a_flow_keyword(make_flow):
    src, sink = Source(), Sink()
    src.get_event("out").connect(sink.get_slot("input"))
    src.emit("out", flow=make_flow(), value=3)
    assert sink.received == [3]


def test_emit_deferred_event_outside_a_flow_emits_at_once():
    src, sink = Source(), Sink()
    src.get_event("out").connect(sink.get_slot("input"))
    src.emit_deferred_event("out", value=9)
    assert sink.received == [9]
    with pytest.raises(ValueError, match="nope"):
        src.emit_deferred_event("nope")


def test_send_output_and_execution_context_outside_a_flow():
    r = Source()
    r.send_output("anything", a=1)  # no job: does nothing, raises nothing
    assert r.get_execution_context() is None


# ---------------------------------------------------------------- config and stats
def test_config_set_get_and_copy():
    r = Routine()
    r.set_config(a=1, b="two")
    r.set_config(a=3)
    assert r.get_config("a") == 3
    assert r.get_config("missing") is None
    assert r.get_config("missing", "d") == "d"
    cfg = r.config()
    assert cfg == {"a": 3, "b": "two"} == r._config
    cfg["a"] = 100
    assert r.get_config("a") == 3


def test_stats_is_a_copy_of_underscore_stats():
    r = Routine()
    r._stats["count"] = 1
    snapshot = r.stats()
    assert snapshot == {"count": 1}
    snapshot["count"] = 99
    snapshot["new"] = True
    assert r._stats == {"count": 1}
    r._stats["count"] = 2
    assert r.stats() == {"count": 2}
    assert r.stats() is not r._stats


def test_stats_maintained_by_handlers_in_a_flow(make_flow):
    class Counter(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=self.count)

        def count(self, n):
            self._stats["calls"] = self._stats.get("calls", 0) + 1
            self._stats["total"] = self._stats.get("total", 0) + n

    flow = make_flow()
    c = Counter()
    flow.add_routine(c, "c")
    for n in (1, 2, 3):
        assert flow.execute("c", {"n": n}).status == "completed"
    assert c.stats() == {"calls": 3, "total": 6}


# ---------------------------------------------------------------- error handlers
def test_error_handler_set_and_get():
    r = Routine()
    assert r.get_error_handler() is None
    handler = ErrorHandler(ErrorStrategy.SKIP)
    r.set_error_handler(handler)
    assert r.get_error_handler() is handler
    r.set_error_handler(None)
    assert r.get_error_handler() is None


def test_set_as_optional_defaults_to_continue_and_is_not_critical():
    r = Routine()
    r.set_as_optional()
    h = r.get_error_handler()
    assert h.strategy is ErrorStrategy.CONTINUE and h.is_critical is False
    r.set_as_optional(ErrorStrategy.SKIP)
    assert r.get_error_handler().strategy is ErrorStrategy.SKIP


def test_set_as_critical_retries_and_is_critical():
    r = Routine()
    r.set_as_critical()
    h = r.get_error_handler()
    assert h.strategy is ErrorStrategy.RETRY and h.is_critical is True
    assert (h.max_retries, h.retry_delay, h.retry_backoff) == (3, 1.0, 2.0)
    r.set_as_critical(max_retries=5, retry_delay=0.5, retry_backoff=3.0)
    h = r.get_error_handler()
    assert (h.max_retries, h.retry_delay, h.retry_backoff) == (5, 0.5, 3.0)


# ---------------------------------------------------------------- inside a flow
def test_execution_context_inside_a_flow(make_flow):
    seen = []

    class Probe(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=self.probe)

        def probe(self):
            ctx = self.get_execution_context()
            flow, job_state, routine_id = ctx
            seen.append((ctx, flow, job_state, routine_id))

    flow = make_flow()
    flow.add_routine(Probe(), "probe-id")
    job = flow.execute("probe-id")
    assert job.status == "completed"
    [(ctx, f, js, rid)] = seen
    assert isinstance(ctx, ExecutionContext)
    assert f is flow and js is job and rid == "probe-id"
    assert isinstance(js, JobState)


def test_emit_in_a_flow_with_flow_keyword_routes_through_the_flow(make_flow):
    class Src(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=self.go)
            self.define_event("out")

        def go(self):
            ctx = self.get_execution_context()
            self.emit("out", flow=ctx.flow, value=1)

    flow = make_flow()
    sink = Sink()
    flow.add_routine(Src(), "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "sink", "input")
    job = flow.execute("src")
    assert job.status == "completed"
    assert sink.received == [1]
    assert [(r.routine_id, r.event_name, r.data) for r in job.execution_history] == [
        ("src", "start", {}),  # 0.10's first record: the entry params
        ("src", "out", {"value": 1}),
    ]


def test_unknown_event_inside_a_flow_fails_the_job(make_flow):
    class Bad(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=self.go)

        def go(self):
            self.emit("missing")

    flow = make_flow()
    flow.add_routine(Bad(), "bad")
    job = flow.execute("bad")
    assert job.status == "failed"
    assert job.failures[0]["exception_type"] == "ConfigurationError"
    assert "missing" in job.failures[0]["message"]


def test_emitting_undeclared_keys_is_delivered_and_warned_once_per_event(caplog):
    import logging

    from routilux import Flow

    class Emitter(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=self.go)
            self.define_event("out", ["value"])

        def go(self, n=3):
            for i in range(n):
                self.emit("out", value=i, extra=i)

    class Keeper(Routine):
        def __init__(self):
            super().__init__()
            self.got = []
            self.define_slot("inp", handler=lambda value, extra: self.got.append(extra))

    flow = Flow("undeclared")
    keeper = Keeper()
    flow.add_routine(Emitter(), "emitter")
    flow.add_routine(keeper, "keeper")
    flow.connect("emitter", "out", "keeper", "inp")
    try:
        with caplog.at_level(logging.WARNING, logger="routilux.routine"):
            assert flow.execute("emitter", {"n": 3}, timeout=30).status == "completed"
    finally:
        flow.shutdown()
    assert keeper.got == [0, 1, 2], "undeclared keys are delivered (as in 0.10)"
    warned = [r for r in caplog.records if "does not declare" in r.getMessage()]
    assert len(warned) == 1 and "'extra'" in warned[0].getMessage()
